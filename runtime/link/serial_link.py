"""DriveLink over a serial port (pyserial): never blocks the loop for long, survives USB unplugs."""

from __future__ import annotations

import errno
import logging
import os
import stat
import termios
import time

import serial

from runtime.link.base import CarStatus, LinkError, LinkStats, to_wire
from runtime.link.protocol import (
    CAR_TO_HOST,
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

log = logging.getLogger(__name__)

_PORT_ERRORS = (serial.SerialException, OSError, termios.error)
_MAX_WRITE_TIMEOUTS = 5  # consecutive timed-out writes before the port is treated as gone
_MAX_QUEUED_BYTES = 64  # about four frames: more than that queued means the far end stopped reading
_REARM_INTERVAL_S = 0.5


class SerialDriveLink:
    """Protocol v1 over pyserial. Lost ports are reopened every ``reconnect_s`` from within the
    normal calls (no thread); while disconnected, commands are counted as dropped, never raised.
    The link re-arms a car that reports itself disarmed (USB reset, silence) for as long as the
    caller wants it armed; ``close()`` disarms."""

    def __init__(
        self,
        port: str,
        baud: int = 115200,
        reconnect_s: float = 0.5,
        write_timeout_s: float = 0.02,
    ) -> None:
        self.port = port
        self.baud = baud
        self.reconnect_s = reconnect_s
        self.write_timeout_s = write_timeout_s
        self._ser: serial.Serial | None = None
        self._seq = 0
        self._want_armed = False
        self._opened = False
        self._decoder = FrameDecoder(accept=CAR_TO_HOST)
        self._status: CarStatus | None = None
        self._fresh = False
        self._next_try = 0.0
        self._last_rearm = -1e9
        self._write_timeouts = 0
        self._nonfinite_episode = False
        self._stats = LinkStats()

    # -- DriveLink -----------------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._ser is not None

    @property
    def stats(self) -> LinkStats:
        self._stats.rx_rejected = self._decoder.counters.rejected
        return self._stats

    @property
    def last_status(self) -> CarStatus | None:
        return self._status

    def open(self) -> None:
        """Open the port. A missing device is waited for (USB may enumerate late); a path that
        can never work (not a character device, no permission) raises LinkError."""
        self._check_path()
        self._opened = True
        self._connect(first=True)

    def arm(self) -> None:
        self._want_armed = True
        self._last_rearm = time.monotonic()  # statuses already in flight still say "disarmed"
        self._send(Arm())

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int:
        s, t = to_wire(steering), to_wire(throttle)
        if s is None or t is None:
            self._stats.nonfinite += 1
            if not self._nonfinite_episode:
                log.warning("drive(%r, %r): not finite; sending neutral instead", steering, throttle)
                self._nonfinite_episode = True
            return self._send(Neutral())
        self._nonfinite_episode = False
        return self._send(Drive(s, t, tag & 0xFFFFFFFF))

    def neutral(self) -> None:
        # Neutral means the host does not intend to drive: never re-arm a car that disarms now
        # (protocol.md, host obligations); the next arm() says so again.
        self._want_armed = False
        self._send(Neutral())

    def heartbeat(self) -> None:
        self._send(Heartbeat())

    def poll(self) -> CarStatus | None:
        self._service()
        if not self._fresh:
            return None
        self._fresh = False
        return self._status

    def close(self) -> None:
        self._want_armed = False
        if self._ser is not None:
            self._send(Neutral(disarm=True))
            self._drop_port()
        self._opened = False

    # -- internals -----------------------------------------------------------------------------
    def _check_path(self) -> None:
        try:
            st = os.stat(self.port)
        except FileNotFoundError:
            return
        except PermissionError as exc:
            raise LinkError(f"cannot stat {self.port}: {exc.strerror}; check the path's permissions") from exc
        if not stat.S_ISCHR(st.st_mode):
            raise LinkError(f"{self.port} is not a serial device; point --serial at the car's port (e.g. /dev/rc-car)")
        if not os.access(self.port, os.R_OK | os.W_OK):
            raise LinkError(
                f"no permission to open {self.port}; add the user to the 'dialout' group "
                "(the rc-runtime service runs as rc-car with SupplementaryGroups=dialout)"
            )

    def _next_seq(self) -> int:
        seq = self._seq
        self._seq = (self._seq + 1) & 0xFFFF
        return seq

    def _send(self, msg: Message) -> int:
        seq = self._next_seq()
        if self._opened and self._ser is None:
            self._connect()
        if self._ser is None:
            self._stats.dropped += 1
            return seq
        self._write(encode(msg, seq))
        self._service(connect=False)
        return seq

    def _write(self, frame: bytes) -> bool:
        ser = self._ser
        if ser is None:
            self._stats.dropped += 1
            return False
        try:
            # A far end that stopped reading must not get a backlog of old commands replayed later
            # (each one restarting its failsafe timer): drop what is still queued, newest wins.
            if ser.out_waiting > _MAX_QUEUED_BYTES:
                ser.reset_output_buffer()
                self._stats.dropped += 1
                log.debug("output backlog on %s dropped", self.port)
            written = ser.write(frame)
        except serial.SerialTimeoutException:
            self._stats.dropped += 1
            self._write_timeouts += 1
            if self._write_timeouts >= _MAX_WRITE_TIMEOUTS:
                self._lost(f"{self._write_timeouts} writes timed out")
            return False
        except _PORT_ERRORS as exc:
            self._stats.dropped += 1
            self._lost(str(exc))
            return False
        self._write_timeouts = 0
        if written != len(frame):
            self._stats.dropped += 1  # partial frame: the car's CRC rejects it
            return False
        self._stats.sent += 1
        return True

    def _service(self, connect: bool = True) -> None:
        """Reconnect when due, read what the car sent, re-arm a car that reset."""
        if self._ser is None and connect and self._opened:
            self._connect()
        ser = self._ser
        if ser is None:
            return
        try:
            data = ser.read(4096)  # timeout=0: returns at once
        except _PORT_ERRORS as exc:
            self._lost(str(exc))
            return
        if not data:
            return
        now = time.monotonic()
        for frame in self._decoder.feed(data, now):
            try:
                msg = decode_message(frame)
            except ProtocolError:
                continue
            if isinstance(msg, Status):
                self._on_status(CarStatus.from_status(msg, frame.seq, now))

    def _on_status(self, status: CarStatus) -> None:
        self._status = status
        self._fresh = True
        self._stats.status_frames += 1
        if status.manual:
            self._stats.manual_frames += 1
        now = status.received_at
        if self._want_armed and not status.armed and now - self._last_rearm >= _REARM_INTERVAL_S:
            self._last_rearm = now
            self._stats.rearms += 1
            log.info("car reports disarmed; re-arming")
            self._write(encode(Arm(), self._next_seq()))

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
            if first:
                code = getattr(exc, "errno", None)
                if code in (errno.EACCES, errno.EPERM):
                    raise LinkError(f"no permission to open {self.port}; add the user to 'dialout'") from exc
                log.warning("serial port %s not available (%s); retrying every %.1f s", self.port, exc,
                            self.reconnect_s)
            return
        self._ser = ser
        self._decoder.reset()
        try:
            ser.reset_input_buffer()  # statuses queued before we came are stale
        except _PORT_ERRORS as exc:
            log.debug("flushing %s: %s", self.port, exc)
        self._write_timeouts = 0
        if not first:
            self._stats.reconnects += 1
            log.warning("serial port %s reconnected", self.port)
        if self._want_armed:
            self._last_rearm = now
            self._write(encode(Arm(), self._next_seq()))

    def _lost(self, reason: str) -> None:
        log.warning("serial port %s lost (%s); reconnecting every %.1f s", self.port, reason, self.reconnect_s)
        self._drop_port()
        self._next_try = time.monotonic() + self.reconnect_s

    def _drop_port(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except _PORT_ERRORS as exc:
                log.debug("closing %s: %s", self.port, exc)
