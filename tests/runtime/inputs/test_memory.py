"""Role memory: the last L commands really sent to the car, oldest first, neutral as zeros."""

from __future__ import annotations

import time

import numpy as np
import pytest

from runtime.events import Events
from runtime.inputs import InputError, MemoryProvider
from runtime.link import SerialDriveLink
from runtime.link.null_link import NullDriveLink
from runtime.link.sent_commands import SentCommands
from runtime.policy import Command
from runtime.sim import CarSimulator
from runtime.watchdog import Watchdog
from tests.runtime.inputs.conftest import MakeFrame

IMG = np.zeros((4, 4, 3), np.uint8)


def fed(p: MemoryProvider, make_frame: MakeFrame) -> list[float]:
    x = p.fill(make_frame(IMG))
    assert x is not None and x is p.out and x.dtype == np.float32 and x.shape == p.shape
    return [float(v) for v in x[0]]


class BrokenLink(NullDriveLink):
    def drive(self, steering: float, throttle: float, tag: int = 0) -> int:
        raise OSError("serial port gone")


def test_interleaved_oldest_first_from_what_the_link_sent(make_frame: MakeFrame) -> None:
    sent = SentCommands(NullDriveLink())
    p = MemoryProvider("mem_in", (1, 6), 3, sent)
    assert fed(p, make_frame) == pytest.approx([0, 0, 0, 0, 0, 0])  # starts in neutral
    sent.drive(0.25, 0.5)
    assert fed(p, make_frame) == pytest.approx([0, 0, 0, 0, 0.25, 0.5])
    sent.drive(-0.75, 0.125)
    assert fed(p, make_frame) == pytest.approx([0, 0, 0.25, 0.5, -0.75, 0.125])
    sent.neutral()  # however the car was stopped, it got zeros
    assert fed(p, make_frame) == [0.25, 0.5, -0.75, 0.125, 0, 0]
    assert p.recorded() == [0.25, 0.5, -0.75, 0.125, 0.0, 0.0]
    p.reset()
    assert fed(p, make_frame) == [0.0] * 6


def test_length_one(make_frame: MakeFrame) -> None:
    sent = SentCommands(NullDriveLink())
    p = MemoryProvider("mem_in", (1, 2), 1, sent)
    sent.drive(0.5, 0.25)
    assert fed(p, make_frame) == pytest.approx([0.5, 0.25])


def test_a_failed_write_is_not_remembered() -> None:
    sent = SentCommands(BrokenLink())
    with pytest.raises(OSError):
        sent.drive(0.5, 0.5)
    assert sent.last == (0.0, 0.0)


def test_a_command_the_link_withheld_is_not_remembered(sim: tuple[CarSimulator, str]) -> None:
    """A real serial link withholds DRIVE until the car confirms ARM (protocol v2): drive() returns
    None, the car never got it, so memory must not hold it."""
    link = SerialDriveLink(sim[1])
    link.open()
    try:
        sent = SentCommands(link)
        assert sent.drive(0.5, 0.25, 1) is None  # not armed: withheld
        assert sent.last == (0.0, 0.0)
    finally:
        link.close()


def test_a_paced_drive_the_link_writes_later_is_remembered(sim: tuple[CarSimulator, str]) -> None:
    """A DRIVE paced to the line rate is held by the link (drive() returns None) and written by its
    next service: memory must hold what the car then got, not the command before it (found on the
    emulated arm64 run, where the slower CPU paces more often)."""
    car, path = sim
    link = SerialDriveLink(path, guard=False)
    link.open()
    try:
        sent = SentCommands(link)
        sent.arm()
        end = time.monotonic() + 2.0
        while not link.car_armed and time.monotonic() < end:
            sent.poll()
            time.sleep(0.005)
        assert link.car_armed
        real_spend = link._pacer.spend
        refused: list[int] = []

        def spend_short_once(n: int, force: bool = False) -> bool:  # the line budget spent, as after a burst
            if not force and not refused:
                refused.append(n)
                return False
            return real_spend(n, force)

        link._pacer.spend = spend_short_once  # type: ignore[method-assign]
        assert sent.drive(0.5004, 0.25, 42) is None and refused  # paced: held as the newest command
        end = time.monotonic() + 2.0
        sent.poll()  # the link's service writes the held DRIVE (within its 20 ms)
        while not any(c["tag"] == 42 for c in car.commands()) and time.monotonic() < end:
            time.sleep(0.005)
        assert any(c["tag"] == 42 for c in car.commands())
        assert sent.last == (0.5004, 0.25)  # what the car is under now, as the pilot asked for it
        sent.neutral()
        assert sent.last == (0.0, 0.0)
    finally:
        link.close()


def test_the_watchdogs_neutral_is_remembered_as_zeros(make_frame: MakeFrame) -> None:
    """Through the real watchdog: a drive, then its deadline expires and the car gets neutral."""
    link = NullDriveLink()
    link.open()
    sent = SentCommands(link)
    wd = Watchdog(sent, Events(), deadline_s=0.03, rate_hz=500).start()
    try:
        p = MemoryProvider("mem_in", (1, 4), 2, sent)
        assert wd.drive(Command(0.3, 0.2, True, 0.3, 0.2), time.monotonic(), 1)
        assert fed(p, make_frame) == pytest.approx([0, 0, 0.3, 0.2])
        time.sleep(0.1)  # no newer command: the watchdog neutrals the car
        assert wd.trips == 1
        assert fed(p, make_frame) == pytest.approx([0.3, 0.2, 0, 0])
        assert not wd.drive(Command(0.9, 0.9, True, 0.9, 0.9), time.monotonic() - 1.0, 2)  # stale: not sent
        assert fed(p, make_frame) == pytest.approx([0, 0, 0, 0])
    finally:
        wd.stop()


def test_a_shape_that_is_not_two_per_command_is_refused() -> None:
    with pytest.raises(InputError, match=r"mem_in.*\[1, 5\]"):
        MemoryProvider("mem_in", (1, 5), 3, SentCommands(NullDriveLink()))
