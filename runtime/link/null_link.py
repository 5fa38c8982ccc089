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
        """True between :meth:`open` and :meth:`close`."""
        return self._open

    @property
    def stats(self) -> LinkStats:
        """Counters: every call counts as a frame sent; ``nonfinite`` counts NaN/inf drives."""
        return self._stats

    @property
    def health(self) -> str:
        """Always ``null``."""
        return "null"

    def describe_health(self) -> str:
        """One line for logs and the systemd status."""
        return "null link: commands are logged, not sent"

    def open(self) -> None:
        """Mark the link open (nothing to open)."""
        self._open = True
        log.info("null link: commands are logged, not sent")

    def arm(self) -> None:
        """Log an ARM."""
        self._count("arm")

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
        """Log the command in wire units (``last_command`` keeps it) and return its SEQ; NaN/inf logs a
        neutral instead, as the serial link would send.
        """
        s, t = to_wire(steering), to_wire(throttle)
        if s is None or t is None:
            self._stats.nonfinite += 1
            return self._count("neutral (non-finite drive)")
        self.last_command = (s, t, tag & 0xFFFFFFFF)
        return self._count(f"drive steering={s} throttle={t} tag={tag}")

    def neutral(self) -> None:
        """Log a NEUTRAL."""
        self._count("neutral")

    def disarm(self) -> None:
        """Log a NEUTRAL with disarm (the runtime is stopping)."""
        self._count("neutral (disarm)")

    def heartbeat(self) -> None:
        """Log a HEARTBEAT."""
        self._count("heartbeat")

    def poll(self) -> CarStatus | None:
        """Always None: there is no car to report."""
        return None

    def close(self) -> None:
        """Log the final NEUTRAL with disarm (if open) and mark the link closed."""
        if self._open:
            self._count("neutral (disarm)")
        self._open = False

    def _count(self, what: str) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        self._stats.sent += 1
        log.debug("null link seq=%d %s", seq, what)
        return seq
