"""What every IMU source provides: timestamped 6-axis samples in SI units, looked up by time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

import numpy as np

# The fixed channel order of ImuSample.values: accel x/y/z in m/s^2, then gyro x/y/z in rad/s.
CHANNELS: tuple[str, ...] = ("ax", "ay", "az", "gx", "gy", "gz")
STANDARD_GRAVITY = 9.80665  # m/s^2 per g


class ImuError(RuntimeError):
    """An IMU source that cannot be used (missing file, no device, bad URI); the message names the
    URI and the fix. The runtime exits with status 2 and the car in neutral."""


@dataclass(frozen=True, slots=True)
class ImuSample:
    """One reading. ``t``: ``time.monotonic()`` seconds at which it was taken (for a replay, the
    replay time mapped onto the monotonic clock). ``values``: (6,) float32 in :data:`CHANNELS`
    order, accel in m/s^2 and gyro in rad/s. Treat ``values`` as read-only."""

    t: float
    values: np.ndarray


class ImuSource(ABC):
    """A source of IMU samples, looked up by time.

    ``start`` raises :class:`ImuError` if the source is missing or gives no sample at start (a
    live chip is read once before the runtime goes on). ``nearest(t)`` is the sample nearest the
    monotonic time ``t`` (a frame's capture time); ``newest(now)`` the latest sample taken at or
    before ``now``. Both return ``None`` while there is none. Staleness is the caller's rule
    (:mod:`runtime.inputs.imu`). Thread-safe: a live source's own thread adds samples."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @abstractmethod
    def start(self) -> ImuSource:
        """Open the source; :class:`ImuError` naming the URI and the fix when it cannot work."""

    @abstractmethod
    def nearest(self, t: float) -> ImuSample | None: ...

    @abstractmethod
    def newest(self, now: float) -> ImuSample | None: ...

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release the device; safe to call twice."""

    def stats(self) -> dict[str, Any]:
        return {"uri": self.uri}

    def __enter__(self) -> ImuSource:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
