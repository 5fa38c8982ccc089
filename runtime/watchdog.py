"""The watchdog: the only writer to the drive link, and the reason the car stops.

With a serial link it also hands each command's deadline to the link's deadline guard, a separate
process that writes NEUTRAL itself when the deadline passes (runtime/link/guard.py): the thread
below shares this interpreter's CPU time and GIL with the loop, the guard does not.

Every drive command goes through :meth:`Watchdog.drive`, which refuses a command whose frame is
already older than the deadline. A thread checks, every ``1 / rate_hz`` seconds, how old the newest
valid command is; when it is older than ``deadline_s`` (default 100 ms) - or no valid command was
ever sent - it commands neutral, and repeats neutral every ``neutral_repeat_s`` while that lasts.
The loop calls :meth:`neutral` at once on an exception or an invalid output, and :meth:`stop`
sends a final neutral before the link is closed.

A command's age is measured from the *capture time of its frame*, not from when it was sent: a
command computed from an old frame describes an old world. All link calls hold one lock, so a
stale drive can never slip out after a neutral.

Blocks (:meth:`Watchdog.block`, e.g. the detection safety layer's ``safety.obstacle``) hold the
car in neutral from another thread: the block and its neutral are one step under that lock, and
:meth:`drive` checks for blocks under it too, so no drive can go out between "is it blocked?" and
its write once a block is set. A block can only stop the car; lifting it sends nothing.
"""

from __future__ import annotations

import dataclasses
import enum
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from runtime.events import Events
from runtime.link.base import CommandLink
from runtime.policy import Command
from runtime.ratekeeper import Ratekeeper

log = logging.getLogger(__name__)


class Watchdog:
    """The sole writer of drive commands to ``link`` and the thread that stops the car (see the module).

    ``deadline_s`` (s, > 0, default 100 ms): the oldest a command's *frame* may be before neutral is
    commanded; ``rate_hz``: the thread's check rate; ``neutral_repeat_s`` (s): how often neutral is
    re-sent while expired; ``poll_s`` (s): how often the car's status is read. ``notify`` /
    ``notify_s`` (s): the systemd watchdog ping (``WATCHDOG=1``, sent only while :meth:`healthy`) and
    status line. ``halt``: an event set from a signal handler that forces neutral within one tick.
    Raises ``ValueError`` for a deadline that is not positive. Link errors never escape: they raise
    the ``link.error`` event and neutral is attempted.
    """

    def __init__(
        self,
        link: CommandLink,
        events: Events,
        deadline_s: float = 0.100,
        rate_hz: float = 200.0,
        neutral_repeat_s: float = 0.050,
        poll_s: float = 0.020,
        notify: Callable[[str], Any] | None = None,
        notify_s: float | None = None,
        halt: threading.Event | None = None,
    ) -> None:
        if deadline_s <= 0:
            raise ValueError(f"watchdog deadline must be positive, got {deadline_s}")
        if not rate_hz > 0:  # else the thread would only fail inside Ratekeeper, after start()
            raise ValueError(f"watchdog rate must be positive, got {rate_hz}")
        self.link, self.events = link, events
        self.deadline_s, self.rate_hz, self.neutral_repeat_s = deadline_s, rate_hz, neutral_repeat_s
        self.poll_s, self.notify, self.notify_s = poll_s, notify, notify_s
        self._lock = threading.Lock()
        self._stop = threading.Event()
        # Set from a signal: neutral within one tick, even if the loop's thread is stuck.
        self.halt = halt or threading.Event()
        self._thread: threading.Thread | None = None
        self._blocks: dict[str, str] = {}  # name -> detail: the car is held in neutral while any is set
        self._last_valid: float | None = None  # capture time of the newest frame that drove the car
        self._neutral_at: float | None = None  # when neutral was last sent (None: currently driving)
        self._armed = False
        self.commands = 0  # handed to the link (not stale)
        # ... of which the link wrote at once (it returned a SEQ). The rest it withheld (the car had
        # not confirmed ARM), dropped (no port) or paced (only the newest goes out when the line allows).
        self.written = 0
        self.last_written = False  # the newest drive()'s, for the loop's recording
        self.neutral_sent = 0
        self.trips = 0  # deadline expiries after having driven
        self.last_tag = 0
        self.last_status: dict[str, Any] | None = None
        self._health_line: str | None = None

    # -- the loop's side -----------------------------------------------------------------------

    def drive(self, cmd: Command, t_capture: float, tag: int) -> bool:
        """Send ``cmd`` if its frame is still younger than the deadline. False: not sent (stale).

        ``t_capture``: the frame's ``time.monotonic()`` capture time (s); ``tag``: the frame id,
        sent in the DRIVE frame. Arms the link first when needed and hands the guard the new
        deadline. Also False (and neutral is sent) after a link error or when the watchdog thread
        has died; never raises.
        """
        with self._lock:
            if time.monotonic() - t_capture > self.deadline_s or self._stop.is_set() or self.halt.is_set():
                return False
            if self._blocks:  # held in neutral by block(); its neutral went out and is repeated
                return False
            if self._thread is not None and not self._thread.is_alive():
                # Nobody would stop the car if this command went stale: refuse to drive at all.
                self.events.raise_("watchdog.dead", "the watchdog thread is not running")
                self._send_neutral_locked()
                return False
            try:
                if not self._armed:
                    self.link.arm()
                    self._armed = True
                # The deadline first: the link re-checks it right before it writes (a process stopped
                # after the age check above must not write an old command when it runs again).
                self._guard_deadline(t_capture + self.deadline_s)
                wrote = self.link.drive(cmd.steering, cmd.throttle, tag) is not None
            except Exception as e:
                self.events.raise_("link.error", f"drive: {e}")
                self._send_neutral_locked()
                return False
            self.events.clear("link.error")
            self._last_valid, self._neutral_at = t_capture, None
            self.commands += 1
            self.written += wrote
            self.last_written = wrote
            self.last_tag = tag
        self.events.clear("watchdog.expired")
        return True

    def neutral(self, reason: str = "") -> None:
        """Command neutral now and forget the last valid command (the deadline restarts)."""
        with self._lock:
            self._last_valid = None
            self._send_neutral_locked()
        log.debug("neutral: %s", reason)

    def block(self, name: str, detail: str = "") -> bool:
        """Hold the car in neutral until :meth:`unblock` ``name``: neutral now (in the same locked step,
        so no drive can slip out after it) and every :meth:`drive` refused meanwhile. True when the
        block is new."""
        with self._lock:
            new = name not in self._blocks
            self._blocks[name] = detail
            self._last_valid = None
            if new or self._neutral_at is None:
                self._send_neutral_locked()
        return new

    def unblock(self, name: str) -> bool:
        """Lift the block ``name`` (sends nothing: the next valid frame drives); True if it was set."""
        with self._lock:
            return self._blocks.pop(name, None) is not None

    @property
    def blocked(self) -> bool:
        """True while any :meth:`block` holds the car."""
        return bool(self._blocks)

    def expired(self, now: float | None = None) -> bool:
        """True when no valid command was sent, or the newest one's frame (capture time) is older than the
        deadline at ``now`` (monotonic s; default: now).
        """
        last = self._last_valid
        return last is None or (time.monotonic() if now is None else now) - last > self.deadline_s

    @property
    def car_stopped(self) -> bool:
        """True while the car is not being driven by us: neutral was commanded since the last drive,
        or the car reports failsafe, disarmed or manual. The next command must ramp up from zero."""
        if self._neutral_at is not None:
            return True
        s = self.last_status or {}
        return bool(s.get("failsafe")) or s.get("armed") is False or str(s.get("mode", "")).lower() == "manual"

    def car_answered(self) -> bool:
        """The car has sent a valid STATUS (links that cannot tell, e.g. null://, say True)."""
        reached = getattr(self.link, "reached_car", None)
        return True if reached is None else bool(reached)

    def healthy(self) -> bool:
        """Not expired and no raised event: what the systemd watchdog ping requires."""
        return not self.expired() and self.events.healthy()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Watchdog:
        """Start the link's deadline guard process (serial links), send neutral, then start the checking
        thread. Returns self.
        """
        start_guard = getattr(self.link, "start_guard", None)
        if callable(start_guard):  # its own process: the deadline holds while this interpreter is busy
            start_guard()
        with self._lock:
            self._send_neutral_locked()
        self._thread = threading.Thread(target=self._run, name="watchdog", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and leave the car in neutral."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(1.0)
        with self._lock:
            self._last_valid = None
            self._send_neutral_locked()

    def stats(self) -> dict[str, Any]:
        """Counters for the run summary: deadline (ms), commands handed to the link and of those the
        ones it wrote at once (``written``), neutrals sent, trips, last tag and status.
        """
        return {
            "deadline_ms": round(self.deadline_s * 1000.0, 3),
            "commands": self.commands,
            "written": self.written,
            "neutral_sent": self.neutral_sent,
            "trips": self.trips,
            "last_tag": self.last_tag,
            "last_status": self.last_status,
        }

    # -- the watchdog thread -------------------------------------------------------------------

    def _guard_deadline(self, deadline: float | None) -> None:
        set_deadline = getattr(self.link, "set_deadline", None)
        if callable(set_deadline):
            set_deadline(deadline)

    def _send_neutral_locked(self, disarm: bool = False) -> None:
        try:
            self._guard_deadline(None)
            # Once stopping (SIGTERM/SIGINT), every neutral disarms too, whichever thread sends it first
            send_disarm = getattr(self.link, "disarm", None) if disarm or self.halt.is_set() else None
            if callable(send_disarm):
                send_disarm()
            else:
                self.link.neutral()
        except Exception as e:
            self.events.raise_("link.error", f"neutral: {e}")
            return
        self._neutral_at = time.monotonic()
        self._armed = False  # the link stops re-arming a car that disarms; the next drive arms first
        self.neutral_sent += 1

    def _run(self) -> None:
        periods = {"poll": self.poll_s}
        if self.notify is not None and self.notify_s:
            periods["notify"] = self.notify_s
        rk = Ratekeeper("watchdog", self.rate_hz, lag_threshold_s=self.deadline_s / 2, periods=periods,
                        sleep=self._stop.wait)
        while not self._stop.is_set():
            try:
                self._tick(rk, periods)
            except Exception as e:  # the thread that stops the car must outlive its own bugs
                log.exception("watchdog tick failed")
                self.events.raise_("watchdog.error", f"{type(e).__name__}: {e}")
                self.neutral("watchdog error")
                self._stop.wait(1.0 / self.rate_hz)

    def _tick(self, rk: Ratekeeper, periods: dict[str, float]) -> None:
        self._check()
        if rk.due("poll"):
            self._poll()
        # Health first: a ping slot is only used up when a ping is sent, so one unhealthy instant
        # cannot stretch the gap between pings to WatchdogSec and get the service killed.
        if "notify" in periods and self.healthy() and rk.due("notify"):
            self._notify("WATCHDOG=1")
        # Lag matters once the car is driving (start-up, e.g. loading a model, may stall us).
        if rk.keep_time() and self.commands:
            self.events.raise_("loop.lagging", f"watchdog thread late by {-rk.remaining * 1000:.1f} ms")
        elif not rk.lagging:
            self.events.clear("loop.lagging")

    def _check(self) -> None:
        with self._lock:
            now = time.monotonic()
            if self.halt.is_set():  # a requested stop, not a fault: neutral, and keep it so
                if self._last_valid is not None or self._neutral_at is None or now - self._neutral_at >= self.neutral_repeat_s:
                    self._last_valid = None
                    self._send_neutral_locked(disarm=True)  # stopping: the first frame disarms too
                return
            if not self.expired(now):
                return
            if self._neutral_at is None:  # was driving: this is a trip
                self.trips += 1
                age = now - self._last_valid if self._last_valid is not None else float("nan")
                self.events.raise_("watchdog.expired", f"newest command {age * 1000:.0f} ms old")
                self._send_neutral_locked()
            elif now - self._neutral_at >= self.neutral_repeat_s:
                self._send_neutral_locked()

    def _poll(self) -> None:
        with self._lock:
            try:
                status = self.link.poll()
            except Exception as e:
                self.events.raise_("link.error", f"poll: {e}")
                return
        self._report_health()
        if status is None:
            return
        self.last_status = _status_dict(status)
        mode = str(self.last_status.get("mode", "")).lower()
        if mode == "manual":
            self.events.raise_("link.manual_override")
        else:
            self.events.clear("link.manual_override")
        if self.last_status.get("failsafe"):
            self.events.raise_("link.failsafe")
        else:
            self.events.clear("link.failsafe")

    def _report_health(self) -> None:
        """The link's health on the systemd status line, when it changes (the link logs it)."""
        describe = getattr(self.link, "describe_health", None)
        if self.notify is None or not callable(describe):
            return
        line = f"car link: {describe()}"
        if line != self._health_line:
            self._health_line = line
            self._notify(f"STATUS={line}")

    def _notify(self, msg: str) -> None:
        try:
            if self.notify is not None:
                self.notify(msg)
        except Exception as e:  # systemd notification is advisory: never stop the car over it
            log.debug("notify(%r) failed: %s", msg, e)


def _status_dict(status: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(status) and not isinstance(status, type):
        d = dataclasses.asdict(status)
    elif isinstance(status, dict):
        d = dict(status)
    else:
        d = {k: v for k, v in vars(status).items() if not k.startswith("_")}
    return {k: (v.name if isinstance(v, enum.Enum) else v) for k, v in d.items()}
