"""The host's side of the arming handshake (docs/protocol.md, "Host implementation"): which ARM the
car must confirm, whether it has, and when to send ARM again (retry, or re-arm after a disarm)."""

from __future__ import annotations

from runtime.link.base import LinkStats
from runtime.link.protocol import SEQ_MOD

ARM_RETRY_S = 0.05  # ARM again this soon while the car has not confirmed it (one STATUS period)


def seq_at_or_after(seq: int, ref: int) -> bool:
    """``seq`` is ``ref`` or later in u16 serial-number order (within half the space)."""
    return (seq - ref) % SEQ_MOD < SEQ_MOD // 2


class ArmHandshake:
    """DRIVE may go out only while :attr:`confirmed`: the car sent a STATUS saying armed with
    ``last_seq`` at or after the SEQ of our latest ARM, and no STATUS saying disarmed since.

    :attr:`want_armed` is the caller's intent (set by ``arm()``, cleared by ``neutral()``/``close()``);
    while it holds and the car has not confirmed, :meth:`retry_due` says when to send ARM again
    (every ``ARM_RETRY_S`` s), counting each as ``stats.arm_retries`` or, after the car had confirmed
    and then said disarmed, as ``stats.rearms``. Times are ``time.monotonic()`` seconds."""

    def __init__(self, stats: LinkStats) -> None:
        self.want_armed = False
        self.confirmed = False  # the car confirmed our latest ARM and has not said disarmed since
        self._lost_arm = False  # it had confirmed, then said disarmed: the next ARM is a re-arm
        self._arm_seq: int | None = None
        self._last_arm = -1e9
        self._stats = stats

    def sending(self, now: float) -> None:
        """An ARM is about to be written at ``now`` (s): no retry is due before ``now + ARM_RETRY_S``."""
        self._last_arm = now

    def sent(self, seq: int | None) -> None:
        """The ARM went out with SEQ ``seq`` (None: it was not written); the car must confirm this one."""
        if seq is not None:
            self._arm_seq = seq
            self.confirmed = False  # until a STATUS covers this ARM

    def retry_due(self, now: float) -> bool:
        """True when ARM should be sent again at ``now`` (s); counts it as a retry or a re-arm."""
        if not (self.want_armed and not self.confirmed and now - self._last_arm >= ARM_RETRY_S):
            return False
        if self._lost_arm:  # the car was armed for us and is not any more
            self._stats.rearms += 1
            self._lost_arm = False
        else:
            self._stats.arm_retries += 1
        return True

    def on_status(self, armed: bool, last_seq: int) -> bool:
        """Take a STATUS's ``armed`` flag and ``last_seq`` (u16); True when it revokes a confirmed arm."""
        if armed:
            if self._arm_seq is not None and seq_at_or_after(last_seq, self._arm_seq):
                self.confirmed = True
            return False
        if not self.confirmed:
            return False
        self.confirmed = False  # a reset board, silence, or its own disarm: re-arm before driving
        self._lost_arm = True
        return True

    def reconnected(self) -> None:
        """A fresh port: nothing the car confirmed before counts, and no ARM is outstanding."""
        self.confirmed = False
        self._arm_seq = None
