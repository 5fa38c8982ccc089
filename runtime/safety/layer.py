"""The detection safety layer: a detector beside the pilot that can only stop the car.

The loop hands every camera frame to :meth:`SafetyLayer.submit` (a one-frame mailbox: the newest
frame wins, so a slow detector skips frames rather than falling behind) and goes on with the pilot.
The layer's own thread preprocesses the frame for the detector (its manifest's preprocessing, from
``CameraFrame.image``), infers, decodes the detections by their kind and applies the stopping rule
(:mod:`runtime.safety.rule`). A hit blocks the watchdog at once, from this thread
(:meth:`runtime.watchdog.Watchdog.block`: the block and its neutral are one locked step, and every
drive checks for blocks under the same lock, so a drive can never slip out after it). The stop is
lifted with hysteresis. Before each drive the loop asks :meth:`check`: no verdict for a frame
captured within ``max_verdict_age`` of the driven one (a slow, hung or dead detector) means neutral
(``safety.stale``); a detector that raises blocks the car (``safety.error``) until it answers again.
Nothing here ever sends a drive command: the layer can only hold the car in neutral.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from runtime.backends.base import Backend
from runtime.camera import CameraFrame
from runtime.events import Events
from runtime.mailbox import NewestOnly
from runtime.manifest import BundleError, Manifest
from runtime.perception import Detection, DetectionDecoder
from runtime.preprocess import Preprocessor, image_layout
from runtime.safety.config import SafetyConfig
from runtime.safety.rule import Hysteresis, StopRule, to_frame
from runtime.stats import Ring
from runtime.watchdog import Watchdog

log = logging.getLogger(__name__)

OBSTACLE, STALE, ERROR = "safety.obstacle", "safety.stale", "safety.error"
RECORDED_DETECTIONS = 10  # per verdict in a recording, highest score first


@dataclass(frozen=True)
class Verdict:
    """The detector's answer for one frame: its ``frame_id`` and ``t_capture`` (monotonic s), when it
    was ready (``t_done``), the detections in the frame's normalised coordinates (highest score
    first), which of them stop the car (``hits``, indices), whether the car is ``blocked`` after it
    (hysteresis included) and the detector's ``error`` (None when it answered)."""

    frame_id: int
    t_capture: float
    t_done: float
    detections: tuple[Detection, ...]
    hits: tuple[int, ...]
    blocked: bool
    error: str | None = None

    def to_record(self, frame_w: int, frame_h: int, t_drive: float) -> dict[str, Any]:
        """For a recording: boxes in frame pixels (rounded to 0.1), labels, scores, in-path flags, the
        verdict's age before ``t_drive`` (the driven frame's capture time), blocked, error."""
        dets = [{"label": d.label, "score": round(d.score, 4), "in_path": i in self.hits,
                 "box": [round(d.x1 * frame_w, 1), round(d.y1 * frame_h, 1), round(d.x2 * frame_w, 1),
                         round(d.y2 * frame_h, 1)]}
                for i, d in enumerate(self.detections[:RECORDED_DETECTIONS])]
        return {"frame_id": self.frame_id, "age_ms": round((t_drive - self.t_capture) * 1000.0, 3),
                "blocked": self.blocked, "detections": dets, "error": self.error}


class SafetyLayer:
    """A detector bundle's backend run on the loop's frames in its own thread (see the module).

    ``backend`` and ``manifest``: the detection bundle's (one image input, task ``detection``;
    :class:`BundleError` otherwise); ``cfg``: ``[safety]``; ``watchdog``: the one the loop drives
    through; ``deadline_s`` (s): the watchdog deadline, the default verdict age limit.
    """

    def __init__(self, backend: Backend, manifest: Manifest, cfg: SafetyConfig, watchdog: Watchdog,
                 events: Events, deadline_s: float) -> None:
        decoder = manifest.perception_decoder("detection")
        if not isinstance(decoder, DetectionDecoder):
            raise BundleError(f"the --safety bundle must be a detection model; {manifest.model.name} is a "
                              f"{manifest.task} model")
        if len(manifest.inputs) != 1:
            raise BundleError(f"the --safety detector must take only a camera image; {manifest.model.name} has "
                              f"inputs {[i.name for i in manifest.inputs]}")
        try:
            self.rule = StopRule.from_config(cfg, decoder.classes)
        except ValueError as e:
            raise BundleError(str(e)) from None
        self.backend, self.manifest, self.decoder, self.cfg = backend, manifest, decoder, cfg
        self.watchdog, self.events = watchdog, events
        self.max_age_s = (cfg.max_verdict_age_ms / 1000.0) or deadline_s
        self._input = manifest.input.name
        self._layout = image_layout(manifest.input.layout)
        self._hysteresis = Hysteresis(cfg.clear_frames, cfg.clear_s)
        self._mailbox: NewestOnly[CameraFrame] = NewestOnly()
        self._latest: Verdict | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.inferred = self.errors = self.stops = self.stale = 0
        self.latency_ms = Ring(1 << 14)  # capture -> verdict, every inferred frame
        self.stop_latency_ms = Ring(1 << 12)  # capture of the first hit frame -> neutral sent

    # -- the loop's side ---------------------------------------------------------------------

    def submit(self, frame: CameraFrame) -> None:
        """Hand the detector the newest frame (never blocks; an unprocessed older frame is dropped)."""
        self._mailbox.put(frame)

    def check(self, frame: CameraFrame) -> str | None:
        """May the loop drive ``frame``? None, or the event that holds the car (raised here; the caller
        commands neutral): ``safety.error`` when the detector thread is not running, ``safety.stale``
        when the newest verdict's frame was captured more than the age limit before ``frame``."""
        if self._thread is None or not self._thread.is_alive():
            self.events.raise_(ERROR, "the safety thread is not running")
            return ERROR
        v = self._latest
        if v is None or frame.t_capture - v.t_capture > self.max_age_s:
            self.stale += 1
            age = "no verdict yet" if v is None else f"newest verdict {(frame.t_capture - v.t_capture) * 1000:.0f} ms older"
            self.events.raise_(STALE, f"frame {frame.id}: {age} (limit {self.max_age_s * 1000:.0f} ms)")
            return STALE
        self.events.clear(STALE)
        return None

    def latest(self) -> Verdict | None:
        """The newest verdict, or None before the first."""
        return self._latest

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> SafetyLayer:
        """Start the detector thread; returns self."""
        self._thread = threading.Thread(target=self._run, name="safety", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread (the watchdog's blocks stay as they are: the run is ending in neutral)."""
        self._stop.set()
        self._mailbox.wake()
        if self._thread is not None:
            self._thread.join(2.0)

    def stats(self) -> dict[str, Any]:
        """For the run summary: frames submitted, inferred, skipped, errors, stops, stale checks,
        capture-to-verdict and stop latency (ms percentiles)."""
        return {"bundle": self.cfg.bundle, "build": self.backend.build.format, "submitted": self._mailbox.submitted,
                "inferred": self.inferred, "skipped": self._mailbox.skipped, "errors": self.errors, "stops": self.stops,
                "stale_checks": self.stale, "latency_ms": self.latency_ms.summary(),
                "stop_latency_ms": self.stop_latency_ms.summary(),
                "classes": sorted(self.rule.classes), "max_verdict_age_ms": round(self.max_age_s * 1000.0, 3)}

    # -- the safety thread -------------------------------------------------------------------

    def _run(self) -> None:
        pre = Preprocessor(self.manifest.preprocess, self._layout)  # its own buffers: one per thread
        while not self._stop.is_set():
            frame = self._mailbox.take(self._stop)
            if frame is None:
                continue
            try:
                self._judge(frame, pre)
            except Exception as e:  # fail safe: any failure holds the car until the detector answers again
                self.errors += 1
                detail = f"frame {frame.id}: {type(e).__name__}: {e}"
                self.events.raise_(ERROR, detail)
                self.watchdog.block(ERROR, detail)
                self._latest = Verdict(frame.id, frame.t_capture, time.monotonic(), (), (), True, detail)

    def _judge(self, frame: CameraFrame, pre: Preprocessor) -> None:
        outputs = self.backend.infer({self._input: pre(frame.image)})
        spec = self.manifest.preprocess
        dets = tuple(to_frame(d, spec) for d in self.decoder(outputs))
        hits = tuple(i for i, d in enumerate(dets) if self.rule.stops_for(d))
        was = self._hysteresis.blocked
        blocked = self._hysteresis.update(bool(hits), frame.t_capture)
        if blocked and not was:
            self.watchdog.block(OBSTACLE, f"frame {frame.id}")
            t = time.monotonic()
            self.stops += 1
            self.stop_latency_ms.add((t - frame.t_capture) * 1000.0)
            d = dets[hits[0]]
            self.events.raise_(OBSTACLE, f"frame {frame.id}: {d.label} {d.score:.2f} at "
                               f"[{d.x1:.2f}, {d.y1:.2f}, {d.x2:.2f}, {d.y2:.2f}]")
        elif was and not blocked:
            self.watchdog.unblock(OBSTACLE)
            self.events.clear(OBSTACLE)
        if self.watchdog.unblock(ERROR):
            self.events.clear(ERROR)
        t_done = time.monotonic()
        self.inferred += 1
        self.latency_ms.add((t_done - frame.t_capture) * 1000.0)
        self._latest = Verdict(frame.id, frame.t_capture, t_done, dets, hits, blocked)
