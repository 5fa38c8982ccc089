"""Regressions from the safety review: each reproduces a way the car could misbehave."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.events import Events
from runtime.inputs import ImageProvider
from runtime.link.base import to_wire
from runtime.loop import DriveLoop
from runtime.policy import Command, Policy, PolicyConfig
from runtime.sim.link import SimulatedCarLink
from runtime.watchdog import Watchdog
from tests.runtime.helpers import wait_until


class RecordingLink:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.log: list[tuple[float, str, float]] = []

    def arm(self) -> None:
        pass

    def drive(self, s: float, t: float, tag: int = 0) -> None:
        self.log.append((time.monotonic() - self.t0, "drive", t))

    def neutral(self) -> None:
        self.log.append((time.monotonic() - self.t0, "neutral", 0.0))

    def poll(self) -> None:
        return None


class StallingCamera:
    """20 fps, nothing between 0.6 s and 1.0 s (an unplugged camera), scripted so the stall is exact."""

    ended = False

    def __init__(self, t0: float) -> None:
        self.t0, self.i, self.next = t0, 0, t0

    def get(self, timeout: float) -> CameraFrame | None:
        now = time.monotonic()
        if 0.6 <= now - self.t0 < 1.0:
            time.sleep(min(timeout, 0.05))
            return None
        if now < self.next:
            time.sleep(self.next - now)
        self.next, self.i = time.monotonic() + 0.05, self.i + 1
        t = time.monotonic()
        return CameraFrame(self.i, t, np.zeros((2, 2, 3), np.uint8), self.i, np.zeros(1, np.float32), t)


class FullThrottle:
    def infer(self, x: Any) -> dict[str, np.ndarray]:
        return {"steer": np.array([0.0]), "thr": np.array([1.0])}


def test_throttle_ramps_from_zero_after_a_camera_stall() -> None:
    link = RecordingLink()
    events = Events()
    wd = Watchdog(link, events, deadline_s=0.1).start()
    policy = Policy(PolicyConfig(max_throttle=0.5, throttle_slew_rate=1.0), "steer", "thr")
    camera: Any = StallingCamera(link.t0)  # scripted: the stall must fall exactly where the test says
    backend: Any = FullThrottle()
    frame_input = ImageProvider("x", (1,), prepare=np.copy, use_frame_input=True)  # frames come prepared
    DriveLoop(camera, backend, [frame_input], policy, wd, events, duration_s=1.25).run()
    wd.stop()
    drives = [(t, thr) for t, kind, thr in link.log if kind == "drive"]
    before = [thr for t, thr in drives if t < 0.6]
    after = [thr for t, thr in drives if t >= 1.0]
    assert max(before) == 0.5  # had ramped up to the limit before the stall
    assert any(kind == "neutral" and 0.6 < t < 1.0 for t, kind, _ in link.log)
    assert after[0] == 0.0 and after[1] <= 0.06  # ramps again, no jump back to 0.5


def test_one_unhealthy_instant_does_not_skip_a_systemd_ping() -> None:
    events, pings = Events(), []
    watchdog_sec = 0.4
    wd = Watchdog(RecordingLink(), events, deadline_s=0.1, notify=lambda m: pings.append(time.monotonic()),
                  notify_s=watchdog_sec / 2).start()
    cmd = Command(0.1, 0.1, True, 0.1, 0.1)
    end, blipped = time.monotonic() + 1.2, False
    while time.monotonic() < end:
        now = time.monotonic()
        wd.drive(cmd, now, 1)
        if pings and not blipped and now >= pings[0] + 1.5 * watchdog_sec - 0.007:
            events.raise_("frame.stale", "one stale frame")  # unhealthy exactly when a ping is due
            time.sleep(0.015)
            events.clear("frame.stale")
            blipped = True
        time.sleep(0.002)
    wd.stop()
    gaps = np.diff(pings)
    assert blipped and len(gaps) >= 3
    assert gaps.max() < watchdog_sec * 0.75, gaps  # systemd would kill the service at watchdog_sec


def test_halted_host_never_rearms_a_car_that_disarmed() -> None:
    link = SimulatedCarLink()
    link.open()
    sim, halt = link.simulator, threading.Event()
    assert sim is not None
    wd = Watchdog(link, Events(), deadline_s=0.1, halt=halt).start()
    try:
        for i in range(5):
            wd.drive(Command(0.0, 0.2, True, 0.0, 0.2), time.monotonic(), i + 1)
            time.sleep(0.02)
        assert sim.model.state == "armed"
        n_neutral = wd.neutral_sent
        halt.set()  # SIGTERM: neutral from now on
        assert wait_until(lambda: wd.neutral_sent > n_neutral, 1.0)
        sim.model.armed = False  # the board resets (USB glitch, brown-out)
        # The link decides to re-arm on each status frame that says "disarmed": watch until several
        # such frames have arrived (and two neutral repeats went out), not for a fixed time.
        n_status, n_neutral = link.stats.status_frames, wd.neutral_sent
        assert wait_until(lambda: link.stats.status_frames >= n_status + 4 and wd.neutral_sent >= n_neutral + 2, 5.0)
        assert sim.model.state == "disarmed" and link.stats.rearms == 0
    finally:
        wd.stop()
        link.close()


def test_huge_values_clamp_instead_of_overflowing() -> None:
    assert to_wire(1e306) == 1000 and to_wire(-1e306) == -1000
    assert to_wire(float("nan")) is None and to_wire(0.5) == 500
