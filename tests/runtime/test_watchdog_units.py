"""The watchdog's rules one at a time, without a serial port: what each call sends to the link, the
events and counters it leaves, the status it reads back. A recording link stands in for the serial
link (test_watchdog.py drives the real one against the car simulator); the watchdog's own thread
is only started where the thread itself is under test. Fast: they run against every mutant."""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from typing import Any

import pytest

from runtime.events import Events
from runtime.policy import Command
from runtime.ratekeeper import Ratekeeper
from runtime.watchdog import Watchdog, _status_dict


class RecordingLink:
    """Notes every call; ``fail`` names the calls that raise OSError; ``status`` is what poll returns."""

    def __init__(self, fail: tuple[str, ...] = (), status: Any = None) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail, self.status = fail, status
        self.withhold = False  # drive() returns None, as a link does for a DRIVE it did not write

    def _note(self, *call: Any) -> None:
        if call[0] in self.fail:
            raise OSError(f"{call[0]} failed")
        self.calls.append(call)

    def arm(self) -> None:
        self._note("arm")

    def drive(self, steering: float, throttle: float, tag: int = 0) -> int | None:
        self._note("drive", steering, throttle, tag)
        return None if self.withhold else len(self.calls)  # the SEQ a writing link returns

    def neutral(self) -> None:
        self._note("neutral")

    def poll(self) -> Any:
        self._note("poll")
        return self.status

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]


class GuardedLink(RecordingLink):
    """A link with a deadline guard process (the serial link's shape)."""

    def start_guard(self) -> None:
        self._note("start_guard")

    def set_deadline(self, deadline: float | None) -> None:
        self._note("set_deadline", deadline)


CMD = Command(0.25, 0.5, True, 0.25, 0.5)


def detail(wd: Watchdog, name: str) -> str:
    return str(wd.events.summary()[name]["last_detail"])


def test_defaults_and_the_initial_stats() -> None:
    wd = Watchdog(RecordingLink(), Events())
    assert (wd.deadline_s, wd.rate_hz, wd.neutral_repeat_s, wd.poll_s) == (0.1, 200.0, 0.05, 0.02)
    assert wd.stats() == {"deadline_ms": 100.0, "commands": 0, "written": 0, "neutral_sent": 0, "trips": 0,
                          "last_tag": 0, "last_status": None}
    assert not wd.car_stopped and wd.expired()  # nothing sent yet, and no valid command either
    assert Watchdog(RecordingLink(), Events(), deadline_s=0.0123456).stats()["deadline_ms"] == 12.346


@pytest.mark.parametrize("rate", [0.0, -5.0, float("nan")])
def test_a_rate_that_is_not_positive_is_refused_before_the_thread_starts(rate: float) -> None:
    with pytest.raises(ValueError, match=rf"^watchdog rate must be positive, got {rate}$"):
        Watchdog(RecordingLink(), Events(), rate_hz=rate)
    assert Watchdog(RecordingLink(), Events(), rate_hz=1e-3).rate_hz == 1e-3


@pytest.mark.parametrize("deadline", [0.0, -0.1])
def test_a_deadline_that_is_not_positive_is_refused(deadline: float) -> None:
    with pytest.raises(ValueError, match=rf"^watchdog deadline must be positive, got {deadline}$"):
        Watchdog(RecordingLink(), Events(), deadline_s=deadline)


def test_the_first_drive_arms_and_hands_the_deadline_to_the_guard() -> None:
    link = GuardedLink()
    wd = Watchdog(link, Events(), deadline_s=0.5)
    t = time.monotonic()
    assert wd.drive(CMD, t, tag=7)
    # the deadline before the write: the link re-checks it right before writing
    assert link.calls == [("arm",), ("set_deadline", t + 0.5), ("drive", 0.25, 0.5, 7)]
    assert wd.drive(CMD, time.monotonic(), tag=8)  # armed: no second ARM
    assert link.names() == ["arm", "set_deadline", "drive", "set_deadline", "drive"]
    assert (wd.commands, wd.last_tag, wd.stats()["commands"], wd.stats()["last_tag"]) == (2, 8, 2, 8)
    assert not wd.car_stopped and not wd.expired() and wd.healthy()


def test_written_counts_only_the_drives_the_link_wrote() -> None:
    link = RecordingLink()
    wd = Watchdog(link, Events(), deadline_s=0.5)
    assert wd.last_written is False and wd.written == 0
    link.withhold = True  # e.g. the car has not confirmed ARM yet
    assert wd.drive(CMD, time.monotonic(), tag=1) and wd.last_written is False
    link.withhold = False
    assert wd.drive(CMD, time.monotonic(), tag=2) and wd.last_written is True
    assert wd.drive(CMD, time.monotonic(), tag=3) and wd.last_written is True
    assert (wd.commands, wd.written) == (3, 2) and wd.stats()["written"] == 2


def test_after_a_neutral_the_next_drive_arms_again() -> None:
    link = GuardedLink()
    wd = Watchdog(link, Events())
    assert wd.drive(CMD, time.monotonic(), tag=1)
    wd.neutral("test")
    assert link.calls[-2:] == [("set_deadline", None), ("neutral",)]  # guard told first: no stale deadline
    assert wd.car_stopped and wd.expired() and wd.neutral_sent == 1 and wd.stats()["neutral_sent"] == 1
    link.calls.clear()
    assert wd.drive(CMD, time.monotonic(), tag=2)
    assert link.names() == ["arm", "set_deadline", "drive"]


def test_neutral_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    wd = Watchdog(RecordingLink(), Events())
    with caplog.at_level(logging.DEBUG, logger="runtime.watchdog"):
        wd.neutral("policy output NaN")
        wd.neutral()
    assert [r.getMessage() for r in caplog.records if r.name == "runtime.watchdog"] == [
        "neutral: policy output NaN", "neutral: "]


def test_a_stopped_or_halted_watchdog_refuses_to_drive() -> None:
    link = RecordingLink()
    halt = threading.Event()
    wd = Watchdog(link, Events(), halt=halt)
    halt.set()
    assert not wd.drive(CMD, time.monotonic(), tag=1)
    wd2 = Watchdog(link, Events())
    wd2.stop()
    assert not wd2.drive(CMD, time.monotonic(), tag=1)
    assert "drive" not in link.names() and wd.commands == wd2.commands == 0


def test_no_drive_while_the_watchdog_thread_is_dead() -> None:
    link = RecordingLink()
    wd = Watchdog(link, Events())
    wd._thread = threading.Thread(target=lambda: None)  # a thread that has ended
    wd._thread.start()
    wd._thread.join()
    assert not wd.drive(CMD, time.monotonic(), tag=1)
    assert link.names() == ["neutral"] and wd.events.active("watchdog.dead")
    assert detail(wd, "watchdog.dead") == "the watchdog thread is not running" and not wd.healthy()


def test_a_failing_link_is_an_event_and_the_next_good_drive_clears_it() -> None:
    link = RecordingLink(fail=("drive",))
    wd = Watchdog(link, Events())
    assert not wd.drive(CMD, time.monotonic(), tag=1)
    assert wd.events.active("link.error") and detail(wd, "link.error") == "drive: drive failed"
    assert link.names() == ["arm", "neutral"] and wd.commands == 0 and wd.car_stopped
    link.fail = ("neutral",)
    wd.neutral()
    assert detail(wd, "link.error") == "neutral: neutral failed" and wd.neutral_sent == 1  # not counted
    link.fail = ()
    assert wd.drive(CMD, time.monotonic(), tag=2)
    assert not wd.events.active("link.error") and wd.commands == 1


def test_a_drive_ends_an_expired_episode() -> None:
    wd = Watchdog(RecordingLink(), Events())
    wd.events.raise_("watchdog.expired", "test")
    assert wd.drive(CMD, time.monotonic(), tag=1)
    assert not wd.events.active("watchdog.expired")


def test_expiry_is_strictly_after_the_deadline_from_capture() -> None:
    wd = Watchdog(RecordingLink(), Events(), deadline_s=0.5)
    t = time.monotonic()
    assert wd.drive(CMD, t, tag=1)
    assert not wd.expired() and not wd.expired(t + 0.5)  # exactly one deadline old: still valid
    assert wd.expired(t + 0.5 + 1e-6)


def test_car_stopped_follows_the_cars_status() -> None:
    wd = Watchdog(RecordingLink(), Events())
    assert wd.drive(CMD, time.monotonic(), tag=1)
    cases: list[tuple[dict[str, Any], bool]] = [
        ({"armed": True, "mode": "auto", "failsafe": False}, False), ({}, False), ({"failsafe": True}, True), ({"armed": False}, True),
        ({"mode": "MANUAL"}, True)]
    for status, stopped in cases:
        wd.last_status = status
        assert wd.car_stopped is stopped, status


class Reaching(RecordingLink):
    def __init__(self, reached: Any) -> None:
        super().__init__()
        self.reached_car = reached


def test_car_answered_asks_the_link_when_it_can_tell() -> None:
    assert Watchdog(RecordingLink(), Events()).car_answered() is True  # null://-like: cannot tell
    assert Watchdog(Reaching(False), Events()).car_answered() is False
    assert Watchdog(Reaching(0), Events()).car_answered() is False
    assert Watchdog(Reaching(True), Events()).car_answered() is True


def test_healthy_needs_a_fresh_command_and_no_unhealthy_event() -> None:
    wd = Watchdog(RecordingLink(), Events())
    assert not wd.healthy()  # no command yet
    assert wd.drive(CMD, time.monotonic(), tag=1) and wd.healthy()
    wd.events.raise_("link.error", "test")
    assert not wd.healthy() and not wd.expired()


def test_check_trips_once_then_repeats_neutral_at_the_repeat_period() -> None:
    link = RecordingLink()
    # Periods far above scheduling hiccups on a loaded machine: each step below is unambiguous.
    wd = Watchdog(link, Events(), deadline_s=0.2, neutral_repeat_s=0.4)
    assert wd.drive(CMD, time.monotonic(), tag=1)
    wd._check()
    assert wd.trips == 0 and link.names() == ["arm", "drive"]  # still fresh
    time.sleep(0.25)
    wd._check()
    assert wd.trips == 1 and link.names()[-1] == "neutral" and wd.events.active("watchdog.expired")
    assert detail(wd, "watchdog.expired").startswith("newest command ") and detail(wd, "watchdog.expired").endswith(" ms old")
    assert 200 <= int(detail(wd, "watchdog.expired").split()[2]) < 2000
    wd._check()  # within the repeat period: nothing more
    assert wd.neutral_sent == 1 and wd.trips == 1
    time.sleep(0.45)
    wd._check()
    assert wd.neutral_sent == 2 and wd.trips == 1  # repeated, not a new trip
    assert wd.drive(CMD, time.monotonic(), tag=2)
    time.sleep(0.25)
    wd._check()
    assert wd.trips == 2 and wd.stats()["trips"] == 2


def test_check_without_any_command_repeats_neutral_but_never_trips() -> None:
    wd = Watchdog(RecordingLink(), Events(), neutral_repeat_s=0.0)
    wd.neutral()  # what start() sends first
    wd._check()
    wd._check()
    assert wd.neutral_sent == 3 and wd.trips == 0 and not wd.events.active("watchdog.expired")


def test_halt_before_any_neutral_sends_one() -> None:
    halt = threading.Event()
    halt.set()
    wd = Watchdog(RecordingLink(), Events(), neutral_repeat_s=10.0, halt=halt)
    wd._check()
    assert wd.neutral_sent == 1


def test_halt_sends_neutral_once_then_at_the_repeat_period() -> None:
    link = RecordingLink()
    halt = threading.Event()
    wd = Watchdog(link, Events(), neutral_repeat_s=0.4, halt=halt)
    assert wd.drive(CMD, time.monotonic(), tag=1)
    halt.set()
    wd._check()
    assert wd.neutral_sent == 1 and wd.trips == 0 and wd.expired()  # a requested stop is no trip
    wd._check()
    assert wd.neutral_sent == 1
    time.sleep(0.45)
    wd._check()
    assert wd.neutral_sent == 2 and not wd.events.active("watchdog.expired")


class Mode(enum.Enum):
    auto = 0
    manual = 1


@dataclasses.dataclass(slots=True)
class Status:
    mode: Mode
    failsafe: bool
    armed: bool = True


def test_poll_reads_the_cars_status_into_events() -> None:
    link = RecordingLink(status=Status(Mode.manual, True))
    wd = Watchdog(link, Events())
    wd._poll()
    assert wd.last_status == {"mode": "manual", "failsafe": True, "armed": True}
    assert wd.events.active("link.manual_override") and wd.events.active("link.failsafe")
    assert wd.stats()["last_status"] == wd.last_status
    link.status = {"mode": Mode.auto, "failsafe": False}
    wd._poll()
    assert not wd.events.active("link.manual_override") and not wd.events.active("link.failsafe")
    link.status = None  # nothing new from the car: keep what it said last
    wd._poll()
    assert wd.last_status == {"mode": "auto", "failsafe": False}
    link.fail = ("poll",)
    wd._poll()
    assert wd.events.active("link.error") and detail(wd, "link.error") == "poll: poll failed"


class Plain:
    def __init__(self) -> None:
        self.mode, self.failsafe, self._private = Mode.auto, False, 1


def test_status_dict_from_a_dataclass_a_dict_or_a_plain_object() -> None:
    assert _status_dict(Status(Mode.auto, False)) == {"mode": "auto", "failsafe": False, "armed": True}
    assert _status_dict({"mode": Mode.manual, "x": 1}) == {"mode": "manual", "x": 1}
    assert _status_dict(Plain()) == {"mode": "auto", "failsafe": False}
    src = {"mode": "auto"}
    _status_dict(src)["mode"] = "changed"
    assert src == {"mode": "auto"}  # a copy, not the link's own dict


class Described(RecordingLink):
    health = "ok"

    def describe_health(self) -> str:
        return self.health


def test_link_health_goes_to_the_status_line_when_it_changes() -> None:
    sent: list[str] = []
    link = Described()
    wd = Watchdog(link, Events(), notify=sent.append)
    wd._poll()
    wd._poll()
    link.health = "no STATUS for 2.0 s"
    wd._poll()
    assert sent == ["STATUS=car link: ok", "STATUS=car link: no STATUS for 2.0 s"]
    Watchdog(link, Events())._poll()  # no notify: nothing to tell, no error


def test_a_failing_notify_never_stops_the_watchdog(caplog: pytest.LogCaptureFixture) -> None:
    def broken(msg: str) -> None:
        raise OSError("no socket")

    wd = Watchdog(Described(), Events(), notify=broken)
    with caplog.at_level(logging.DEBUG, logger="runtime.watchdog"):
        wd._notify("WATCHDOG=1")
    assert [r.getMessage() for r in caplog.records if r.name == "runtime.watchdog"] == [
        "notify('WATCHDOG=1') failed: no socket"]


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_tick_notifies_only_while_healthy_and_flags_lag_once_driving() -> None:
    sent: list[str] = []
    clock = Clock()
    link = RecordingLink()
    wd = Watchdog(link, Events(), deadline_s=10.0, notify=sent.append, notify_s=1.0)
    periods = {"poll": 0.5, "notify": 1.0}
    rk = Ratekeeper("watchdog", 200.0, lag_threshold_s=5.0, periods=periods, clock=clock, sleep=lambda s: None)
    wd._tick(rk, periods)
    assert sent == [] and link.names() == ["neutral", "poll"]  # no command yet: unhealthy, no ping
    assert wd.drive(CMD, time.monotonic(), tag=1)
    wd._tick(rk, periods)
    assert sent == ["WATCHDOG=1"]  # the notify slot was not used up while unhealthy
    assert not wd.events.active("loop.lagging")
    late_by = 20.0 - 3 * rk.interval  # this third tick was due three intervals after the start
    clock.t += 20.0  # far behind schedule while driving
    wd._tick(rk, periods)
    assert detail(wd, "loop.lagging") == f"watchdog thread late by {late_by * 1000:.1f} ms"
    clock.t += rk.interval
    wd._tick(rk, {"poll": 0.5})
    assert wd.events.active("loop.lagging")  # on time again, but the recent average is still late
    for _ in range(200):  # back on time: the average period recovers and the event clears
        clock.t += rk.interval
        wd._tick(rk, {"poll": 0.5})
    assert not wd.events.active("loop.lagging")


def test_start_runs_the_guard_sends_neutral_and_runs_a_daemon_thread() -> None:
    sent: list[str] = []
    link = GuardedLink()
    wd = Watchdog(link, Events(), deadline_s=10.0, notify=sent.append, notify_s=0.01).start()
    try:
        assert link.calls[:3] == [("start_guard",), ("set_deadline", None), ("neutral",)]
        assert wd._thread is not None and wd._thread.name == "watchdog" and wd._thread.daemon
        assert wd.drive(CMD, time.monotonic(), tag=1)
        end = time.monotonic() + 2.0
        while "WATCHDOG=1" not in sent and time.monotonic() < end:
            time.sleep(0.005)
        assert "WATCHDOG=1" in sent
    finally:
        wd.stop()
    assert wd._thread is not None and not wd._thread.is_alive()
    assert link.calls[-1] == ("neutral",) and wd.expired()


def test_without_notify_s_the_thread_never_pings() -> None:
    sent: list[str] = []
    wd = Watchdog(RecordingLink(), Events(), deadline_s=10.0, notify=sent.append).start()
    try:
        assert wd.drive(CMD, time.monotonic(), tag=1)
        time.sleep(0.05)
    finally:
        wd.stop()
    assert "WATCHDOG=1" not in sent


def test_the_thread_outlives_its_own_errors_and_stops_the_car(caplog: pytest.LogCaptureFixture) -> None:
    link = RecordingLink(status=42)  # a status the watchdog cannot read: its tick raises
    caplog.set_level(logging.DEBUG, logger="runtime.watchdog")
    wd = Watchdog(link, Events(), rate_hz=200.0).start()
    try:
        end = time.monotonic() + 2.0
        while wd.neutral_sent < 3 and time.monotonic() < end:
            time.sleep(0.005)
        assert wd.events.active("watchdog.error") and detail(wd, "watchdog.error").startswith("TypeError: ")
        assert wd._thread is not None and wd._thread.is_alive() and wd.neutral_sent >= 3
    finally:
        wd.stop()
    msgs = [(r.getMessage(), r.exc_info is not None) for r in caplog.records if r.name == "runtime.watchdog"]
    assert ("watchdog tick failed", True) in msgs and ("neutral: watchdog error", False) in msgs


class SlowPoll(RecordingLink):
    def poll(self) -> Any:
        time.sleep(0.03)  # a slow port: every tick that polls runs 30 ms late
        return super().poll()


def test_lag_is_judged_against_half_the_deadline_not_one_tick() -> None:
    wd = Watchdog(SlowPoll(), Events(), deadline_s=10.0, poll_s=0.001).start()
    try:
        assert wd.drive(CMD, time.monotonic(), tag=1)
        time.sleep(0.3)
    finally:
        wd.stop()
    assert "loop.lagging" not in wd.events.summary()  # 30 ms late is far from 5 s late


def test_stop_wakes_the_thread_at_once_even_at_a_low_rate() -> None:
    wd = Watchdog(RecordingLink(), Events(), rate_hz=0.5).start()  # one tick every 2 s
    time.sleep(0.05)
    wd.stop()  # joins for at most 1 s: a thread asleep for its 2 s tick would still be alive
    assert wd._thread is not None and not wd._thread.is_alive()
