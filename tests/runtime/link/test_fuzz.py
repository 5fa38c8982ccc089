"""Corruption is never acted upon: garbage and bit flips (property-based and bulk) through the
decoder and the car's state machine. Counts of tried frames are printed (run with -s)."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runtime.link.protocol import (
    HOST_TO_CAR,
    Arm,
    Drive,
    FrameDecoder,
    Heartbeat,
    Message,
    Neutral,
    decode_message,
    encode,
)
from runtime.sim.car import CarModel

TRIED: Counter[str] = Counter()

axis = st.integers(-1000, 1000)
messages = st.one_of(
    st.builds(Drive, axis, axis, st.integers(0, 2**32 - 1)),
    st.builds(Arm),
    st.builds(Neutral, st.booleans()),
    st.builds(Heartbeat),
)


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print("\nfuzz frames tried:", dict(TRIED), "total corrupted:", TRIED["bitflip"] + TRIED["burst"] + TRIED["bulk_bitflip"] + TRIED["bulk_burst"])


def decode_all(data: bytes) -> list[tuple[int, int, Message]]:
    dec = FrameDecoder(accept=HOST_TO_CAR)
    frames = dec.feed(data, now=0.0) + dec.expire(1.0)
    return [(f.type, f.seq, decode_message(f)) for f in frames]


def flip_bits(frame: bytes, bits: list[int]) -> bytes:
    out = bytearray(frame)
    for b in bits:
        out[b // 8] ^= 1 << (b % 8)
    return bytes(out)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(messages, min_size=2, max_size=12), st.data())
def test_bit_flips_never_accepted(msgs: list[Message], data: st.DataObject) -> None:
    frames = [encode(m, seq) for seq, m in enumerate(msgs)]
    victim = data.draw(st.integers(0, len(frames) - 1))
    nbits = len(frames[victim]) * 8
    bits = data.draw(st.lists(st.integers(0, nbits - 1), min_size=1, max_size=3, unique=True))
    frames[victim] = flip_bits(frames[victim], bits)
    TRIED["bitflip"] += 1
    TRIED["frames"] += len(frames)
    got = decode_all(b"".join(frames))
    # every intact frame comes through, in order; the damaged one never does
    assert [(s, m) for _, s, m in got] == [(s, m) for s, m in enumerate(msgs) if s != victim]


@settings(max_examples=300, deadline=None)
@given(messages, st.data())
def test_bursts_up_to_16_bits_never_accepted(msg: Message, data: st.DataObject) -> None:
    frame = encode(msg, 7)
    nbits = len(frame) * 8
    start = data.draw(st.integers(0, nbits - 2))
    length = data.draw(st.integers(2, min(16, nbits - start)))
    # a burst: first and last bit flipped, anything in between
    inner = data.draw(st.lists(st.integers(start + 1, start + length - 2), unique=True)) if length > 2 else []
    TRIED["burst"] += 1
    assert decode_all(flip_bits(frame, [start, start + length - 1, *inner])) == []


@settings(max_examples=300, deadline=None)
@given(st.binary(min_size=256, max_size=4096))
def test_garbage_never_arms_or_moves_the_car(garbage: bytes) -> None:
    car = CarModel()
    car.receive(garbage, 0.0)
    car.tick(0.5)
    TRIED["garbage_bytes"] += len(garbage)
    assert not car.armed and car.steering == 0 and car.throttle == 0 and car.last_seq == 0


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200), st.lists(messages, min_size=1, max_size=6), st.binary(max_size=200))
def test_frames_survive_surrounding_garbage(before: bytes, msgs: list[Message], after: bytes) -> None:
    stream = before + b"".join(encode(m, 100 + i) for i, m in enumerate(msgs)) + after
    got = [(s, m) for _, s, m in decode_all(stream)]
    TRIED["frames"] += len(msgs)
    # the real frames are all found in order; garbage could only add a frame by a 2**-16 CRC fluke
    expected = [(100 + i, m) for i, m in enumerate(msgs)]
    it = iter(got)
    assert all(any(g == e for g in it) for e in expected)


def test_bulk_corrupted_drives_never_move_an_armed_car() -> None:
    """Seeded bulk run: 60 000 corrupted DRIVE frames (1-3 bit flips or a burst <= 16 bits) into
    an armed car that is stopped; none may change its outputs or refresh its failsafe timer."""
    rng = random.Random(20261123)
    car = CarModel()
    car.receive(encode(Arm(), 0), 0.0)
    accepted = 0
    for i in range(60_000):
        frame = encode(Drive(rng.randint(-1000, 1000), rng.randint(1, 1000), i), i)
        nbits = len(frame) * 8
        if i % 2:
            bits = rng.sample(range(nbits), rng.randint(1, 3))
            TRIED["bulk_bitflip"] += 1
        else:
            start = rng.randrange(nbits - 1)
            length = rng.randint(2, min(16, nbits - start))
            bits = [start, start + length - 1] + [b for b in range(start + 1, start + length - 1) if rng.random() < 0.5]
            TRIED["bulk_burst"] += 1
        car.receive(flip_bits(frame, bits) + encode(Heartbeat(), 0), 0.0)  # heartbeat flushes the parser
        accepted += car.throttle != 0
    assert accepted == 0
    assert car.armed and car.throttle == 0 and car.last_tag == 0


def test_bulk_random_garbage_never_arms_or_moves_the_car() -> None:
    """Seeded bulk run: 4 MiB of random bytes, with extra SYNC bytes so that headers get parsed."""
    rng = random.Random(7)
    car = CarModel()
    for i in range(1024):
        chunk = bytearray(rng.randbytes(4096))
        for pos in rng.sample(range(4096), 64):
            chunk[pos] = 0xA5
        car.receive(bytes(chunk), i * 0.001)
        TRIED["bulk_garbage_bytes"] += len(chunk)
    c = car.decoder.counters
    TRIED["bulk_garbage_candidates"] += c.bad_header + c.crc_errors
    assert not car.armed and car.throttle == 0 and car.steering == 0 and c.frames == 0
