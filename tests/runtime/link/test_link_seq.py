"""SEQ on the wire never goes back and is never reused (docs/protocol.md, "Host obligations"), on a real
pty with the car simulator: the deadline guard's NEUTRAL takes the host's next number when it writes
(it used to take the number the host had when it handed over the deadline), and a write that pyserial
reports as timed out after it wrote everything still uses its number (it used to be reused)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from runtime.link import SerialDriveLink
from runtime.sim import CarSimulator, start_pty_simulator


@pytest.fixture
def car() -> Iterator[tuple[CarSimulator, str]]:
    sim, path = start_pty_simulator()
    yield sim, path
    sim.stop()


def received_seqs(sim: CarSimulator) -> list[int]:
    """SEQs of the frames the car logged as they arrived (HEARTBEAT, NEUTRAL, ARM), in arrival order."""
    return [e["seq"] for e in list(sim.events) if e["event"] in ("heartbeat", "neutral", "arm")]


def test_guard_neutral_never_takes_an_older_seq(car: tuple[CarSimulator, str]) -> None:
    sim, path = car
    link = SerialDriveLink(path)
    link.open()
    link.start_guard()
    try:
        for _ in range(3):
            link.set_deadline(time.monotonic() + 0.03)  # the guard's NEUTRAL comes after the two below
            link.heartbeat()
            link.heartbeat()
            deadline = time.monotonic() + 1.0
            while link.stats.guard_neutrals == 0 and time.monotonic() < deadline:
                time.sleep(0.005)
                link.poll()
            assert link.stats.guard_neutrals >= 1
            link.stats.guard_neutrals = 0
        link.heartbeat()
        assert sim.wait_for(lambda s: len(received_seqs(s)) >= 10)
    finally:
        link.close()
    seqs = received_seqs(sim)
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"SEQ on the wire: {seqs}"


def test_a_write_reported_late_still_uses_its_seq(car: tuple[CarSimulator, str]) -> None:
    sim, path = car
    # A write timeout that has always passed by the time the write returns: pyserial raised
    # SerialTimeoutException after writing the whole frame (as under load with 20 ms).
    link = SerialDriveLink(path, write_timeout_s=1e-9)
    link.open()
    try:
        for _ in range(4):
            link.heartbeat()
        assert sim.wait_for(lambda s: len(received_seqs(s)) >= 4)
    finally:
        link.close()
    seqs = received_seqs(sim)[:4]
    assert seqs == [0, 1, 2, 3], f"SEQ on the wire: {seqs}"
    assert link.stats.sent >= 4
