"""The car's side of the protocol as pure logic (no I/O): what the firmware does, step by step.

``CarModel`` is fed received bytes and the time, and says what the servo/ESC outputs are and which
frames to send back. jetson/firmware/rc_link.c implements the same state machine in C; the
scenarios in docs/protocol_vectors.json are checked against both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runtime.link.protocol import (
    BURST_MS,
    DISARM_MS,
    FAILSAFE_MS,
    HOST_TO_CAR,
    MODE_AUTO,
    MODE_MANUAL,
    PROTOCOL_VERSION,
    STATUS_FLAG_ARMED,
    STATUS_FLAG_FAILSAFE,
    STATUS_FLAG_RC_PRESENT,
    STATUS_PERIOD_MS,
    Arm,
    Drive,
    FrameDecoder,
    Heartbeat,
    Neutral,
    ProtocolError,
    Status,
    WireFrame,
    decode_message,
    encode,
)

_EPS = 1e-6  # float slack so that "at 250 ms" means at 250 ms, as with the firmware's integer ms
EventSink = Callable[[dict[str, Any]], None]


class CarModel:
    """Car state machine. Times are monotonic seconds; every public call takes ``now``."""

    def __init__(
        self,
        *,
        failsafe_ms: float = FAILSAFE_MS,
        disarm_ms: float = DISARM_MS,
        status_period_ms: float = STATUS_PERIOD_MS,
        burst_ms: float = BURST_MS,
        battery_mv: int = 0,
        on_event: EventSink | None = None,
    ) -> None:
        self.failsafe_s = failsafe_ms / 1000
        self.disarm_s = disarm_ms / 1000
        self.status_period_s = status_period_ms / 1000
        self.burst_s = burst_ms / 1000
        self.battery_mv = battery_mv
        self.on_event = on_event
        self.decoder = FrameDecoder(accept=HOST_TO_CAR)
        self.payload_errors = 0
        self.armed = False
        self.failsafe = False
        self.manual = False
        self.rc_present = False
        self.steering = 0  # outputs to the servo / ESC, in protocol units
        self.throttle = 0
        self.last_seq = 0
        self.last_tag = 0
        self.tx_seq = 0
        self._rc = (0, 0)
        self._last_drive_at: float | None = None  # set while outputs follow a DRIVE
        self._last_frame_at: float | None = None
        self._next_status_at: float | None = None
        self._pending: tuple[Drive, int, float] | None = None  # DRIVE, its SEQ, when it arrived (burst rule)

    # -- state ---------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        if self.manual:
            return "manual"
        if not self.armed:
            return "disarmed"
        return "failsafe" if self.failsafe else "armed"

    @property
    def rx_errors(self) -> int:
        c = self.decoder.counters
        return min(c.rejected + self.payload_errors, 0xFFFF)

    def status(self) -> Status:
        flags = (
            (STATUS_FLAG_ARMED if self.armed else 0)
            | (STATUS_FLAG_FAILSAFE if self.failsafe else 0)
            | (STATUS_FLAG_RC_PRESENT if self.rc_present else 0)
        )
        return Status(
            version=PROTOCOL_VERSION,
            mode=MODE_MANUAL if self.manual else MODE_AUTO,
            flags=flags,
            last_seq=self.last_seq,
            last_tag=self.last_tag,
            steering=self.steering,
            throttle=self.throttle,
            battery_mv=self.battery_mv,
            rx_errors=self.rx_errors,
        )

    def next_deadline(self) -> float | None:
        """The earliest time at which ``tick`` has something to do (None: nothing scheduled)."""
        times = [self._next_status_at]
        if self._pending is not None:
            times.append(self._pending[2] + self.burst_s)
        if self.armed and self._last_drive_at is not None:
            times.append(self._last_drive_at + self.failsafe_s)
        if self.armed and self._last_frame_at is not None:
            times.append(self._last_frame_at + self.disarm_s)
        known = [t for t in times if t is not None]
        return min(known) if known else None

    # -- inputs --------------------------------------------------------------------------------
    def receive(self, data: bytes, now: float) -> list[bytes]:
        """Bytes from the host at ``now``; returns the frames the car sends in reply."""
        out = self.tick(now)
        out += self._process(self.decoder.feed(data, now), now)
        return out

    def tick(self, now: float) -> list[bytes]:
        """Timers: drive failsafe, disarm on silence, periodic status. Returns frames to send."""
        # Gap rule first: abandoning a stale partial can uncover complete frames behind it.
        out = self._process(self.decoder.expire(now), now)
        if self._pending is not None and now - self._pending[2] >= self.burst_s - _EPS:
            self._apply_pending(now)
        if self.armed and self._last_drive_at is not None and now - self._last_drive_at >= self.failsafe_s - _EPS:
            self._last_drive_at = None
            self.failsafe = True
            self._set_auto_output(0, 0)
            self._event(now, "failsafe")
            out.append(self._status_frame(now))
        if self.armed and self._last_frame_at is not None and now - self._last_frame_at >= self.disarm_s - _EPS:
            self.armed = False
            self._drop_pending(now)
            self._last_drive_at = None
            self._set_auto_output(0, 0)
            self._event(now, "disarm_timeout")
            out.append(self._status_frame(now))
        if self._next_status_at is None or now >= self._next_status_at - _EPS:
            out.append(self._status_frame(now))
        return out

    def set_manual(self, on: bool, now: float) -> list[bytes]:
        """RC transmitter override (the firmware's AUX switch). Leaving manual means neutral until the
        next DRIVE, never a jump back to an old command."""
        if on == self.manual:
            return []
        self.manual = on
        self.rc_present = self.rc_present or on
        self._drop_pending(now)
        self._last_drive_at = None
        if on:
            self.steering, self.throttle = self._rc
        else:
            self.steering = self.throttle = 0
        self._event(now, "manual_on" if on else "manual_off")
        return [self._status_frame(now)]

    def set_rc(self, steering: int, throttle: int) -> None:
        """What the RC receiver reads; drives the outputs only in manual mode."""
        self._rc = (steering, throttle)
        self.rc_present = True
        if self.manual:
            self.steering, self.throttle = steering, throttle

    # -- internals -----------------------------------------------------------------------------
    def _process(self, frames: list[WireFrame], now: float) -> list[bytes]:
        out: list[bytes] = []
        for frame in frames:
            try:
                msg = decode_message(frame)
            except ProtocolError:
                self.payload_errors += 1
                continue
            self.last_seq = frame.seq
            self._last_frame_at = now
            out += self._handle(msg, frame.seq, now)
        return out

    def _handle(self, msg: object, seq: int, now: float) -> list[bytes]:
        if isinstance(msg, Drive):
            self.last_tag = msg.tag
            self._drop_pending(now)  # a newer DRIVE: the waiting one never takes effect
            if self.armed:
                self._pending = (msg, seq, now)  # takes effect at now + burst_s (tick)
            else:
                self._drive_event(now, msg, seq, applied=False)
            return []
        if isinstance(msg, Arm):
            self.armed = True
            self.failsafe = False
            self._event(now, "arm", seq=seq)
        elif isinstance(msg, Neutral):
            self._drop_pending(now)
            self._last_drive_at = None
            self.failsafe = False
            self._set_auto_output(0, 0)
            if msg.disarm:
                self.armed = False
            self._event(now, "neutral", seq=seq, disarm=msg.disarm)
        elif isinstance(msg, Heartbeat):
            self._event(now, "heartbeat", seq=seq)
        return [self._status_frame(now)]

    def _apply_pending(self, now: float) -> None:
        """The burst rule's wait is over: the newest DRIVE takes effect; the 250 ms count from its arrival."""
        assert self._pending is not None
        msg, seq, arrived = self._pending
        self._pending = None
        self._last_drive_at = arrived
        self.failsafe = False
        self._set_auto_output(msg.steering, msg.throttle)
        self._drive_event(now, msg, seq, applied=not self.manual, arrived=arrived)

    def _drop_pending(self, now: float) -> None:
        if self._pending is not None:
            msg, seq, arrived = self._pending
            self._pending = None
            self._drive_event(now, msg, seq, applied=False, arrived=arrived, superseded=True)

    def _drive_event(self, now: float, msg: Drive, seq: int, applied: bool, arrived: float | None = None,
                     superseded: bool = False) -> None:
        """One "drive" event once its fate is known: ``t`` when it arrived (the 250 ms count from
        there), ``applied_at`` when it took effect (None: it did not; ``superseded``: a newer DRIVE or
        a NEUTRAL came within the burst rule's wait)."""
        extra = {"superseded": True} if superseded else {}
        self._event(now if arrived is None else arrived, "drive", seq=seq, tag=msg.tag, steering=msg.steering / 1000,
                    throttle=msg.throttle / 1000, applied=applied, applied_at=now if applied else None, **extra)

    def _set_auto_output(self, steering: int, throttle: int) -> None:
        if not self.manual:
            self.steering, self.throttle = steering, throttle

    def _status_frame(self, now: float) -> bytes:
        self._next_status_at = now + self.status_period_s
        frame = encode(self.status(), self.tx_seq)
        self.tx_seq = (self.tx_seq + 1) & 0xFFFF
        return frame

    def _event(self, now: float, kind: str, **fields: Any) -> None:
        if self.on_event is not None:
            self.on_event({"t": now, "event": kind, **fields, "state": self.state,
                           "out_steering": self.steering / 1000, "out_throttle": self.throttle / 1000})
