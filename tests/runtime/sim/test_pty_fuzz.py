"""Garbage and corrupted frames through a real pseudo-terminal into the running simulator."""

from __future__ import annotations

import os
import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from runtime.link.protocol import Arm, Drive, encode
from runtime.sim import start_pty_simulator


@settings(max_examples=25, deadline=None)
@given(st.binary(min_size=0, max_size=512), st.integers(0, 2**31))
def test_only_intact_drive_frames_are_applied(garbage: bytes, seed: int) -> None:
    rng = random.Random(seed)
    sim, path = start_pty_simulator()
    fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
    try:
        os.write(fd, garbage + encode(Arm(), 1))
        good: list[int] = []
        for i in range(40):
            frame = bytearray(encode(Drive(rng.randint(-1000, 1000), 500, 1000 + i), 2 + i))
            if rng.random() < 0.5:  # corrupt this one: 1-3 bit flips
                for bit in rng.sample(range(len(frame) * 8), rng.randint(1, 3)):
                    frame[bit // 8] ^= 1 << (bit % 8)
            else:
                good.append(1000 + i)
            os.write(fd, bytes(frame) + rng.randbytes(rng.randint(0, 8)))
        time.sleep(0.03)  # let the gap rule flush a trailing partial
        assert sim.wait_for(lambda s: (not good) or (bool(s.commands()) and s.commands()[-1]["tag"] == good[-1]), timeout=2)
        assert [c["tag"] for c in sim.commands()] == good
    finally:
        os.close(fd)
        sim.stop()
