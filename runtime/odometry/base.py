"""What every wheel-speed source provides: timestamped speeds in m/s, looked up by time."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any


class OdometryError(RuntimeError):
    """A wheel-speed source that cannot be used (missing file, bad URI); the message names the URI
    and the fix. The runtime exits with status 2 and the car in neutral."""


@dataclass(frozen=True, slots=True)
class SpeedSample:
    """One reading: ``t`` in ``time.monotonic()`` seconds (a replay's time mapped onto that clock),
    ``speed`` in m/s (negative when reversing)."""

    t: float
    speed: float


class SpeedSource(ABC):
    """A source of speed samples. ``nearest(t)``: the sample nearest the monotonic time ``t`` (a
    frame's capture time); ``newest(now)``: the latest taken at or before ``now``; both ``None``
    while there is none. Staleness is the provider's rule (:mod:`runtime.inputs.wheel_speed`)."""

    def __init__(self, uri: str) -> None:
        self.uri = uri

    @abstractmethod
    def start(self) -> SpeedSource:
        """Open the source; :class:`OdometryError` naming the URI and the fix when it cannot work."""

    @abstractmethod
    def nearest(self, t: float) -> SpeedSample | None:
        """The sample nearest monotonic time ``t``; None while there is none."""

    @abstractmethod
    def newest(self, now: float) -> SpeedSample | None:
        """The latest sample taken at or before ``now``; None while there is none."""

    def stop(self) -> None:  # noqa: B027 - optional hook
        """Release what the source opened; safe to call twice."""

    def stats(self) -> dict[str, Any]:
        """What the run summary shows about the source."""
        return {"uri": self.uri}
