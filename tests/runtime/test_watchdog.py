"""The watchdog against the car simulator over a real pty: neutral first, on expiry, on halt."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runtime.events import Events
from runtime.link import SerialDriveLink
from runtime.policy import Command
from runtime.sim import CarSimulator
from runtime.watchdog import Watchdog
from tests.runtime.helpers import host_neutrals, open_armed_link

DEADLINE = 0.1
MARGIN = 0.12  # scheduling slack on a loaded 2-core machine; the car's own failsafe is at 0.25 s


def cmd(s: float = 0.25, t: float = 0.3) -> Command:
    return Command(s, t, True, s, t)


@pytest.fixture
def link(sim: tuple[CarSimulator, str]) -> Iterator[SerialDriveLink]:
    lk = open_armed_link(sim[1])
    yield lk
    lk.close()


def test_neutral_until_the_first_command_then_drive(sim: tuple[CarSimulator, str], link: SerialDriveLink) -> None:
    car, _ = sim
    wd = start_watchdog(link)
    try:
        assert car.wait_for(lambda s: len(host_neutrals(s)) >= 2, 1.0)  # neutral, repeated
        assert not car.commands()
        assert wd.drive(cmd(), time.monotonic(), tag=7)
        assert car.wait_for(lambda s: s.output.throttle == 0.3, 1.0)
        assert car.commands()[-1]["tag"] == 7 and car.state == "armed"
    finally:
        wd.stop()


def test_neutral_within_the_deadline_when_commands_stop(sim: tuple[CarSimulator, str], link: SerialDriveLink) -> None:
    car, _ = sim
    wd = start_watchdog(link)
    try:
        t = time.monotonic()
        assert wd.drive(cmd(), t, tag=1)
        assert car.wait_for(lambda s: len(s.commands()) == 1, 1.0)
        t_drive = car.commands()[-1]["t"]
        assert car.wait_for(lambda s: any(n > t_drive for n in host_neutrals(s)), 1.0)
        t_neutral = min(n for n in host_neutrals(car) if n > t_drive)
        assert DEADLINE - 0.01 <= t_neutral - t <= DEADLINE + MARGIN
        end = time.monotonic() + 0.5  # the guard process may have written that neutral a tick before this thread
        while wd.trips == 0 and time.monotonic() < end:
            time.sleep(0.002)
        assert wd.trips == 1 and wd.events.active("watchdog.expired")
        assert car.output.neutral and car.state == "armed"  # the host stopped it, not the car's failsafe
    finally:
        wd.stop()


def test_a_command_from_a_stale_frame_is_not_sent(sim: tuple[CarSimulator, str], link: SerialDriveLink) -> None:
    car, _ = sim
    wd = start_watchdog(link)
    try:
        assert not wd.drive(cmd(), time.monotonic() - 0.15, tag=3)
        # Had it been sent, the car would act on it for up to a deadline: watch that long.
        assert not car.wait_for(lambda s: len(s.commands()) > 0, DEADLINE)
        assert wd.commands == 0
    finally:
        wd.stop()


def test_halt_gives_neutral_at_once_and_refuses_drive(sim: tuple[CarSimulator, str], link: SerialDriveLink) -> None:
    car, _ = sim
    halt = threading.Event()
    wd = start_watchdog(link, halt=halt)
    try:
        assert wd.drive(cmd(), time.monotonic(), tag=1)
        assert car.wait_for(lambda s: len(s.commands()) == 1, 1.0)
        t_halt = time.monotonic()
        halt.set()
        assert car.wait_for(lambda s: any(n > t_halt for n in host_neutrals(s)), 1.0)
        assert min(n for n in host_neutrals(car) if n > t_halt) - t_halt < MARGIN
        assert not wd.drive(cmd(), time.monotonic(), tag=2)
    finally:
        wd.stop()


class BrokenLink:
    """A link whose port fails on every write (the serial link itself never raises; this checks
    that the watchdog survives one that does)."""

    def arm(self) -> None:
        raise OSError("port gone")

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int:
        raise OSError("port gone")

    def neutral(self) -> None:
        raise OSError("port gone")

    def poll(self) -> None:
        return None


def test_link_errors_are_events_not_crashes() -> None:
    wd = start_watchdog(BrokenLink())
    try:
        assert not wd.drive(cmd(), time.monotonic(), tag=1)
        time.sleep(0.05)
        assert wd.events.active("link.error") and not wd.healthy()
    finally:
        wd.stop()


def test_manual_override_is_visible(sim: tuple[CarSimulator, str], link: SerialDriveLink) -> None:
    car, _ = sim
    wd = start_watchdog(link)
    try:
        car.set_manual(True)
        t_end = time.monotonic() + 1.0
        while not wd.events.active("link.manual_override") and time.monotonic() < t_end:
            time.sleep(0.01)
        assert wd.events.active("link.manual_override")
        assert wd.last_status is not None and wd.last_status["mode"] == "manual"
    finally:
        wd.stop()


def start_watchdog(link: Any, halt: threading.Event | None = None) -> Watchdog:
    return Watchdog(link, Events(), deadline_s=DEADLINE, halt=halt).start()
