"""Role ``wheel_speed``: the speed sample nearest the frame's capture time, (1, 1) m/s.

Stale (``wheel_speed.stale``, the car goes to neutral) as the IMU is: no sample yet, the newest
older than the watchdog deadline (the encoder stopped, a replay that ended), or the nearest further
than the deadline from the frame. The source is opened from ``--wheel-speed`` / ``[wheel_speed] uri``
(:mod:`runtime.odometry`).
"""

from __future__ import annotations

import time

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike
from runtime.odometry.base import SpeedSource


class WheelSpeedProvider(InputProvider):
    """``source``: a started :class:`SpeedSource`; ``deadline_s``: the stale limit."""

    role = "wheel_speed"

    def __init__(self, name: str, shape: tuple[int, ...], source: SpeedSource, deadline_s: float) -> None:
        super().__init__(name, shape)
        if self.shape != (1, 1):
            raise InputError(f"input {name!r} (wheel_speed): shape {list(shape)} must be (1, 1); re-convert")
        self.source, self.deadline_s = source, deadline_s
        self.stale_frames = 0

    @classmethod
    def from_spec(cls, spec: InputSpecLike, ctx: InputContext) -> WheelSpeedProvider:
        """The provider for a ``wheel_speed`` input; :class:`InputError` naming ``--wheel-speed`` when no
        source is configured."""
        source = ctx.sources.get("wheel_speed")
        if source is None:
            raise InputError(f"the model has a wheel-speed input {spec.name!r}; give a source with --wheel-speed URI "
                             "or [wheel_speed] uri (file://speed.csv with header t,speed)")
        return cls(spec.name, tuple(spec.shape), source, ctx.deadline_s)

    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """The speed nearest the frame's capture time, (1, 1) float32 m/s; None with ``wheel_speed.stale``."""
        near = self.source.nearest(frame.t_capture)
        now = time.monotonic()
        newest = self.source.newest(now)
        if near is None or newest is None:
            self._stale("no wheel-speed sample yet")
            return None
        if now - newest.t > self.deadline_s:
            self._stale(f"no wheel-speed sample for {(now - newest.t) * 1000:.0f} ms")
            return None
        gap = abs(near.t - frame.t_capture)
        if gap > self.deadline_s:
            self._stale(f"the nearest wheel-speed sample is {gap * 1000:.0f} ms from frame {frame.id}")
            return None
        self.out[0, 0] = near.speed
        return self.out

    def _stale(self, detail: str) -> None:
        self.stale_frames += 1
        self.not_ready("wheel_speed.stale", f"{self.name}: {detail} (source {self.source.uri})")
