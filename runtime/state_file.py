"""The runtime's state for other processes on the car (the rc-update agent): a small JSON file.

The loop's :class:`~runtime.telemetry.Telemetry` tells :meth:`StateFile.on_frame` of every frame;
that only stores the report and when the car last moved (no I/O in the loop's thread). A writer
thread writes the file atomically (runtime/atomic.py) every ``interval_s`` (0.5 s), frames or not,
so a reader tells a stopped runtime from a running one by the age of ``updated_monotonic``; on
exit it is written one last time as parked and not armed.

Fields: ``armed`` (a drive command went to the car within ``ARMED_WINDOW_S``), ``parked`` (not
armed, or no command with throttle != 0 for ``parked_after_s``), ``bundle``, ``model_version``,
``fps``, ``updated_monotonic`` / ``updated_wall`` (``time.monotonic()`` / ``time.time()``, for
staleness on this boot and across boots), ``pid``, ``running``, and ``health``: failsafe and
watchdog events per minute over the last minute, and the loop's p99 (camera to command, ms).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_json
from runtime.camera import CameraFrame
from runtime.events import Events
from runtime.stats import LoopStats
from runtime.telemetry import FrameReport

log = logging.getLogger(__name__)

STATE_NAME = "state.json"
DEFAULT_DIR = "/run/rc-runtime"
ARMED_WINDOW_S = 1.0  # a runtime that sent nothing for this long has let the car's own 1 s disarm run out
HEALTH_WINDOW_S = 60.0
FAILSAFE_EVENTS = ("link.failsafe",)
WATCHDOG_EVENTS = ("watchdog.expired", "watchdog.dead", "watchdog.error")


def default_state_path(environ: dict[str, str] | None = None) -> Path | None:
    """Where the state goes when the config names no file: ``$RUNTIME_DIRECTORY`` (systemd's
    RuntimeDirectory=), else /run/rc-runtime when that folder exists, else None (not written)."""
    env = os.environ if environ is None else environ
    run_dir = env.get("RUNTIME_DIRECTORY", "").split(":")[0]
    if run_dir:
        return Path(run_dir) / STATE_NAME
    if Path(DEFAULT_DIR).is_dir():
        return Path(DEFAULT_DIR) / STATE_NAME
    return None


class StateFile:
    """Publishes the runtime's state to ``path``. :meth:`on_frame` is the telemetry listener;
    :meth:`start` / :meth:`stop` run the writer (``stop`` writes the final parked state)."""

    def __init__(
        self, path: str | Path, *, bundle: str, model_version: Any, events: Events, stats: LoopStats,
        parked_after_s: float = 5.0, interval_s: float = 0.5, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = Path(path)
        self.bundle = str(Path(bundle).resolve())
        self.model_version = model_version
        self.events, self.stats = events, stats
        self.parked_after_s, self.interval_s = parked_after_s, interval_s
        self._clock = clock
        self._last_sent: float | None = None  # monotonic time of the last command that went out
        self._last_moving: float | None = None  # ... of the last one with throttle != 0
        self._frames: deque[tuple[float, int]] = deque()
        self._counts: deque[tuple[float, int, int]] = deque()
        self._published = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.writes = self.write_errors = 0

    def on_frame(self, frame: CameraFrame, report: FrameReport) -> None:
        """The telemetry listener (loop thread): note when a command went out and whether it moved."""
        self._published += 1
        if report.sent:
            now = self._clock()
            self._last_sent = now
            if report.command_throttle != 0.0:
                self._last_moving = now

    def start(self) -> StateFile:
        """Write the first state now (a bad path fails here, before the car may move), then every
        ``interval_s`` from a daemon thread."""
        self.write(running=True)
        self._thread = threading.Thread(target=self._run, name="state-file", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the writer and leave the file saying parked, not armed, not running."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2.0)
        self._last_sent = self._last_moving = None
        try:
            self.write(running=False)
        except OSError as e:  # the runtime is stopping anyway; a stale file reads as "not running"
            log.warning("state file %s: final write failed: %s", self.path, e)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.write(running=True)
            except OSError as e:
                self.write_errors += 1
                if self.write_errors == 1:
                    log.error("state file %s: write failed (further failures only counted): %s", self.path, e)

    def snapshot(self, running: bool) -> dict[str, Any]:
        """The state document as it would be written now."""
        now = self._clock()
        armed = running and self._last_sent is not None and now - self._last_sent <= ARMED_WINDOW_S
        moving = self._last_moving is not None and now - self._last_moving < self.parked_after_s
        failsafe, watchdog = self._per_minute(now)
        p99 = self.stats.stages["camera_to_command"].summary().get("p99")
        return {
            "running": running,
            "armed": bool(armed),
            "parked": not (armed and moving),
            "bundle": self.bundle,
            "model_version": self.model_version,
            "fps": round(self._fps(now), 2),
            "updated_monotonic": now,
            "updated_wall": time.time(),  # wall clock only for readers after a reboot; intervals use monotonic
            "pid": os.getpid(),
            "health": {"failsafe_per_min": failsafe, "watchdog_per_min": watchdog, "loop_p99_ms": p99},
        }

    def write(self, running: bool) -> None:
        """Write :meth:`snapshot` atomically."""
        atomic_write_json(self.path, self.snapshot(running))
        self.writes += 1

    def _fps(self, now: float) -> float:
        self._frames.append((now, self._published))
        while len(self._frames) > 2 and now - self._frames[1][0] >= 5.0:
            self._frames.popleft()
        t0, f0 = self._frames[0]
        return (self._published - f0) / (now - t0) if now > t0 else 0.0

    def _per_minute(self, now: float) -> tuple[float, float]:
        summary = self.events.summary()
        failsafe = sum(summary.get(n, {}).get("occurrences", 0) for n in FAILSAFE_EVENTS)
        watchdog = sum(summary.get(n, {}).get("episodes", 0) for n in WATCHDOG_EVENTS)
        self._counts.append((now, failsafe, watchdog))
        while len(self._counts) > 1 and now - self._counts[0][0] > HEALTH_WINDOW_S:
            self._counts.popleft()
        t0, f0, w0 = self._counts[0]
        minutes = max(now - t0, self.interval_s) / 60.0
        return round((failsafe - f0) / minutes, 2), round((watchdog - w0) / minutes, 2)


def read_state(path: str | Path) -> dict[str, Any] | None:
    """The state document at ``path``, or None when there is none or it cannot be read."""
    import json

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) else None
