"""DriveLink over a serial port (pyserial): never blocks the loop for long, survives USB unplugs,
never drives a car that has not confirmed it is armed, and (with the watchdog) hands each
command's deadline to the deadline guard process (runtime/link/guard.py)."""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import select
import termios
import time

import serial

from runtime.link.arming import ARM_RETRY_S, ArmHandshake, seq_at_or_after
from runtime.link.base import CarStatus, LinkError, LinkStats, to_wire
from runtime.link.guard import DeadlineGuard
from runtime.link.health import DISARMED, NO_PORT, NO_STATUS, OK, STATUS_TIMEOUT_S, describe, link_health
from runtime.link.pacing import BURST_BYTES, LINE_SHARE, PENDING_MAX_AGE_S, DrivePacer, len_of
from runtime.link.port_checks import check_path, lock_holder
from runtime.link.protocol import (
    AXIS_MAX,
    CAR_TO_HOST,
    FAILSAFE_MS,
    Arm,
    Drive,
    FrameDecoder,
    Heartbeat,
    Message,
    Neutral,
    ProtocolError,
    Status,
    decode_message,
    encode,
)
from runtime.link.seq import SharedSeq

# Re-exported: tests and tools import these from here (the link's tunables and helpers).
__all__ = [
    "ARM_RETRY_S", "BURST_BYTES", "HEARTBEAT_S", "LINE_SHARE", "PENDING_MAX_AGE_S", "STATUS_TIMEOUT_S",
    "SerialDriveLink", "len_of", "lock_holder", "seq_at_or_after",
]

log = logging.getLogger(__name__)

_PORT_ERRORS = (serial.SerialException, OSError, termios.error)
_MAX_WRITE_TIMEOUTS = 5  # consecutive timed-out writes before the port is treated as gone
_MAX_QUEUED_BYTES = 64  # about four frames: more than that queued means the far end stopped reading
# No STATUS for the car's failsafe time: the car (or the line) stopped listening. What is queued
# for it is old by then: flush it, end it with a NEUTRAL, and withhold DRIVE until a fresh STATUS.
STATUS_FRESH_S = FAILSAFE_MS / 1000
HEARTBEAT_S = 0.2  # nothing written for this long: send HEARTBEAT (keeps the car's 1 s disarm away)


class SerialDriveLink:
    """Protocol v2 over pyserial (docs/protocol.md, "Host implementation").

    Lost ports are reopened every ``reconnect_s`` from within the normal calls (no thread); while
    disconnected, commands are counted as dropped, never raised. DRIVE goes out only while the car
    has confirmed our latest ARM (a STATUS saying armed with ``last_seq`` at or after the ARM's
    SEQ): after a reconnect or a STATUS saying disarmed, DRIVEs are withheld and ARM is repeated
    every ``ARM_RETRY_S`` for as long as the caller wants the car armed. DRIVEs are paced to
    ``LINE_SHARE`` of the line (the newest waits, an older waiting one is dropped); NEUTRAL and ARM
    are never paced. SEQ numbers only frames actually written, in write order. The port is locked
    exclusively; a second user is refused, naming the process that holds it.

    ``baud`` (bit/s, 8N1); ``reconnect_s`` (s) between reopen attempts; ``write_timeout_s`` (s) per
    write (5 timeouts in a row count as a lost port); ``arm_wait_s`` (s) :meth:`arm` waits for the
    car's confirmation; ``guard``: start the deadline guard process (runtime/link/guard.py)."""

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        reconnect_s: float = 0.5,
        write_timeout_s: float = 0.02,
        arm_wait_s: float = 0.02,
        guard: bool = True,
    ) -> None:
        self.port = port
        self.baud = baud
        self.reconnect_s = reconnect_s
        self.write_timeout_s = write_timeout_s
        self.arm_wait_s = arm_wait_s
        self.guard_enabled = guard
        self._guard: DeadlineGuard | None = None
        self._ser: serial.Serial | None = None
        # SEQ of the next frame written; starts at 0, continues over reconnects; shared with the guard
        self._seq = SharedSeq()
        self._stats = LinkStats()
        self._arm = ArmHandshake(self._stats)
        self._opened = False
        self._decoder = FrameDecoder(accept=CAR_TO_HOST)
        self._status: CarStatus | None = None
        self._fresh = False
        self._next_try = 0.0
        self._write_timeouts = 0
        self._nonfinite_episode = False
        self._last_write = -1e9
        self.last_written: tuple[float, float] = (0.0, 0.0)  # the last DRIVE/NEUTRAL written, [-1, 1]
        self._held_command: tuple[float, float] | None = None  # the floats of the DRIVE the pacer holds
        self._pacer = DrivePacer(baud, self._stats)
        self._health = NO_PORT
        self._connected_at = 0.0
        self._missing_reason = "not opened"
        self._stale_since: float | None = None  # DRIVE withheld until a STATUS newer than this
        self._deadline: float | None = None  # the newest command's deadline (set_deadline): no DRIVE after it

    # -- DriveLink -----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the port is open (False between a lost port and its reconnect)."""
        return self._ser is not None

    @property
    def stats(self) -> LinkStats:
        """The link's counters, with the decoder's rejected-frame count and the current health filled in."""
        self._stats.rx_rejected = self._decoder.counters.rejected
        self._stats.health = self.health
        return self._stats

    @property
    def last_status(self) -> CarStatus | None:
        """The newest STATUS from the car (even if already returned by :meth:`poll`), or None."""
        return self._status

    @property
    def car_armed(self) -> bool:
        """The car confirmed our latest ARM (DRIVE frames go out)."""
        return self._arm.confirmed

    @property
    def reached_car(self) -> bool:
        """A valid STATUS has come from the car at least once since ``open()``."""
        return self._stats.status_frames > 0

    @property
    def health(self) -> str:
        """``no_port``, ``no_status`` (connected, the car does not answer), ``disarmed``, ``manual``
        or ``ok``."""
        return link_health(self._ser is not None, self._status, time.monotonic())

    def describe_health(self) -> str:
        """One line for logs, errors and the systemd status."""
        return describe(self.health, self.port, self._missing_reason)

    def start_guard(self) -> None:
        """Start the deadline guard process (runtime/link/guard.py); the watchdog calls this. Without
        it (``guard=0`` in the URL, or it failed to start) ``set_deadline`` only bounds :meth:`drive`."""
        if not self.guard_enabled or self._guard is not None:
            return
        self._guard = DeadlineGuard(self._seq)
        self._guard.start()
        if self._ser is not None:
            self._guard.set_fd(self._ser.fileno())

    @property
    def guard_policy(self) -> str:
        """How the deadline guard runs: ``fifo`` (real-time), ``other`` (normal priority), ``off``
        (``guard=0``) or ``not started`` (before :meth:`start_guard`, or it failed to start)."""
        if not self.guard_enabled:
            return "off"
        return (self._guard.policy if self._guard is not None else None) or "not started"

    def set_deadline(self, deadline: float | None) -> None:
        """Have the guard write NEUTRAL at ``deadline`` (time.monotonic()) unless a newer deadline
        comes first; None: no deadline (the caller is sending neutral itself). :meth:`drive` writes no
        DRIVE once ``deadline`` has passed (with or without the guard)."""
        self._deadline = deadline
        if self._guard is None:
            return
        if deadline is None:
            self._guard.clear()
        else:
            self._guard.arm(deadline)

    def open(self) -> None:
        """Open the port. A missing device is waited for (USB may enumerate late); a path that
        can never work (not a serial device, no permission, locked by another process) raises
        LinkError."""
        check_path(self.port)
        self._opened = True
        self._connect(first=True)
        self._update_health()

    def arm(self) -> None:
        """Ask the car to arm and wait up to ``arm_wait_s`` for its confirmation (reading STATUS);
        DRIVE frames go out only once it has confirmed. Never raises."""
        self._arm.want_armed = True
        self._service()
        if self._arm.confirmed:  # armed and not disarmed since (a NEUTRAL without disarm keeps it armed)
            return
        self._send_arm()
        end = time.monotonic() + self.arm_wait_s
        while not self._arm.confirmed and self._ser is not None and time.monotonic() < end:
            time.sleep(0.001)
            self._service(connect=False)

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
        """Send a DRIVE; returns its SEQ, or None when it was not written (no port, car not
        confirmed armed, paced: then it waits as the newest command)."""
        s, t = to_wire(steering), to_wire(throttle)
        if s is None or t is None:
            self._stats.nonfinite += 1
            if not self._nonfinite_episode:
                log.warning("drive(%r, %r): not finite; sending neutral instead", steering, throttle)
                self._nonfinite_episode = True
            self._pacer.forget()
            return self._send(Neutral())
        self._nonfinite_episode = False
        msg = Drive(s, t, tag & 0xFFFFFFFF)
        self._service()  # statuses first: they may confirm (or revoke) the arm
        if self._ser is None:
            self._stats.dropped += 1
            return None
        if not self._arm.confirmed:
            self._stats.withheld_unarmed += 1
            return None
        if not self._car_listening(time.monotonic()):
            self._stats.withheld_stale += 1
            return None
        if not self._pacer.spend(len_of(msg)):
            self._pacer.hold(msg, time.monotonic())
            self._held_command = (float(steering), float(throttle))
            return None
        self._pacer.drop()
        if self._deadline is not None and time.monotonic() >= self._deadline:
            self._stats.withheld_late += 1  # e.g. the runtime was stopped between its age check and here
            return None
        return self._write(msg, (float(steering), float(throttle)))

    def neutral(self) -> None:
        """Send NEUTRAL now (never paced) and drop a paced DRIVE still waiting. The car stays armed, but a
        car that disarms from here on is not re-armed until :meth:`arm` is called again. Never raises.
        """
        # Neutral means the host does not intend to drive: never re-arm a car that disarms now
        # (protocol.md, host obligations); the next arm() says so again.
        self._arm.want_armed = False
        self._pacer.drop()
        self._send(Neutral())

    def disarm(self) -> None:
        """Send NEUTRAL with the disarm bit now (never paced): the runtime is stopping (SIGTERM), so the
        car's first word of it is neutral *and* disarmed in one frame. Nothing re-arms the car until
        :meth:`arm` is called again. Never raises."""
        self._arm.want_armed = False
        self._pacer.drop()
        self._send(Neutral(disarm=True))

    def heartbeat(self) -> None:
        """Send HEARTBEAT (never paced); the link also sends one itself after ``HEARTBEAT_S`` of silence."""
        self._send(Heartbeat())

    def poll(self) -> CarStatus | None:
        """Non-blocking: read the port, then the newest STATUS if one arrived since the last poll, else
        None.
        """
        self._service()
        if not self._fresh:
            return None
        self._fresh = False
        return self._status

    def close(self) -> None:
        """Send NEUTRAL with disarm (best effort), release the port, and stop the deadline guard quietly."""
        self._arm.want_armed = False
        self._pacer.drop()
        if self._ser is not None:
            self._send(Neutral(disarm=True))
            self._drop_port()
        if self._guard is not None:
            self._on_guard(self._guard.poll())
            self._guard.stop()
            self._guard = None
        self._arm.confirmed = False
        self._opened = False

    # -- internals -----------------------------------------------------------------------------
    def _send(self, msg: Message) -> int | None:
        """Write a frame that is never paced (ARM, NEUTRAL, HEARTBEAT)."""
        if self._opened and self._ser is None:
            self._connect()
        if self._ser is None:
            self._stats.dropped += 1
            return None
        self._pacer.spend(len_of(msg), force=True)
        seq = self._write(msg)
        self._service(connect=False)
        return seq

    def _car_listening(self, now: float) -> bool:
        """False while no STATUS came for ``STATUS_FRESH_S`` (and since then none newer): the car or the
        line is stalled. On entering that state the port's output queue is flushed and a NEUTRAL
        written, so whatever the car still gets of it ends in neutral (its burst rule applies only
        the newest command of a burst: docs/protocol.md)."""
        status = self._status
        heard = status.received_at if status is not None else self._connected_at
        if self._stale_since is not None:
            if heard <= self._stale_since:
                return False
            log.info("car answers again on %s: DRIVE resumes", self.port)
            self._stale_since = None
        if now - heard < STATUS_FRESH_S:
            return True
        self._stale_since = now
        self._stats.stale_flushes += 1
        log.warning("no STATUS from the car for %.0f ms: output flushed, DRIVE withheld until it answers",
                    (now - heard) * 1000)
        self._flush_output()
        self._pacer.drop()
        self._send(Neutral())
        return False

    def _flush_output(self) -> None:
        ser = self._ser
        if ser is None:
            return
        try:
            ser.reset_output_buffer()
        except _PORT_ERRORS as exc:
            log.debug("flushing the output of %s: %s", self.port, exc)

    def _send_arm(self) -> None:
        self._arm.sending(time.monotonic())
        self._arm.sent(self._send(Arm()))

    def _write(self, msg: Message, command: tuple[float, float] | None = None) -> int | None:
        """Encode ``msg`` with the next SEQ and write it. The SEQ is used up as soon as any byte went
        out (a cut frame is rejected by the car's CRC, a complete one is accepted): never reused."""
        ser = self._ser
        if ser is None:
            self._stats.dropped += 1
            return None
        if self._guard is not None:
            self._on_guard(self._guard.poll())
        seq = self._seq.peek()
        frame = encode(msg, seq)
        try:
            # A far end that stopped reading must not get a backlog of old commands replayed later:
            # a DRIVE goes out only onto an empty queue (the newest wins); other frames flush a backlog.
            queued = ser.out_waiting
            if queued > (0 if isinstance(msg, Drive) else _MAX_QUEUED_BYTES):
                ser.reset_output_buffer()
                self._stats.flushed += 1
                log.debug("output backlog of %d bytes on %s dropped", queued, self.port)
            written = self._write_bytes(ser, frame)
        except _PORT_ERRORS as exc:
            self._stats.dropped += 1
            self._lost(str(exc))
            return None
        if written:
            self._seq.used(seq)
        if written != len(frame):
            self._stats.dropped += 1  # timed out (a cut frame: the car's CRC rejects it)
            self._write_timeouts += 1
            if self._write_timeouts >= _MAX_WRITE_TIMEOUTS:
                self._lost(f"{self._write_timeouts} writes timed out")
            return None
        self._write_timeouts = 0
        self._last_write = time.monotonic()
        self._stats.sent += 1
        # What the car is under now, whoever wrote it: drive() itself or, for a paced DRIVE, a later
        # _service (drive() returned None for it); memory inputs read this (SentCommands.last).
        if isinstance(msg, Drive):  # the command as asked (``command``), else as the wire carries it
            self.last_written = command or (msg.steering / AXIS_MAX, msg.throttle / AXIS_MAX)
        elif isinstance(msg, Neutral):
            self.last_written = (0.0, 0.0)
        return seq

    def _write_bytes(self, ser: serial.Serial, frame: bytes) -> int:
        """Write ``frame`` on the port's (non-blocking) descriptor within ``write_timeout_s``; returns the
        bytes written. Not pyserial's write: on a timeout it raises without saying how much went out
        (even after a complete write), which made a written frame look unwritten."""
        fd = ser.fileno()
        end = time.monotonic() + self.write_timeout_s
        done = 0
        while True:
            with contextlib.suppress(BlockingIOError):  # full: wait below for room
                done += os.write(fd, frame[done:])
            if done == len(frame):
                return done
            left = end - time.monotonic()
            if left <= 0:
                return done
            select.select([], [fd], [], left)

    def _service(self, connect: bool = True) -> None:
        """Reconnect when due, read what the car sent, re-arm, flush a paced DRIVE, heartbeat."""
        if self._ser is None and connect and self._opened:
            self._connect()
        ser = self._ser
        if ser is None:
            self._update_health()
            return
        try:
            data = ser.read(4096)  # timeout=0: returns at once
        except _PORT_ERRORS as exc:
            self._lost(str(exc))
            self._update_health()
            return
        now = time.monotonic()
        if self._guard is not None:
            self._on_guard(self._guard.poll())
        for frame in self._decoder.feed(data, now) if data else []:
            try:
                msg = decode_message(frame)
            except ProtocolError as exc:
                self._stats.status_invalid += 1  # counted, never acted on
                log.debug("invalid STATUS ignored: %s", exc)
                continue
            if isinstance(msg, Status):
                self._on_status(CarStatus.from_status(msg, frame.seq, now))
        if self._ser is None:
            return
        paced = self._pacer.due(now, self._arm.confirmed)
        if paced is not None:
            self._write(paced, self._held_command)
        if self._arm.retry_due(now):
            self._send_arm()
        elif now - self._last_write >= HEARTBEAT_S:
            self._stats.heartbeats += 1
            self._pacer.spend(len_of(Heartbeat()), force=True)
            self._write(Heartbeat())
        self._update_health()

    def _on_guard(self, fired: list[int]) -> None:
        self._stats.guard_neutrals += len(fired)  # their SEQs came from the shared counter

    def _on_status(self, status: CarStatus) -> None:
        self._status = status
        self._fresh = True
        self._stats.status_frames += 1
        if status.manual:
            self._stats.manual_frames += 1
        if self._arm.on_status(status.armed, status.last_seq) and self._arm.want_armed:
            log.warning("car reports disarmed; DRIVE withheld until it confirms a new ARM")

    def _update_health(self) -> None:
        h = self.health
        if h == NO_STATUS and self._status is None and time.monotonic() - self._connected_at <= STATUS_TIMEOUT_S:
            return  # just connected: the first STATUS is not due yet
        if h != self._health:
            (log.info if h in (OK, DISARMED) else log.warning)("car link: %s", self.describe_health())
            self._health = h

    def _connect(self, first: bool = False) -> None:
        now = time.monotonic()
        if now < self._next_try:
            return
        self._next_try = now + self.reconnect_s
        try:
            ser = serial.Serial(
                self.port, self.baud, timeout=0, write_timeout=self.write_timeout_s, exclusive=True
            )
        except _PORT_ERRORS as exc:
            self._open_failed(exc, first)
            return
        self._ser = ser
        self._connected_at = now
        if self._guard is not None:
            self._guard.set_fd(ser.fileno())
        self._decoder.reset()
        try:
            ser.reset_input_buffer()  # statuses queued before we came are stale
        except _PORT_ERRORS as exc:
            log.debug("flushing %s: %s", self.port, exc)
        self._write_timeouts = 0
        self._arm.reconnected()
        self._status = None
        if not first:
            self._stats.reconnects += 1
            log.warning("serial port %s reconnected", self.port)
        if self._arm.want_armed:
            self._send_arm()

    def _open_failed(self, exc: BaseException, first: bool) -> None:
        code = getattr(exc, "errno", None)
        text = str(exc)
        if code == errno.EAGAIN or "exclusively lock" in text:
            holder = lock_holder(self.port)
            self._missing_reason = f"is in use by {holder}"
            if first:
                raise LinkError(f"serial port {self.port} is in use by {holder}; stop that process first") from exc
        elif code in (errno.EACCES, errno.EPERM):
            if first:
                raise LinkError(f"no permission to open {self.port}; add the user to 'dialout'") from exc
            self._missing_reason = "cannot be opened (permission denied)"
        elif "Inappropriate ioctl" in text or code == errno.ENOTTY:
            if first:
                raise LinkError(f"{self.port} is not a serial port (no terminal settings); point --serial at "
                                "the car's port (e.g. /dev/rc-car)") from exc
            self._missing_reason = "is not a serial port"
        else:
            self._missing_reason = "does not exist" if not os.path.exists(self.port) else f"cannot be opened ({exc})"
        if first:
            log.warning("serial port %s not available (%s); retrying every %.1f s", self.port, exc, self.reconnect_s)

    def _lost(self, reason: str) -> None:
        log.warning("serial port %s lost (%s); reconnecting every %.1f s", self.port, reason, self.reconnect_s)
        self._missing_reason = f"lost ({reason})"
        self._drop_port()
        self._next_try = time.monotonic() + self.reconnect_s

    def _drop_port(self) -> None:
        ser, self._ser = self._ser, None
        self._arm.confirmed = False
        if ser is not None and self._guard is not None:
            self._guard.set_fd(None)
        if ser is not None:
            try:
                ser.close()
            except _PORT_ERRORS as exc:
                log.debug("closing %s: %s", self.port, exc)

