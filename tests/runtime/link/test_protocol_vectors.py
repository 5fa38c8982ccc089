"""The host implementation against the spec's test vectors (docs/protocol_vectors.json)."""

from __future__ import annotations

import pytest

from runtime.link.protocol import (
    CAR_TO_HOST,
    HOST_TO_CAR,
    PROTOCOL_VERSION,
    Drive,
    FrameDecoder,
    Heartbeat,
    MsgType,
    ProtocolError,
    crc16,
    decode_message,
    encode,
)
from tests.runtime.link.vectors import canonical, describe, hexbytes, load_vectors, message

V = load_vectors()


def reference_crc(data: bytes) -> int:
    """CRC-16/IBM-SDLC written out from the catalogue's parameters, bit by bit (poly 0x1021,
    init 0xFFFF, refin, refout, xorout 0xFFFF): an independent check of the table version."""
    crc = 0xFFFF
    for byte in data:
        for i in range(8):  # refin: the byte's least significant bit first
            bit = ((byte >> i) & 1) ^ ((crc >> 15) & 1)
            crc = ((crc << 1) & 0xFFFF) ^ (0x1021 if bit else 0)
    crc = int(f"{crc:016b}"[::-1], 2)  # refout
    return crc ^ 0xFFFF


def test_crc_is_the_catalogue_crc16_ibm_sdlc() -> None:
    assert V["crc"]["algorithm"] == "CRC-16/IBM-SDLC"
    assert V["protocol_version"] == PROTOCOL_VERSION == 2
    for check in V["crc"]["check"]:
        data = check["ascii"].encode()
        assert int(check["crc"], 16) == 0x906E  # the catalogue's check value for CRC-16/IBM-SDLC
        assert crc16(data) == 0x906E
        assert reference_crc(data) == 0x906E
    rng = __import__("random").Random(1)
    for n in range(40):
        data = rng.randbytes(n)
        assert crc16(data) == reference_crc(data)


@pytest.mark.parametrize("vec", V["frames"], ids=lambda v: v["name"])
def test_frame_vector_encodes_and_decodes(vec: dict) -> None:
    raw = hexbytes(vec["hex"])
    msg = message(vec["type"], vec["fields"])
    assert encode(msg, vec["seq"]) == raw
    # the CRC in the vector is the standard one, not just ours
    assert int.from_bytes(raw[-2:], "little") == reference_crc(raw[1:-2])
    frames = FrameDecoder().feed(raw)
    assert len(frames) == 1
    assert frames[0].type == MsgType[vec["type"]] and frames[0].seq == vec["seq"]
    assert decode_message(frames[0]) == msg
    assert describe(frames[0]) == canonical(vec["type"], vec["seq"], vec["fields"])


@pytest.mark.parametrize("vec", V["invalid"], ids=lambda v: v["name"])
def test_invalid_vector_yields_no_message(vec: dict) -> None:
    dec = FrameDecoder()
    frames = dec.feed(hexbytes(vec["hex"]))
    if vec["reject"] == "payload":
        assert len(frames) == 1
        with pytest.raises(ProtocolError):
            decode_message(frames[0])
    else:
        assert frames == []
        counter = {"crc": dec.counters.crc_errors, "header": dec.counters.bad_header}[vec["reject"]]
        assert counter >= 1


@pytest.mark.parametrize("vec", V["streams"], ids=lambda v: v["name"])
@pytest.mark.parametrize("chunk", [1, 3, 1000])
def test_stream_vector_resynchronises(vec: dict, chunk: int) -> None:
    data = hexbytes(vec["hex"])
    dec = FrameDecoder(accept=HOST_TO_CAR)
    frames = []
    for i in range(0, len(data), chunk):
        frames += dec.feed(data[i : i + chunk])
    assert [describe(f) for f in frames] == vec["expect"]


def test_direction_filter() -> None:
    status = next(v for v in V["frames"] if v["type"] == "STATUS")
    arm = next(v for v in V["frames"] if v["type"] == "ARM")
    car = FrameDecoder(accept=HOST_TO_CAR)
    assert car.feed(hexbytes(status["hex"])) == []
    assert car.counters.wrong_direction == 1
    host = FrameDecoder(accept=CAR_TO_HOST)
    assert host.feed(hexbytes(arm["hex"])) == []
    assert len(host.feed(hexbytes(status["hex"]))) == 1


def test_encoder_refuses_out_of_range() -> None:
    with pytest.raises(ProtocolError):
        encode(Drive(1001, 0), 0)
    with pytest.raises(ProtocolError):
        encode(Drive(0, -1001), 0)


def test_gap_rule_abandons_stale_partial() -> None:
    hb = encode(Heartbeat(), 2)
    dec = FrameDecoder(accept=HOST_TO_CAR)
    assert dec.feed(bytes.fromhex("A5 08 02 00") + hb, now=0.0) == []
    assert dec.expire(0.019) == []
    frames = dec.expire(0.021)
    assert [f.type for f in frames] == [MsgType.HEARTBEAT]
    assert dec.counters.stale_partials == 1 and dec.pending == 0


@pytest.mark.parametrize("vec", V["host_encoding"], ids=lambda v: str(v["value"]))
def test_host_encoding_clamps_and_rounds_ties_away_from_zero(vec: dict) -> None:
    # v1 rounded ties to even (Python's round): 0.0625 -> 62, where C's lround (and the spec) give 63.
    from runtime.link.base import to_wire

    assert to_wire(float(vec["value"])) == vec["wire"]
