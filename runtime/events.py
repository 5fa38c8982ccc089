"""Declared failure events with a severity, logged once per episode (not once per frame).

An *episode* starts the first time an event is raised while it is inactive and ends when it is
cleared. Only the start and the end are logged; every raise in between is merely counted. So a
camera that is unplugged for ten seconds produces two log lines, not three hundred.

Every event the runtime can raise is declared in :data:`DECLARED`; raising an undeclared name is a
programming error (``KeyError``), which keeps the list below the complete catalogue of failures.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

log = logging.getLogger("runtime.events")


class Severity(IntEnum):
    INFO = logging.INFO
    WARNING = logging.WARNING
    ERROR = logging.ERROR
    CRITICAL = logging.CRITICAL


@dataclass(frozen=True)
class EventType:
    name: str
    severity: Severity
    description: str
    unhealthy: bool = False  # while active, the loop is not healthy (no systemd WATCHDOG=1)


_E = EventType
DECLARED: dict[str, EventType] = {
    e.name: e
    for e in (
        _E("camera.disconnected", Severity.ERROR, "camera cannot be opened or stopped delivering; reconnecting", True),
        _E("camera.stalled", Severity.WARNING, "no new camera frame within the deadline", True),
        _E("camera.ended", Severity.INFO, "finite camera source (file, folder) reached its end"),
        _E("camera.read_error", Severity.WARNING, "a camera read failed"),
        _E("frame.stale", Severity.WARNING, "command was older than the deadline when ready; not sent", True),
        _E("backend.error", Severity.ERROR, "preprocessing or inference raised; commanding neutral", True),
        _E("policy.nonfinite", Severity.ERROR, "model output NaN or inf; commanding neutral", True),
        _E("input.not_ready", Severity.INFO, "a model input is not ready yet (a sequence filling); neutral"),
        _E("imu.stale", Severity.WARNING, "no IMU sample within the watchdog deadline; neutral", True),
        _E("wheel_speed.stale", Severity.WARNING, "no wheel-speed sample within the watchdog deadline; neutral", True),
        _E("lane.lost", Severity.WARNING, "lane follower: no drivable lane at the look-ahead; neutral"),
        _E("safety.obstacle", Severity.WARNING, "safety layer: an obstacle in the path; neutral until it is gone"),
        _E("safety.stale", Severity.ERROR, "safety layer: no detector verdict recent enough; neutral", True),
        _E("safety.error", Severity.ERROR, "safety layer: the detector failed; neutral", True),
        _E("watchdog.expired", Severity.WARNING, "newest valid command older than the deadline; neutral", True),
        _E("watchdog.dead", Severity.CRITICAL, "the watchdog thread is not running; neutral, no drive", True),
        _E("watchdog.error", Severity.ERROR, "a watchdog tick raised; neutral, the thread goes on", True),
        _E("link.error", Severity.ERROR, "writing to or polling the serial link failed", True),
        _E("link.manual_override", Severity.INFO, "car reports manual mode (RC transmitter has control)"),
        _E("link.failsafe", Severity.WARNING, "car reports its own failsafe is active"),
        _E("loop.lagging", Severity.WARNING, "a periodic task is running late"),
        _E("record.backlog", Severity.WARNING, "recorder cannot keep up; frames not recorded"),
        _E("record.error", Severity.ERROR, "recorder failed to write; recording stopped"),
        _E("loop.crashed", Severity.CRITICAL, "unexpected exception in the drive loop; neutral and exit", True),
        _E("loop.stopping", Severity.INFO, "stop requested (signal or end of run); neutral"),
    )
}


@dataclass
class _State:
    active: bool = False
    since: float = 0.0
    episodes: int = 0
    occurrences: int = 0
    episode_occurrences: int = 0
    last_detail: str = ""


class Events:
    """Thread-safe event book-keeping shared by camera, loop, watchdog and recorder."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._state: dict[str, _State] = {name: _State() for name in DECLARED}

    def raise_(self, name: str, detail: str = "") -> bool:
        """Count an occurrence; log it only when it starts an episode. Returns True if it did."""
        etype = DECLARED[name]
        with self._lock:
            st = self._state[name]
            st.occurrences += 1
            st.last_detail = detail
            if st.active:
                st.episode_occurrences += 1
                return False
            st.active, st.since, st.episode_occurrences = True, time.monotonic(), 1
            st.episodes += 1
        suffix = f": {detail}" if detail else ""
        log.log(etype.severity, "[%s] %s%s", name, etype.description, suffix)
        return True

    def clear(self, name: str) -> bool:
        """End the event's episode, logging how long it lasted. Returns True if one was active."""
        etype = DECLARED[name]
        if not self._state[name].active:  # the per-frame common case: no lock needed to see that
            return False
        with self._lock:
            st = self._state[name]
            if not st.active:
                return False
            st.active = False
            dur, n = time.monotonic() - st.since, st.episode_occurrences
        level = logging.INFO if etype.severity > Severity.INFO else logging.DEBUG
        log.log(level, "[%s] cleared after %.2f s (%d occurrence%s)", name, dur, n, "" if n == 1 else "s")
        return True

    def active(self, name: str) -> bool:
        with self._lock:
            return self._state[name].active

    def active_names(self) -> list[str]:
        with self._lock:
            return [n for n, s in self._state.items() if s.active]

    def healthy(self) -> bool:
        """No event that makes the loop unhealthy is active."""
        with self._lock:
            return not any(s.active and DECLARED[n].unhealthy for n, s in self._state.items())

    def summary(self) -> dict[str, dict[str, Any]]:
        """Events that happened at least once: severity, episodes, occurrences, still active."""
        with self._lock:
            return {
                n: {
                    "severity": DECLARED[n].severity.name.lower(),
                    "episodes": s.episodes,
                    "occurrences": s.occurrences,
                    "active": s.active,
                    "last_detail": s.last_detail,
                }
                for n, s in self._state.items()
                if s.occurrences
            }
