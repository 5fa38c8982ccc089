"""The safety layer's rule: the path region, which detections stop the car, the hysteresis, the
mapping from the detector's crop to the frame, and the watchdog block that makes stopping atomic."""

from __future__ import annotations

import threading

import pytest

from runtime.events import Events
from runtime.link.null_link import NullDriveLink as NullLink
from runtime.manifest import PreprocessSpec
from runtime.perception import Detection
from runtime.policy import Command
from runtime.safety import Hysteresis, PathRegion, SafetyConfig, StopRule, to_frame
from runtime.watchdog import Watchdog

SQUARE = PathRegion([(0.25, 0.5), (0.75, 0.5), (0.75, 1.0), (0.25, 1.0)])


def det(x1: float, y1: float, x2: float, y2: float, score: float = 0.9, label: str = "cone") -> Detection:
    return Detection(x1, y1, x2, y2, score, 1, label)


@pytest.mark.parametrize(("box", "fraction"), [
    ((0.3, 0.6, 0.5, 0.8), 1.0),  # inside
    ((0.0, 0.6, 0.5, 0.8), 0.5),  # half of it left of the region
    ((0.0, 0.0, 0.2, 0.4), 0.0),  # outside
    ((0.5, 0.5, 0.5, 0.9), 0.0),  # no area
])
def test_overlap_is_the_share_of_the_box_inside_the_region(box: tuple[float, float, float, float], fraction: float) -> None:
    assert SQUARE.overlap(*box) == pytest.approx(fraction, abs=1e-5)


def test_the_default_trapezoid_holds_the_lane_ahead_not_the_roadside() -> None:
    region = PathRegion(SafetyConfig().region)
    assert region.overlap(0.45, 0.4, 0.55, 0.5) == pytest.approx(1.0)  # a cone on the centreline, 1-2 m ahead
    assert region.overlap(0.0, 0.4, 0.1, 0.5) == 0.0  # beside the road


@pytest.mark.parametrize(("points", "message"), [
    ([(0.1, 0.1), (0.9, 0.9)], "at least 3"),
    ([(0.1, 0.1), (1.2, 0.1), (0.5, 0.9)], "must be in [0, 1]"),
    ([(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)], "must be a convex polygon"),  # a bow tie
])
def test_a_bad_region_is_refused(points: list[tuple[float, float]], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("[", r"\[")):
        PathRegion(points)


def rule(**kw: object) -> StopRule:
    cfg = SafetyConfig(**{"region": ((0.25, 0.5), (0.75, 0.5), (0.75, 1.0), (0.25, 1.0)), **kw})  # type: ignore[arg-type]
    return StopRule.from_config(cfg, ("background", "cone", "person"))


def test_a_configured_class_in_the_path_above_score_and_size_stops() -> None:
    r = rule(classes=("cone",), min_score=0.5, min_box_area=0.01, min_overlap=0.3)
    assert r.stops_for(det(0.4, 0.6, 0.6, 0.8))
    assert not r.stops_for(det(0.4, 0.6, 0.6, 0.8, label="person"))  # not configured
    assert not r.stops_for(det(0.4, 0.6, 0.6, 0.8, score=0.4))  # too unsure
    assert not r.stops_for(det(0.45, 0.6, 0.5, 0.65))  # too small: 0.0025 of the frame
    assert not r.stops_for(det(0.0, 0.6, 0.3, 0.8))  # 1/6 of it in the path


def test_no_classes_means_every_class_but_background() -> None:
    assert rule().classes == {"cone", "person"}


def test_a_class_the_detector_does_not_have_is_refused() -> None:
    with pytest.raises(ValueError, match=r"safety.classes \['car'\] are not classes of the detector"):
        rule(classes=("car",))


def test_boxes_map_from_the_detectors_crop_to_the_frame() -> None:
    spec = PreprocessSpec(width=80, height=60, crop_top=15)  # the top quarter was dropped
    d = to_frame(det(0.1, 0.0, 0.2, 1.0), spec)
    assert (d.x1, d.y1, d.x2, d.y2) == pytest.approx((0.1, 0.25, 0.2, 1.0))


def test_hysteresis_needs_frames_and_seconds_without_a_hit() -> None:
    h = Hysteresis(clear_frames=3, clear_s=0.5)
    assert not h.update(False, 0.0)
    assert h.update(True, 1.0)
    assert h.update(False, 1.1) and h.update(False, 1.2) and h.update(False, 1.3)  # 3 frames, 0.3 s
    assert h.update(False, 1.4)  # 4 frames, 0.4 s
    assert not h.update(False, 1.5)  # 5 frames and 0.5 s
    assert h.update(True, 1.6) and h.update(False, 2.3) and h.update(False, 2.4)  # a new hit restarts the count
    assert not h.update(False, 2.5)


class CountingLink(NullLink):
    """A real null link that counts what the watchdog wrote."""

    def __init__(self) -> None:
        super().__init__()
        self.drives = 0
        self.neutrals = 0

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
        self.drives += 1
        return super().drive(steering, throttle, tag)

    def neutral(self) -> None:
        self.neutrals += 1
        super().neutral()


def test_a_block_stops_at_once_and_refuses_every_drive_until_lifted() -> None:
    import time

    link = CountingLink()
    wd = Watchdog(link, Events(), deadline_s=0.5).start()
    try:
        cmd = Command(0.1, 0.3, True, 0.1, 0.3)
        assert wd.drive(cmd, time.monotonic(), 1) and link.drives == 1
        before = link.neutrals
        assert wd.block("safety.obstacle", "cone") and link.neutrals == before + 1 and wd.blocked
        assert not wd.block("safety.obstacle", "cone")  # already held: not a new block
        assert not wd.drive(cmd, time.monotonic(), 2) and link.drives == 1
        assert wd.unblock("safety.obstacle") and not wd.blocked and link.neutrals >= before + 1
        assert wd.drive(cmd, time.monotonic(), 3) and link.drives == 2
    finally:
        wd.stop()


def test_no_drive_slips_out_after_a_block_from_another_thread() -> None:
    """The loop drives as fast as it can while another thread blocks: every drive the link saw came
    before the block's neutral, none after it."""
    import time

    events: list[str] = []

    class OrderLink(NullLink):
        def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
            events.append("drive")
            return super().drive(steering, throttle, tag)

        def neutral(self) -> None:
            events.append("neutral")
            super().neutral()

    wd = Watchdog(OrderLink(), Events(), deadline_s=0.5, rate_hz=1000.0).start()
    stop = threading.Event()
    cmd = Command(0.1, 0.3, True, 0.1, 0.3)

    def loop() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            wd.drive(cmd, time.monotonic(), n)

    t = threading.Thread(target=loop)
    t.start()
    time.sleep(0.05)
    wd.block("safety.obstacle")
    mark = len(events)  # the block returned: its neutral is in the log
    time.sleep(0.05)
    stop.set()
    t.join()
    wd.stop()
    assert "drive" in events[:mark] and events[mark - 1] == "neutral"
    assert "drive" not in events[mark:]
