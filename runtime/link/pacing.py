"""DRIVE pacing for the serial link: a token bucket over the host's share of the line's bytes/s,
and the one newest DRIVE that waits for budget (an older waiting one is dropped)."""

from __future__ import annotations

import time

from runtime.link.base import LinkStats
from runtime.link.protocol import CRC_LEN, HEADER_LEN, MAX_FRAME, PAYLOAD_LEN, Drive, Message, message_type

LINE_SHARE = 0.5  # the host uses at most this share of the line's bytes/s (STATUS replies, noise)
BURST_BYTES = 8 * MAX_FRAME  # token bucket depth: a few frames back to back are fine
PENDING_MAX_AGE_S = 0.02  # a paced DRIVE not written within this is dropped (an old world)


def len_of(msg: Message) -> int:
    """Frame size of ``msg`` in bytes."""
    return HEADER_LEN + PAYLOAD_LEN[message_type(msg)] + CRC_LEN


class DrivePacer:
    """Byte budget of ``LINE_SHARE`` of ``baud`` (bit/s, 8N1: 10 bits a byte), ``BURST_BYTES`` deep,
    and the newest paced DRIVE. Every DRIVE dropped unsent (replaced, too old, car not confirmed,
    dropped by NEUTRAL) counts as ``stats.paced``. Times are ``time.monotonic()`` seconds."""

    def __init__(self, baud: int, stats: LinkStats) -> None:
        self._bytes_per_s = baud / 10.0 * LINE_SHARE  # 8N1: 10 bits a byte
        self._tokens = float(BURST_BYTES)
        self._tokens_at = time.monotonic()
        self._pending: tuple[Drive, float] | None = None
        self._stats = stats

    def spend(self, n: int, force: bool = False) -> bool:
        """Take ``n`` bytes from the budget now; False (nothing taken) when short, unless ``force``
        spends even into debt (safety frames: NEUTRAL, ARM, HEARTBEAT)."""
        now = time.monotonic()
        self._tokens = min(BURST_BYTES, self._tokens + (now - self._tokens_at) * self._bytes_per_s)
        self._tokens_at = now
        if self._tokens < n and not force:
            return False
        self._tokens -= n
        return True

    def hold(self, msg: Drive, now: float) -> None:
        """Keep ``msg`` (paced at ``now``) as the newest command; one already waiting is dropped."""
        if self._pending is not None:
            self._stats.paced += 1  # replaced by a newer command before it could go out
        self._pending = (msg, now)

    def drop(self) -> None:
        """Drop the waiting DRIVE, if any (counted as paced)."""
        if self._pending is not None:
            self._stats.paced += 1
            self._pending = None

    def forget(self) -> None:
        """Drop the waiting DRIVE, if any, without counting it (a NEUTRAL replaces it)."""
        self._pending = None

    def due(self, now: float, confirmed: bool) -> Drive | None:
        """The waiting DRIVE if it may go out at ``now`` (budget spent on it), else None. It is
        dropped when older than ``PENDING_MAX_AGE_S`` or the car no longer confirms the arm."""
        if self._pending is None:
            return None
        msg, since = self._pending
        if now - since > PENDING_MAX_AGE_S or not confirmed:
            self.drop()
            return None
        if self.spend(len_of(msg)):
            self._pending = None
            return msg
        return None
