"""What the runtime loop sees of the car: the DriveLink interface (and the CommandLink part the
watchdog uses), car status and link counters."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any, Protocol, runtime_checkable

from runtime.link.protocol import AXIS_MAX, Status


class LinkError(RuntimeError):
    """A link that cannot work as configured (bad URL, not a serial device, no permission)."""


@dataclass(frozen=True)
class CarStatus:
    """The newest STATUS frame from the car, in host units (steering/throttle in [-1, 1])."""

    mode: str  # "auto" or "manual" (RC transmitter override)
    armed: bool
    failsafe: bool  # the car stopped itself: no valid drive frame for 250 ms
    rc_present: bool
    last_seq: int
    last_tag: int
    steering: float  # what the car outputs now
    throttle: float
    battery_mv: int | None
    rx_errors: int
    seq: int  # the car's own frame counter
    received_at: float  # time.monotonic() when the frame was decoded

    @property
    def manual(self) -> bool:
        """True while the RC transmitter overrides the host (the car ignores DRIVE)."""
        return self.mode == "manual"

    @classmethod
    def from_status(cls, status: Status, seq: int, received_at: float) -> CarStatus:
        """A decoded :class:`~runtime.link.protocol.Status` in host units: axes / ``AXIS_MAX`` -> [-1, 1],
        battery 0 (not measured) -> None; ``seq`` is the frame's SEQ, ``received_at`` monotonic seconds.
        """
        return cls(
            mode="manual" if status.manual else "auto",
            armed=status.armed,
            failsafe=status.failsafe,
            rc_present=status.rc_present,
            last_seq=status.last_seq,
            last_tag=status.last_tag,
            steering=status.steering / AXIS_MAX,
            throttle=status.throttle / AXIS_MAX,
            battery_mv=status.battery_mv or None,
            rx_errors=status.rx_errors,
            seq=seq,
            received_at=received_at,
        )

    def as_dict(self) -> dict[str, Any]:
        """The fields as a plain dict (stats, recordings)."""
        return asdict(self)


@dataclass
class LinkStats:
    """Counters a link keeps for the runtime's stats."""

    sent: int = 0  # frames written
    dropped: int = 0  # commands not written: disconnected or the write failed/timed out
    nonfinite: int = 0  # drive() called with NaN/inf: neutral sent instead
    reconnects: int = 0
    rearms: int = 0  # ARM re-sent because a car that was armed for us said disarmed (reset, silence)
    arm_retries: int = 0  # ARM repeated because the car had not confirmed it yet (lost ARM, slow car)
    status_frames: int = 0  # valid STATUS frames from the car
    status_invalid: int = 0  # CRC-valid STATUS with a bad version/mode/flags/range: never acted on
    rx_rejected: int = 0  # corrupted or foreign frames from the car
    manual_frames: int = 0  # status frames reporting the RC override
    withheld_unarmed: int = 0  # DRIVEs not written because the car had not confirmed it is armed
    paced: int = 0  # DRIVEs not written because the line's byte budget was spent (a newer one won)
    heartbeats: int = 0  # HEARTBEATs sent because nothing else was written for a while
    guard_neutrals: int = 0  # NEUTRALs written by the deadline guard process (runtime/link/guard.py)
    withheld_late: int = 0  # DRIVEs not written: their command's deadline passed before the write
    withheld_stale: int = 0  # DRIVEs not written: no STATUS for the car's failsafe time (stalled car/line)
    stale_flushes: int = 0  # times the output was flushed (and NEUTRAL written) because the car went quiet
    flushed: int = 0  # output backlogs dropped before a write (the far end was not reading)
    health: str = "no_port"  # no_port / no_status / disarmed / manual / ok (null: the null link)

    def as_dict(self) -> dict[str, Any]:
        """The counters as a plain dict (the runtime's stats)."""
        return asdict(self)


class CommandLink(Protocol):
    """The commanding half of a :class:`DriveLink`: what the watchdog (the only writer) calls.

    Wrappers that add bookkeeping around a link (e.g. ``runtime.link.sent_commands.SentCommands``)
    need only these four. Optional extras the watchdog uses when present: ``start_guard``,
    ``set_deadline``, ``reached_car``, ``describe_health``.
    """

    def arm(self) -> Any:
        """Ask the car to arm (then it follows DRIVE frames) before the first drive command."""

    def drive(self, steering: float, throttle: float, tag: int = 0) -> Any:
        """Send one command: ``steering`` and ``throttle`` in [-1, 1]; ``tag`` identifies the frame
        (echoed in STATUS)."""

    def neutral(self) -> Any:
        """Command neutral (steering 0, throttle 0) now."""

    def poll(self) -> Any:
        """Read what the car sent since the last call; its newest status, or None."""


@runtime_checkable
class DriveLink(CommandLink, Protocol):
    """The runtime loop's view of the car. No method raises on a lost port; see docs/protocol.md."""

    def open(self) -> None:
        """Open the port; a missing device is waited for, a path that can never work raises
        :class:`LinkError`.
        """

    def arm(self) -> None:
        """Ask the car to arm; DRIVE frames go out only once it confirmed. Never raises."""

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
        """Send one command (floats in [-1, 1], clamped; NaN/inf -> neutral). Returns its seq, or
        None when it was not written (no port, car not confirmed armed, paced)."""
        ...

    def neutral(self) -> None:
        """Send NEUTRAL (steering 0, throttle 0, still armed) now; never paced. Never raises."""

    def heartbeat(self) -> None:
        """Send HEARTBEAT (keeps an idle car from its 1 s disarm). Never raises."""

    def poll(self) -> CarStatus | None:
        """Non-blocking: the newest status from the car since the last poll, if any."""
        ...

    def close(self) -> None:
        """Send neutral (with disarm) first, best effort, then release the port."""
        ...

    @property
    def connected(self) -> bool:
        """True while the port is open."""

    @property
    def stats(self) -> LinkStats:
        """The link's counters (frames sent, dropped, paced, rejected, health ...)."""


def to_wire(value: float) -> int | None:
    """[-1, 1] float -> protocol units: clamped, then rounded to nearest with ties away from zero
    (C's ``lround``; protocol.md, "Host encoding"); None for NaN/inf."""
    if not math.isfinite(value):
        return None
    scaled = max(-1.0, min(1.0, value)) * AXIS_MAX  # clamp first: huge values cannot overflow
    return int(math.copysign(math.floor(abs(scaled) + 0.5), scaled))
