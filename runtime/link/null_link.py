"""A link that only logs: bench runs of the whole loop without a car (``null://``)."""

from __future__ import annotations

import logging

from runtime.link.base import CarStatus, LinkStats, to_wire

log = logging.getLogger(__name__)


class NullDriveLink:
    """Accepts every command, sends nothing, never reports a status."""

    def __init__(self) -> None:
        self._seq = 0
        self._open = False
        self._stats = LinkStats(health="null")
        self.last_command: tuple[int, int, int] | None = None  # (steering, throttle, tag) in wire units

    @property
    def connected(self) -> bool:
        return self._open

    @property
    def stats(self) -> LinkStats:
        return self._stats

    @property
    def health(self) -> str:
        return "null"

    def describe_health(self) -> str:
        return "null link: commands are logged, not sent"

    def open(self) -> None:
        self._open = True
        log.info("null link: commands are logged, not sent")

    def arm(self) -> None:
        self._count("arm")

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
        s, t = to_wire(steering), to_wire(throttle)
        if s is None or t is None:
            self._stats.nonfinite += 1
            return self._count("neutral (non-finite drive)")
        self.last_command = (s, t, tag & 0xFFFFFFFF)
        return self._count(f"drive steering={s} throttle={t} tag={tag}")

    def neutral(self) -> None:
        self._count("neutral")

    def heartbeat(self) -> None:
        self._count("heartbeat")

    def poll(self) -> CarStatus | None:
        return None

    def close(self) -> None:
        if self._open:
            self._count("neutral (disarm)")
        self._open = False

    def _count(self, what: str) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        self._stats.sent += 1
        log.debug("null link seq=%d %s", seq, what)
        return seq
