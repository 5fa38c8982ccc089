"""RC car serial protocol, version 2: frames, CRC, messages, and a resynchronising decoder.

The normative description, with test vectors, is docs/protocol.md; this module, the car simulator
(runtime/sim) and the reference firmware (jetson/firmware) all implement it.

Frame (all multi-byte integers little-endian)::

    offset  size  field
    0       1     SYNC   0xA5
    1       1     LEN    payload length; must equal the fixed length of TYPE
    2       1     TYPE   message type (host->car 0x01..0x04, car->host 0x81)
    3       2     SEQ    u16, sender's frame counter, wraps
    5       LEN   PAYLOAD
    5+LEN   2     CRC    CRC-16/IBM-SDLC (X-25) over bytes 1 .. 4+LEN (LEN, TYPE, SEQ, PAYLOAD),
                         low byte first: with the UART's LSB-first bit order the frame is one
                         reflected-CRC codeword on the wire, so every burst <= 16 bits is caught
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum

PROTOCOL_VERSION = 2  # v2: CRC-16/IBM-SDLC instead of CRC-16/CCITT-FALSE (protocol.md, history)
SYNC = 0xA5
HEADER_LEN = 5
CRC_LEN = 2
MAX_PAYLOAD = 17
MAX_FRAME = HEADER_LEN + MAX_PAYLOAD + CRC_LEN
AXIS_MAX = 1000  # steering/throttle on the wire: signed int16 in [-1000, 1000]
SEQ_MOD = 1 << 16
TAG_MOD = 1 << 32

# Timing rules (docs/protocol.md, "Timing"); the simulator and the firmware share them.
FAILSAFE_MS = 250  # armed car: neutral when no valid DRIVE for this long
DISARM_MS = 1000  # armed car: disarm when no valid frame of any type for this long
STATUS_PERIOD_MS = 50  # car sends STATUS at least this often
GAP_MS = 20  # a partial frame whose last byte is older than this is abandoned (rescan)
# Burst rule: a DRIVE takes effect BURST_MS after it arrived unless a newer DRIVE or a NEUTRAL came
# first, so a backlog released at once (a stalled USB board, a host driver queue) is never replayed
# in order: only its newest command counts. 4 ms > two frames back to back (1.3 + 0.7 ms) plus a
# 1 ms clock tick on the firmware; far below any command period.
BURST_MS = 4


class MsgType(IntEnum):
    """The TYPE byte: host->car 0x01..0x04, car->host 0x81 (docs/protocol.md, "Messages")."""

    ARM = 0x01
    DRIVE = 0x02
    NEUTRAL = 0x03
    HEARTBEAT = 0x04
    STATUS = 0x81


PAYLOAD_LEN: dict[int, int] = {
    MsgType.ARM: 1,
    MsgType.DRIVE: 8,
    MsgType.NEUTRAL: 1,
    MsgType.HEARTBEAT: 0,
    MsgType.STATUS: 17,
}
HOST_TO_CAR = frozenset({MsgType.ARM, MsgType.DRIVE, MsgType.NEUTRAL, MsgType.HEARTBEAT})
CAR_TO_HOST = frozenset({MsgType.STATUS})

NEUTRAL_FLAG_DISARM = 0x01
STATUS_FLAG_ARMED = 0x01
STATUS_FLAG_FAILSAFE = 0x02
STATUS_FLAG_RC_PRESENT = 0x04
STATUS_FLAGS_ALL = STATUS_FLAG_ARMED | STATUS_FLAG_FAILSAFE | STATUS_FLAG_RC_PRESENT
MODE_AUTO = 0
MODE_MANUAL = 1

_DRIVE = struct.Struct("<hhI")
_STATUS = struct.Struct("<BBBHIhhHH")


class ProtocolError(ValueError):
    """A frame with a valid CRC whose payload breaks the spec (range, version, reserved bits)."""


CRC_POLY_REFLECTED = 0x8408  # 0x1021 bit-reversed
CRC_INIT = 0xFFFF
CRC_XOROUT = 0xFFFF
CRC_CHECK = 0x906E  # the catalogue's check value: CRC of ASCII "123456789"


def _make_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ CRC_POLY_REFLECTED if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC_TABLE = _make_table()


def crc16(data: bytes | bytearray | memoryview) -> int:
    """CRC-16/IBM-SDLC (also called CRC-16/X-25, the HDLC FCS): poly 0x1021 reflected, init 0xFFFF,
    reflected in and out, final xor 0xFFFF; "123456789" -> 0x906E. Sent low byte first.
    Catalogue entry: https://reveng.sourceforge.io/crc-catalogue/16.htm#crc.cat.crc-16-ibm-sdlc"""
    table, crc = _CRC_TABLE, CRC_INIT
    for b in data:
        crc = (crc >> 8) ^ table[(crc ^ b) & 0xFF]
    return crc ^ CRC_XOROUT


# ---------------------------------------------------------------------------------------------
# Messages


@dataclass(frozen=True)
class Arm:
    """ARM: the host asks the car to arm; ``version`` must be :data:`PROTOCOL_VERSION` (the car refuses
    others).
    """

    version: int = PROTOCOL_VERSION


@dataclass(frozen=True)
class Drive:
    """DRIVE: steering and throttle in wire units (int16 in [-1000, 1000]) and a u32 ``tag``."""

    steering: int  # -1000 full left .. +1000 full right
    throttle: int  # -1000 full reverse/brake .. +1000 full forward
    tag: int = 0  # u32 chosen by the host (the runtime passes the camera frame id)


@dataclass(frozen=True)
class Neutral:
    """NEUTRAL: steering and throttle 0 at once; ``disarm`` also disarms the car (the host is leaving)."""

    disarm: bool = False


@dataclass(frozen=True)
class Heartbeat:
    """HEARTBEAT: no payload; keeps an armed car that gets no DRIVE from disarming after ``DISARM_MS``."""

    pass


@dataclass(frozen=True)
class Status:
    """STATUS, car -> host, at least every ``STATUS_PERIOD_MS``: protocol version, mode, flags, the last
    host SEQ and DRIVE tag it accepted, what it outputs now (wire units), battery (mV) and its
    rejected-frame count. :func:`decode_message` checks every field the host acts on.
    """

    version: int
    mode: int  # MODE_AUTO or MODE_MANUAL
    flags: int  # STATUS_FLAG_*
    last_seq: int  # SEQ of the last valid host frame the car accepted
    last_tag: int  # TAG of the last valid DRIVE
    steering: int  # what the car outputs now, same units as Drive
    throttle: int
    battery_mv: int  # 0 = not measured
    rx_errors: int  # frames rejected (bad header/CRC/payload), saturates at 65535

    @property
    def armed(self) -> bool:
        """Flag bit 0: the car is armed (a valid DRIVE sets its outputs)."""
        return bool(self.flags & STATUS_FLAG_ARMED)

    @property
    def failsafe(self) -> bool:
        """The car stopped itself: no valid DRIVE for ``FAILSAFE_MS`` (250 ms)."""
        return bool(self.flags & STATUS_FLAG_FAILSAFE)

    @property
    def rc_present(self) -> bool:
        """Flag bit 2: the car's RC receiver has a signal."""
        return bool(self.flags & STATUS_FLAG_RC_PRESENT)

    @property
    def manual(self) -> bool:
        """The RC transmitter overrides the host (mode MODE_MANUAL)."""
        return self.mode == MODE_MANUAL


Message = Arm | Drive | Neutral | Heartbeat | Status


@dataclass(frozen=True)
class WireFrame:
    """A CRC-valid frame as the decoder returns it: TYPE, SEQ (u16) and the raw payload; see
    :func:`decode_message`.
    """

    type: int
    seq: int
    payload: bytes


def message_type(msg: Message) -> MsgType:
    """The TYPE byte for a message object."""
    if isinstance(msg, Arm):
        return MsgType.ARM
    if isinstance(msg, Drive):
        return MsgType.DRIVE
    if isinstance(msg, Neutral):
        return MsgType.NEUTRAL
    if isinstance(msg, Heartbeat):
        return MsgType.HEARTBEAT
    return MsgType.STATUS


def _check_axis(name: str, value: int) -> None:
    if not -AXIS_MAX <= value <= AXIS_MAX:
        raise ProtocolError(f"{name} {value} outside [-{AXIS_MAX}, {AXIS_MAX}]")


def encode_payload(msg: Message) -> bytes:
    """Payload bytes of ``msg``; raises ProtocolError for values the spec forbids."""
    if isinstance(msg, Arm):
        return bytes([msg.version & 0xFF])
    if isinstance(msg, Drive):
        _check_axis("steering", msg.steering)
        _check_axis("throttle", msg.throttle)
        return _DRIVE.pack(msg.steering, msg.throttle, msg.tag % TAG_MOD)
    if isinstance(msg, Neutral):
        return bytes([NEUTRAL_FLAG_DISARM if msg.disarm else 0])
    if isinstance(msg, Heartbeat):
        return b""
    return _STATUS.pack(
        msg.version,
        msg.mode,
        msg.flags,
        msg.last_seq % SEQ_MOD,
        msg.last_tag % TAG_MOD,
        msg.steering,
        msg.throttle,
        max(0, min(msg.battery_mv, 0xFFFF)),
        max(0, min(msg.rx_errors, 0xFFFF)),
    )


def encode_frame(msg_type: int, seq: int, payload: bytes) -> bytes:
    """SYNC, LEN, TYPE, SEQ (u16 LE, taken modulo 2**16), ``payload``, then the CRC-16/IBM-SDLC of LEN..payload,
    low byte first (https://reveng.sourceforge.io/crc-catalogue/16.htm#crc.cat.crc-16-ibm-sdlc).
    Raises :class:`ProtocolError` when ``payload`` is not the fixed length of ``msg_type``.
    """
    if PAYLOAD_LEN.get(msg_type) != len(payload):
        raise ProtocolError(f"type 0x{msg_type:02X} needs {PAYLOAD_LEN.get(msg_type)} payload bytes")
    body = bytes([len(payload), msg_type]) + (seq % SEQ_MOD).to_bytes(2, "little") + payload
    return bytes([SYNC]) + body + crc16(body).to_bytes(2, "little")


def encode(msg: Message, seq: int) -> bytes:
    """One complete frame carrying ``msg`` with sequence number ``seq`` (taken modulo 2**16)."""
    return encode_frame(message_type(msg), seq, encode_payload(msg))


def decode_message(frame: WireFrame) -> Message:
    """The message in a CRC-valid frame; raises ProtocolError when its payload breaks the spec."""
    t, p = frame.type, frame.payload
    if t == MsgType.ARM:
        if p[0] != PROTOCOL_VERSION:
            raise ProtocolError(f"ARM for protocol version {p[0]}, this side speaks {PROTOCOL_VERSION}")
        return Arm(p[0])
    if t == MsgType.DRIVE:
        steering, throttle, tag = _DRIVE.unpack(p)
        _check_axis("steering", steering)
        _check_axis("throttle", throttle)
        return Drive(steering, throttle, tag)
    if t == MsgType.NEUTRAL:
        if p[0] & ~NEUTRAL_FLAG_DISARM:
            raise ProtocolError(f"NEUTRAL with reserved flag bits set: 0x{p[0]:02X}")
        return Neutral(bool(p[0] & NEUTRAL_FLAG_DISARM))
    if t == MsgType.HEARTBEAT:
        return Heartbeat()
    if t == MsgType.STATUS:
        status = Status(*_STATUS.unpack(p))
        # Every field the host acts on is checked (protocol.md, "STATUS validation").
        if status.version != PROTOCOL_VERSION:
            raise ProtocolError(f"STATUS from a car speaking protocol version {status.version}, not {PROTOCOL_VERSION}")
        if status.mode not in (MODE_AUTO, MODE_MANUAL):
            raise ProtocolError(f"STATUS with unknown mode {status.mode}")
        if status.flags & ~STATUS_FLAGS_ALL:
            raise ProtocolError(f"STATUS with reserved flag bits set: 0x{status.flags:02X}")
        _check_axis("steering", status.steering)
        _check_axis("throttle", status.throttle)
        return status
    raise ProtocolError(f"unknown message type 0x{t:02X}")


# ---------------------------------------------------------------------------------------------
# Decoder


@dataclass
class DecoderCounters:
    """What a :class:`FrameDecoder` returned and rejected, for link stats and the fuzz tests."""

    frames: int = 0  # CRC-valid frames returned
    bad_header: int = 0  # SYNC followed by an unknown TYPE or a LEN that does not match it
    crc_errors: int = 0
    wrong_direction: int = 0  # CRC-valid frame of a type this side does not receive
    garbage_bytes: int = 0  # bytes skipped while looking for SYNC
    stale_partials: int = 0  # partial frames abandoned after GAP_MS of silence

    @property
    def rejected(self) -> int:
        """Frames rejected: bad headers, CRC errors, wrong-direction types and abandoned partials (not
        garbage bytes).
        """
        return self.bad_header + self.crc_errors + self.wrong_direction + self.stale_partials


class FrameDecoder:
    """Byte stream in, CRC-valid frames out; resynchronises on garbage.

    On a bad header or CRC it drops only the SYNC byte and rescans, so a real frame that starts
    inside a corrupted one is still found. ``accept`` limits the types returned (the car takes
    HOST_TO_CAR, the host CAR_TO_HOST); others are counted and dropped. ``gap_s`` (s, default
    ``GAP_MS``): a partial frame silent for longer is abandoned (see :meth:`expire`).
    """

    def __init__(self, accept: frozenset[int] | None = None, gap_s: float = GAP_MS / 1000) -> None:
        self.accept = accept
        self.gap_s = gap_s
        self.counters = DecoderCounters()
        self._buf = bytearray()
        self._last_rx: float | None = None

    @property
    def pending(self) -> int:
        """Bytes held while waiting for the rest of a frame."""
        return len(self._buf)

    def feed(self, data: bytes, now: float | None = None) -> list[WireFrame]:
        """Add received bytes; ``now`` (monotonic seconds) enables the inter-byte gap rule."""
        out = self.expire(now) if now is not None else []
        if data:
            self._buf += data
            if now is not None:
                self._last_rx = now
        out += self._parse()
        return out

    def expire(self, now: float) -> list[WireFrame]:
        """Apply the gap rule: a partial frame silent for more than ``gap_s`` is abandoned (its
        SYNC dropped and the rest rescanned, so complete frames inside it still come out)."""
        out: list[WireFrame] = []
        if not self._buf or self._last_rx is None or now - self._last_rx <= self.gap_s + 1e-9:
            return out
        while self._buf:
            out += self._parse()
            if self._buf:
                self.counters.stale_partials += 1
                del self._buf[0]
        return out

    def reset(self) -> None:
        """Forget buffered bytes and the gap timer (after the port was reopened); counters are kept."""
        self._buf.clear()
        self._last_rx = None

    def _parse(self) -> list[WireFrame]:
        buf, c, out = self._buf, self.counters, []
        while buf:
            start = buf.find(SYNC)
            if start < 0:
                c.garbage_bytes += len(buf)
                buf.clear()
                break
            if start:
                c.garbage_bytes += start
                del buf[:start]
            if len(buf) < 3:
                break
            length, msg_type = buf[1], buf[2]
            if PAYLOAD_LEN.get(msg_type, -1) != length:
                c.bad_header += 1
                del buf[0]
                continue
            total = HEADER_LEN + length + CRC_LEN
            if len(buf) < total:
                break
            end = HEADER_LEN + length
            if crc16(buf[1:end]) != int.from_bytes(buf[end:total], "little"):
                c.crc_errors += 1
                del buf[0]
                continue
            frame = WireFrame(msg_type, int.from_bytes(buf[3:5], "little"), bytes(buf[HEADER_LEN:end]))
            del buf[:total]
            if self.accept is not None and msg_type not in self.accept:
                c.wrong_direction += 1
                continue
            c.frames += 1
            out.append(frame)
        return out
