"""The shadow's thread: the candidate model on the frames the loop drove, never actuating.

The loop publishes each driven frame (:mod:`runtime.telemetry`); :meth:`ShadowRunner.on_frame`
puts it in a one-frame mailbox (:class:`runtime.mailbox.NewestOnly`: the newest frame wins, a
busy shadow skips frames, counted) and returns at once. The shadow thread, at a lower OS priority
and with one intra-op thread, fills its own inputs (its own preprocessing, from the frame image),
infers, decodes with its own pilot and adds the pair (the driving decision, its own) to its
:class:`~runtime.shadow.compare.Disagreement`. It holds no watchdog, policy or link: the memory
inputs read the sent commands through a read-only view, and what it computes goes only into its
statistics.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

from runtime.backends.base import Backend
from runtime.camera import CameraFrame
from runtime.imu import ImuSource
from runtime.inputs import InputProvider
from runtime.mailbox import NewestOnly
from runtime.manifest import Manifest
from runtime.pilots import Pilot
from runtime.shadow.compare import Disagreement
from runtime.shadow.config import ShadowConfig
from runtime.stats import Ring
from runtime.telemetry import FrameReport

log = logging.getLogger(__name__)


class ShadowRunner:
    """``backend``, ``manifest``, ``pilot`` and ``inputs`` (providers built for the shadow only) of the
    candidate bundle; ``cfg`` its ``[shadow]`` section; ``own_imu``: an IMU source opened for it alone. Subscribe :meth:`on_frame` to the loop's
    :class:`~runtime.telemetry.Telemetry`, then :meth:`start`; :meth:`stop` and :meth:`stats` at the end."""

    def __init__(self, backend: Backend, manifest: Manifest, pilot: Pilot, inputs: Sequence[InputProvider],
                 cfg: ShadowConfig, own_imu: ImuSource | None = None) -> None:
        self.backend, self.manifest, self.pilot, self.inputs, self.cfg = backend, manifest, pilot, list(inputs), cfg
        self.own_imu = own_imu  # opened for the shadow alone (the driving model has no imu input): stopped here
        self.mailbox: NewestOnly[tuple[CameraFrame, FrameReport]] = NewestOnly()
        self.compare = Disagreement(cfg)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.inferred = self.errors = self.not_ready = self.held = self.left = 0
        self.priority: str = "not set"
        self.latency_ms = Ring(1 << 14)  # capture -> shadow decision, every inferred frame
        self._t_first: float | None = None  # capture times of the first and newest driven frame
        self._t_last = 0.0

    # -- the loop's side (its thread; never blocks) -------------------------------------------

    def on_frame(self, frame: CameraFrame, report: FrameReport) -> None:
        """A frame the loop inferred and its decision; only frames the pilot drove are compared."""
        if not report.decided:
            return  # the driving pilot held the car (lane lost): no decision to compare
        if self._t_first is None:
            self._t_first = report.t_capture
        self._t_last = report.t_capture
        self.mailbox.put((frame, report))

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> ShadowRunner:
        """Start the shadow thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="shadow", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (a frame being inferred finishes first, up to 2 s)."""
        self._stop.set()
        self.mailbox.wake()
        if self._thread is not None:
            self._thread.join(2.0)
        self.left = self.mailbox.drop()  # the newest frame, handed over as the run ended
        if self.own_imu is not None:
            self.own_imu.stop()

    def stats(self) -> dict[str, Any]:
        """For the run summary: the candidate, frames offered (= inferred + errors + inputs_not_ready +
        skipped + left, the one still in the mailbox at the end), the thread's priority,
        capture-to-decision latency and the disagreement figures."""
        driving_s = (self._t_last - self._t_first) if self._t_first is not None else 0.0
        m = self.manifest.model
        return {"bundle": self.cfg.bundle, "model": {"name": m.name, "version": m.version},
                "build": self.backend.build.format, "backend": self.backend.name,
                "offered": self.mailbox.submitted, "inferred": self.inferred, "skipped": self.mailbox.skipped,
                "left": self.left, "errors": self.errors, "inputs_not_ready": self.not_ready, "pilot_held": self.held,
                "priority": self.priority, "latency_ms": self.latency_ms.summary(),
                "disagreement": self.compare.summary(driving_s)}

    # -- the shadow thread -------------------------------------------------------------------

    def _run(self) -> None:
        self.priority = lower_priority(self.cfg.nice)
        while not self._stop.is_set():
            item = self.mailbox.take(self._stop)
            if item is None:
                continue
            frame, report = item
            try:
                self._judge(frame, report)
            except Exception as e:  # the shadow never stops the car: count, log the first, go on
                self.errors += 1
                if self.errors == 1:
                    log.error("shadow model failed on frame %d (further failures only counted): %s: %s",
                              frame.id, type(e).__name__, e)

    def _judge(self, frame: CameraFrame, report: FrameReport) -> None:
        feeds = {}
        for p in self.inputs:
            x = p.fill(frame)
            if x is None:
                self.not_ready += 1
                return
            feeds[p.name] = x
        decision = self.pilot(self.backend.infer(feeds), frame)
        self.inferred += 1
        self.latency_ms.add((time.monotonic() - frame.t_capture) * 1000.0)
        if decision.hold is not None:
            self.held += 1
            return
        self.compare.add(frame.id, frame.index, frame.t_capture, (report.steering, report.throttle),
                         (decision.steering, decision.throttle))


def lower_priority(nice: int) -> str:
    """Give the calling thread niceness ``nice`` on Linux (never raise it back: that needs privilege);
    what was done, for the stats. A refusal is logged, not fatal: the shadow then runs at the
    loop's priority."""
    if nice == 0:
        return "unchanged (nice 0)"
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        if current >= nice:
            return f"nice {current} (already)"
        os.setpriority(os.PRIO_PROCESS, tid, nice)  # on Linux a thread id names that thread only
        return f"nice {nice}"
    except (OSError, AttributeError) as e:  # not Linux, or a sandbox that refuses it
        log.warning("could not lower the shadow thread's priority to nice %d (%s): it competes with the "
                    "driving loop at the same priority", nice, e)
        return f"refused: {e}"
