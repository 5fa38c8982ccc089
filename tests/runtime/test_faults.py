"""Fault tests: whatever fails, the car ends in neutral within the deadline.

The car simulator on a real pty records when the host's neutral arrived. Bounds carry a margin
for a loaded 2-core machine but stay below the car's own 250 ms failsafe, so a pass means the
*runtime* stopped the car (the car's failsafe would be a second line of defence)."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from runtime.assembly import run
from runtime.backends import open_backend
from runtime.camera import Camera
from runtime.camera.sources import VideoFileSource
from runtime.camera.uri import parse_camera_uri
from runtime.config import RuntimeConfig
from runtime.recording import read_recording
from runtime.sim import CarSimulator
from tests.runtime.camera.test_capture import Unpluggable
from tests.runtime.helpers import (
    FaultyBackend,
    drives_after,
    first_neutral_after,
    host_neutrals,
    longest_unrefreshed_drive,
    make_config,
)

DEADLINE_S = 0.1
MARGIN_S = 0.12  # scheduling slack on a loaded 2-core machine; still below the car's 250 ms failsafe


def failsafes(car: CarSimulator) -> list[dict[str, Any]]:
    return [e for e in list(car.events) if e["event"] == "failsafe"]


def run_in_thread(cfg: RuntimeConfig, **parts: Any) -> tuple[threading.Event, threading.Thread, dict[str, Any]]:
    stop = threading.Event()
    result: dict[str, Any] = {}

    def target() -> None:
        result.update(run(cfg, stop, **parts))

    th = threading.Thread(target=target, daemon=True)
    th.start()
    return stop, th, result


def test_camera_ends_neutral_at_once(bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str]) -> None:
    car, port = sim
    summary = run(make_config(bundle, f"file://{clip_video}?realtime=1&fps=60", link=port))
    assert summary["end_reason"] == "camera_ended" and summary["commands"] > 10
    last = car.commands()[-1]["t"]
    t_neutral = first_neutral_after(car, last)
    assert t_neutral is not None and t_neutral - last <= DEADLINE_S + MARGIN_S
    assert car.wait_for(lambda s: s.state == "disarmed", 1.0) and car.output.neutral
    assert not failsafes(car)


def test_camera_stalls_neutral_within_the_deadline_then_drives_again(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str]
) -> None:
    car, port = sim
    # 4 frames per second: 250 ms without a frame after each one, 2.5 deadlines.
    summary = run(make_config(bundle, f"file://{clip_video}?realtime=1&fps=4", link=port, duration_s=1.6))
    assert len(car.commands()) >= 4
    assert car.wait_for(lambda s: s.state == "disarmed", 1.0)
    assert longest_unrefreshed_drive(car) <= DEADLINE_S + MARGIN_S
    assert summary["watchdog"]["trips"] >= 3
    assert summary["events"]["camera.stalled"]["episodes"] >= 3
    assert not failsafes(car)


def test_camera_unplugged_neutral_then_reconnects_and_drives(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str]
) -> None:
    car, port = sim
    src = Unpluggable(VideoFileSource(parse_camera_uri(f"file://{clip_video}?realtime=1&fps=30&loop=1")))
    cam = Camera(src, reconnect_interval_s=0.05)
    stop, th, result = run_in_thread(make_config(bundle, "unused://", link=port), camera=cam)
    try:
        assert car.wait_for(lambda s: len(s.commands()) >= 5, 10.0)
        src.plugged.clear()
        t_pull = time.monotonic()
        # Long enough for a frame already in flight to be sent and for the watchdog's neutral after
        # it: two deadlines with their slack (derived from the rule, not a fixed wait).
        time.sleep(2 * (DEADLINE_S + MARGIN_S))
        last = car.commands()[-1]["t"]
        t_n = first_neutral_after(car, last)
        assert t_n is not None and t_n - last <= DEADLINE_S + MARGIN_S
        assert car.output.neutral and last <= t_pull + 0.2  # at most a frame already in flight
        src.plugged.set()
        t_plug = time.monotonic()
        assert car.wait_for(lambda s: len(drives_after(s, t_plug)) >= 3, 5.0)  # driving again
    finally:
        stop.set()
        th.join(5.0)
    assert result["camera"]["reconnects"] == 1
    assert result["events"]["camera.disconnected"]["episodes"] == 1
    assert not failsafes(car)


def recorded_run(cfg: RuntimeConfig, rec: Path, **parts: Any) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """``run(cfg)`` recorded to ``rec``: the summary and the recording's rows, one per frame the loop
    handled, in order. The camera is paced like a real one, so on a loaded machine it may drop a frame:
    the n-th call to the backend then is not frame n, and the rows say which frame it was."""
    cfg.record.dir = str(rec)
    summary = run(cfg, **parts)
    _, records = read_recording(summary["recording"]["dir"])
    return summary, list(records)


def last_drive_before(car: CarSimulator, frame_id: int) -> float:
    """When the car got its last DRIVE for a frame before ``frame_id``."""
    return max(c["t"] for c in car.commands() if c["tag"] < frame_id)


def test_backend_raises_neutral_at_once_then_recovers(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path,
) -> None:
    car, port = sim
    # 3 warm-up calls first: calls 14..23 are the 11th to 20th frames the loop handles
    backend = FaultyBackend(open_backend(bundle, "onnxruntime"), raise_on=range(14, 24))
    cfg = make_config(bundle, f"file://{clip_video}?realtime=1&fps=60", link=port)
    summary, rows = recorded_run(cfg, tmp_path / "rec", backend=backend)
    failed = [r["frame_id"] for r in rows[10:20]]
    assert [r["frame_id"] for r in rows if r["raw"] is None and not r["valid"]] == failed
    tags = [c["tag"] for c in car.commands()]
    assert summary["backend_errors"] == 10 and summary["events"]["backend.error"]["episodes"] == 1
    assert not set(failed) & set(tags)  # never a command for a frame whose inference failed
    t_last_good = last_drive_before(car, failed[0])
    t_n = first_neutral_after(car, t_last_good)
    assert t_n is not None and t_n - t_last_good <= DEADLINE_S + MARGIN_S
    assert any(t > failed[-1] for t in tags)  # recovered
    assert not failsafes(car)


def test_backend_hangs_the_watchdog_thread_still_stops_the_car(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str]
) -> None:
    car, port = sim
    backend = FaultyBackend(open_backend(bundle, "onnxruntime"), hang_on=range(14, 15), hang_s=0.6)
    summary = run(make_config(bundle, f"file://{clip_video}?realtime=1&fps=60", link=port), backend=backend)
    cmds = car.commands()
    gap = max(range(1, len(cmds)), key=lambda i: cmds[i]["t"] - cmds[i - 1]["t"])
    t_before = cmds[gap - 1]["t"]
    assert cmds[gap]["t"] - t_before >= 0.5  # the hang
    t_n = first_neutral_after(car, t_before)
    assert t_n is not None and t_n - t_before <= DEADLINE_S + MARGIN_S
    assert summary["watchdog"]["trips"] >= 1 and summary["stale"] >= 1  # the hung frame was too old to send
    assert not failsafes(car)


def test_nan_outputs_mean_neutral_never_a_command(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path,
) -> None:
    car, port = sim
    # 3 warm-up calls first: calls 9..13 are the 6th to 10th frames the loop handles
    backend = FaultyBackend(open_backend(bundle, "litert"), nan_on=range(9, 14))
    cfg = make_config(bundle, f"file://{clip_video}?realtime=1&fps=60", link=port, backend="litert")
    summary, rows = recorded_run(cfg, tmp_path / "rec", backend=backend)
    nan = [r["frame_id"] for r in rows[5:10]]
    assert [r["frame_id"] for r in rows if r["raw"] is not None and not r["valid"]] == nan
    tags = {c["tag"] for c in car.commands()}
    assert not tags & set(nan) and summary["invalid_outputs"] == 5
    t_good = last_drive_before(car, nan[0])
    t_n = first_neutral_after(car, t_good)
    assert t_n is not None and t_n - t_good <= DEADLINE_S + MARGIN_S
    assert summary["events"]["policy.nonfinite"]["episodes"] == 1
    assert len(host_neutrals(car)) >= 2
