"""Role ``imu``: the IMU sample nearest the frame's capture time (donkeycar KerasIMU ``imu_in``),
shape (1, len(order)), channels in the model's ``order`` (default ax, ay, az, gx, gy, gz: accel
m/s^2, gyro rad/s).

Stale (``imu.stale``, the car goes to neutral) when the source has no sample yet, when its newest
sample is older than the watchdog deadline (the IMU stopped: unplugged, a replay that ended), or
when the sample nearest the frame is further than the deadline from the frame's capture time.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from runtime.camera.base import CameraFrame
from runtime.imu.base import CHANNELS, ImuSource
from runtime.inputs.base import InputContext, InputError, InputProvider, InputSpecLike


class ImuProvider(InputProvider):
    """``order``: channel names from :data:`runtime.imu.CHANNELS`; ``deadline_s``: the stale limit."""

    role = "imu"

    def __init__(
        self, name: str, shape: tuple[int, ...], source: ImuSource, deadline_s: float,
        order: Sequence[str] = CHANNELS,
    ) -> None:
        super().__init__(name, shape)
        unknown = [c for c in order if c not in CHANNELS]
        if unknown:
            raise InputError(f"input {name!r} (imu): unknown channel(s) {', '.join(unknown)} in its order; "
                             f"the runtime knows {', '.join(CHANNELS)}; fix edge.inputs / --inputs and re-convert")
        if self.shape != (1, len(order)):
            raise InputError(f"input {name!r} (imu): shape {list(shape)} does not match its {len(order)} channels "
                             f"({', '.join(order)}); re-convert")
        self.source, self.deadline_s, self.order = source, deadline_s, tuple(order)
        self._index = np.asarray([CHANNELS.index(c) for c in order], np.intp)
        self.stale_frames = 0

    @classmethod
    def from_spec(cls, spec: InputSpecLike, ctx: InputContext) -> ImuProvider:
        """The provider for an ``imu`` input; :class:`InputError` naming ``--imu``/``[imu] uri`` when no IMU
        source is configured.
        """
        if ctx.imu is None:
            raise InputError(f"the model has an IMU input {spec.name!r}; give an IMU source with --imu URI or "
                             "[imu] uri (mpu6050://1?addr=0x68 or file://imu.csv)")
        return cls(spec.name, tuple(spec.shape), ctx.imu, ctx.deadline_s, tuple(spec.order or CHANNELS))

    def fill(self, frame: CameraFrame) -> np.ndarray | None:
        """The sample nearest the frame's capture time, (1, len(order)) float32 in the model's channel order
        (m/s^2, rad/s); None with ``imu.stale`` when there is no sample, the newest is older than the
        deadline, or the nearest is further than the deadline from the frame.
        """
        near = self.source.nearest(frame.t_capture)
        now = time.monotonic()
        newest = self.source.newest(now)
        if near is None or newest is None:
            self._stale("no IMU sample yet")
            return None
        if now - newest.t > self.deadline_s:
            self._stale(f"no IMU sample for {(now - newest.t) * 1000:.0f} ms")
            return None
        gap = abs(near.t - frame.t_capture)
        if gap > self.deadline_s:
            self._stale(f"the nearest IMU sample is {gap * 1000:.0f} ms from frame {frame.id}")
            return None
        np.take(near.values, self._index, out=self.out[0])
        return self.out

    def _stale(self, detail: str) -> None:
        self.stale_frames += 1
        self.not_ready("imu.stale", f"{self.name}: {detail} (source {self.source.uri})")
