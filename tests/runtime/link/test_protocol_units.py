"""Protocol v2 details the vectors do not pin: the CRC table itself, each validation error's words
(they end up in the link's logs), saturation, and the decoder's counters and gap rule byte by byte.
Fast: they run against every mutant in ``make mutation``."""

from __future__ import annotations

import pytest

from runtime.link.protocol import (
    _CRC_TABLE,
    _DRIVE,
    _STATUS,
    CAR_TO_HOST,
    HOST_TO_CAR,
    Drive,
    FrameDecoder,
    Heartbeat,
    MsgType,
    ProtocolError,
    Status,
    WireFrame,
    _make_table,
    decode_message,
    encode,
    encode_frame,
    encode_payload,
)

HB = encode(Heartbeat(), 1)  # 7 bytes: A5 00 04 01 00 + CRC
HB2 = encode(Heartbeat(), 2)


def test_the_crc_table_is_the_reflected_ccitt_table() -> None:
    table = _make_table()  # computed again here, not only at import
    assert len(table) == 256 and table == _CRC_TABLE
    # The published CRC-16/X-25 (Kermit) table's entries.
    assert table[:4] == [0x0000, 0x1189, 0x2312, 0x329B]
    assert (table[0x80], table[0xFF]) == (0x8408, 0x0F78)


@pytest.mark.parametrize(("msg", "words"), [
    (Drive(1001, 0), "steering 1001 outside [-1000, 1000]"),
    (Drive(0, -1001), "throttle -1001 outside [-1000, 1000]"),
])
def test_encoding_an_axis_out_of_range_names_it(msg: Drive, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        encode_payload(msg)
    assert str(e.value) == words


def test_a_payload_of_the_wrong_length_is_refused() -> None:
    with pytest.raises(ProtocolError) as e:
        encode_frame(MsgType.DRIVE, 0, b"\x00")
    assert str(e.value) == "type 0x02 needs 8 payload bytes"


def status(**kw: int) -> Status:
    d = dict(version=2, mode=0, flags=0, last_seq=0, last_tag=0, steering=0, throttle=0, battery_mv=0, rx_errors=0)
    d.update(kw)
    return Status(**d)


def test_status_counters_saturate_at_u16() -> None:
    got = decode_message(WireFrame(MsgType.STATUS, 0, encode_payload(status(battery_mv=70000, rx_errors=65536))))
    assert isinstance(got, Status) and (got.battery_mv, got.rx_errors) == (65535, 65535)
    got = decode_message(WireFrame(MsgType.STATUS, 0, encode_payload(status(battery_mv=-5, rx_errors=65535))))
    assert isinstance(got, Status) and (got.battery_mv, got.rx_errors) == (0, 65535)


def status_frame(**kw: int) -> WireFrame:
    s = status(**kw)
    return WireFrame(MsgType.STATUS, 0, _STATUS.pack(s.version, s.mode, s.flags, s.last_seq, s.last_tag, s.steering,
                                                 s.throttle, s.battery_mv, s.rx_errors))


@pytest.mark.parametrize(("frame", "words"), [
    (WireFrame(MsgType.ARM, 0, b"\x01"), "ARM for protocol version 1, this side speaks 2"),
    (WireFrame(MsgType.DRIVE, 0, _DRIVE.pack(-1001, 0, 0)), "steering -1001 outside [-1000, 1000]"),
    (WireFrame(MsgType.DRIVE, 0, _DRIVE.pack(0, 1001, 0)), "throttle 1001 outside [-1000, 1000]"),
    (WireFrame(MsgType.NEUTRAL, 0, b"\x02"), "NEUTRAL with reserved flag bits set: 0x02"),
    (status_frame(version=3), "STATUS from a car speaking protocol version 3, not 2"),
    (status_frame(mode=2), "STATUS with unknown mode 2"),
    (status_frame(flags=0x08), "STATUS with reserved flag bits set: 0x08"),
    (status_frame(steering=1001), "steering 1001 outside [-1000, 1000]"),
    (status_frame(throttle=-1001), "throttle -1001 outside [-1000, 1000]"),
    (WireFrame(0x05, 0, b""), "unknown message type 0x05"),
])
def test_decoding_errors_say_what_broke_the_spec(frame: WireFrame, words: str) -> None:
    with pytest.raises(ProtocolError) as e:
        decode_message(frame)
    assert str(e.value) == words


def test_counters_count_every_byte_and_frame_exactly_once() -> None:
    dec = FrameDecoder(accept=CAR_TO_HOST)
    assert dec.feed(b"\x00\x01") == [] and dec.counters.garbage_bytes == 2  # no SYNC at all
    assert dec.feed(b"\x00\x01\x02") == [] and dec.counters.garbage_bytes == 5
    assert dec.feed(b"\x00" + HB) == [] and dec.counters.garbage_bytes == 6  # before a SYNC
    assert dec.feed(b"\x00\x00" + HB) == [] and dec.counters.garbage_bytes == 8
    assert dec.counters.wrong_direction == 2 and dec.counters.frames == 0  # heartbeats go host -> car


def test_a_wrong_direction_frame_does_not_hide_the_next_one() -> None:
    dec = FrameDecoder(accept=HOST_TO_CAR)
    st = encode(status(), 9)
    assert dec.feed(st + HB + st + HB2) == [WireFrame(MsgType.HEARTBEAT, 1, b""), WireFrame(MsgType.HEARTBEAT, 2, b"")]
    assert (dec.counters.wrong_direction, dec.counters.frames, dec.counters.rejected) == (2, 2, 2)


def test_bad_headers_drop_only_the_sync() -> None:
    dec = FrameDecoder()
    assert dec.feed(b"\xA5\xFF\x04") == []  # LEN 255 fits no type: known bad after three bytes
    assert (dec.counters.bad_header, dec.counters.garbage_bytes, dec.pending) == (1, 2, 0)
    assert dec.feed(b"\xA5\x01\x07" + HB) == [WireFrame(MsgType.HEARTBEAT, 1, b"")]  # type 7 is no type
    assert (dec.counters.bad_header, dec.counters.crc_errors, dec.counters.garbage_bytes) == (2, 0, 4)


def test_crc_errors_drop_only_the_sync() -> None:
    dec = FrameDecoder()
    bad = bytearray(HB)
    bad[-1] ^= 0x01
    assert dec.feed(bytes(bad) + bytes(bad) + HB2) == [WireFrame(MsgType.HEARTBEAT, 2, b"")]
    assert (dec.counters.crc_errors, dec.counters.garbage_bytes, dec.counters.frames) == (2, 12, 1)


def test_the_gap_rule_recovers_frames_inside_an_abandoned_partial() -> None:
    dec = FrameDecoder(gap_s=0.02)
    partial = b"\xA5\x11\x81"  # a STATUS header whose 21 further bytes never come
    assert dec.feed(partial + HB + partial + HB2, now=10.0) == []
    assert dec.feed(b"", now=10.01) == [] and dec.pending == 20  # silent for less than the gap
    got = dec.feed(b"", now=10.05)
    assert got == [WireFrame(MsgType.HEARTBEAT, 1, b""), WireFrame(MsgType.HEARTBEAT, 2, b"")]
    assert dec.counters.stale_partials == 2 and dec.pending == 0


def test_the_gap_is_inclusive() -> None:
    dec = FrameDecoder(gap_s=0.02)
    dec.feed(b"\xA5\x08\x02", now=0.0)
    assert dec.expire(0.02) == [] and dec.pending == 3  # exactly the gap: still waiting
    assert dec.expire(0.03) == [] and dec.pending == 0 and dec.counters.stale_partials == 1


def test_without_times_the_gap_rule_never_fires() -> None:
    dec = FrameDecoder(gap_s=0.02)
    dec.feed(b"\xA5\x08\x02")
    dec.feed(b"\x00")
    assert dec.expire(100.0) == [] and dec.pending == 4
    dec.feed(b"\x00", now=1.0)  # from now on it is timed
    dec.reset()
    assert dec.pending == 0
    dec.feed(b"\xA5\x08\x02")
    assert dec.expire(200.0) == [] and dec.pending == 3  # reset forgot the last receive time
