"""The run's metric families, made at scrape time from the parts that already count: the loop's
:class:`~runtime.stats.LoopStats` (counters, and per-stage latency histograms folded from its rings
since the last scrape), the camera's drops, the declared events (trips by cause), the model, the
loop's :class:`~runtime.telemetry.Telemetry` (FPS) and the shadow's disagreement."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from runtime.camera import Camera
from runtime.events import Events
from runtime.shadow import ShadowRunner
from runtime.stats import STAGES, LoopStats, Ring
from runtime.telemetry import Telemetry

# Latency histogram bounds (s): a 30 fps camera's frame is 33 ms, the watchdog deadline 100 ms.
BOUNDS_S = (0.001, 0.002, 0.005, 0.01, 0.02, 0.033, 0.05, 0.1, 0.25, 1.0)
FPS_WINDOW_S = 5.0
COUNTERS = (("frames", "frames inferred"), ("commands", "drive commands handed to the link"),
            ("written", "drive commands the link wrote at once"), ("stale", "commands older than the deadline"),
            ("invalid", "frames with NaN/inf outputs"), ("backend_errors", "inferences that raised"),
            ("not_ready", "frames not inferred: an input was not ready"),
            ("pilot_held", "frames the pilot held in neutral"), ("safety_held", "commands the safety layer held"))


@dataclass
class Sources:
    """What the collector reads: the loop's stats and telemetry, the camera, the events, the model
    entry of the stats (``runtime.assembly.model_info``) and the shadow (None without one)."""

    stats: LoopStats
    telemetry: Telemetry
    camera: Camera
    events: Events
    model: dict[str, Any]
    shadow: ShadowRunner | None = None


class RingHistogram:
    """A cumulative histogram of a :class:`Ring`'s samples (ms), folding in the samples added since
    the previous :meth:`update` (the ring keeps the newest 65536: scrape at least every half hour at
    30 fps or the oldest are missed, counted in ``missed``)."""

    def __init__(self, ring: Ring, bounds_s: tuple[float, ...] = BOUNDS_S) -> None:
        self.ring, self.bounds_ms = ring, np.asarray(bounds_s) * 1000.0
        self.counts = np.zeros(len(bounds_s) + 1, np.int64)  # the last one: above every bound
        self.sum_ms, self.seen, self.missed = 0.0, 0, 0

    def update(self) -> None:
        """Fold in the new samples."""
        n = self.ring.count
        if n <= self.seen:
            return
        v = self.ring.values()
        start = max(self.seen, n - len(v))
        self.missed += start - self.seen
        new = v[np.arange(start, n) % len(v)] if n > len(v) else v[start:n]  # a full ring wraps around
        self.counts += np.bincount(np.searchsorted(self.bounds_ms, new, side="left"), minlength=len(self.counts))
        self.sum_ms += float(new.sum())
        self.seen = n

    def buckets(self) -> list[tuple[str, float]]:
        """Prometheus buckets: (upper bound in s, cumulative count), ``+Inf`` last."""
        cum = np.cumsum(self.counts)
        return [(repr(b), float(c)) for b, c in zip(BOUNDS_S, cum[:-1], strict=True)] + [("+Inf", float(cum[-1]))]


class RuntimeCollector:
    """A ``prometheus_client`` collector of :class:`Sources` (see the module)."""

    def __init__(self, sources: Sources) -> None:
        self.src = sources
        self.histograms = {s: RingHistogram(sources.stats.stages[s]) for s in STAGES}
        self._fps: deque[tuple[float, int]] = deque()

    def collect(self) -> Iterator[Any]:
        """The metric families, read now."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

        st, now = self.src.stats, time.monotonic()
        for attr, doc in COUNTERS:
            yield CounterMetricFamily(f"rc_{attr}", doc, value=getattr(st, attr))
        yield GaugeMetricFamily("rc_fps", f"frames inferred per second over the last {FPS_WINDOW_S:.0f} s",
                                value=self._fps_now(now))
        h = HistogramMetricFamily("rc_stage_latency_seconds", "per-stage latency of each frame", labels=["stage"])
        for stage, hist in self.histograms.items():
            hist.update()
            h.add_metric([stage], hist.buckets(), hist.sum_ms / 1000.0)
        yield h
        cam = self.src.camera.stats()
        yield CounterMetricFamily("rc_camera_dropped_frames", "frames the camera replaced before the loop took them",
                                  value=cam.get("dropped", 0))
        yield CounterMetricFamily("rc_camera_reconnects", "camera reopenings", value=cam.get("reconnects", 0))
        ev = CounterMetricFamily("rc_event_episodes", "episodes of each declared event (trips by cause)",
                                 labels=["event", "severity"])
        active = GaugeMetricFamily("rc_event_active", "1 while the event is active", labels=["event"])
        for name, e in self.src.events.summary().items():
            ev.add_metric([name, e["severity"]], e["episodes"])
            active.add_metric([name], 1.0 if e["active"] else 0.0)
        yield ev
        yield active
        m = self.src.model
        info = GaugeMetricFamily("rc_model_info", "the driving model (value 1)",
                                 labels=["name", "version", "backend", "format", "sha256"])
        info.add_metric([str(m["name"]), str(m["version"]), str(m["backend"]), str(m["build"]["format"]),
                         str(m["build"]["sha256"])[:12]], 1.0)
        yield info
        if self.src.shadow is not None:
            yield from self._shadow(self.src.shadow, CounterMetricFamily, GaugeMetricFamily)

    def _fps_now(self, now: float) -> float:
        frames = self.src.telemetry.published
        self._fps.append((now, frames))
        while len(self._fps) > 2 and now - self._fps[1][0] >= FPS_WINDOW_S:
            self._fps.popleft()
        t0, f0 = self._fps[0]
        if len(self._fps) == 1:  # the first scrape: since the loop started
            t0, f0 = (self.src.stats.t_start or now), 0
        return (frames - f0) / (now - t0) if now > t0 else 0.0

    @staticmethod
    def _shadow(sh: ShadowRunner, counter: Any, gauge: Any) -> Iterator[Any]:
        m = sh.manifest.model
        info = gauge("rc_shadow_info", "the shadow model (value 1)", labels=["name", "version"])
        info.add_metric([str(m.name), str(m.version)], 1.0)
        yield info
        d = sh.compare
        yield counter("rc_shadow_pairs", "frames compared", value=d.pairs)
        yield counter("rc_shadow_skipped_frames", "frames the shadow skipped (busy)", value=sh.mailbox.skipped)
        yield counter("rc_shadow_sign_flips", "steering of opposite signs", value=d.sign_flips)
        yield counter("rc_shadow_large", "large disagreements", value=d.large)
        diff = gauge("rc_shadow_abs_diff", "|shadow - driving| over the compared frames", labels=["output", "quantile"])
        for output, ring in (("steering", d.steering), ("throttle", d.throttle)):
            s = ring.summary()
            if s.get("count"):
                diff.add_metric([output, "0.5"], float(s["p50"]))
                diff.add_metric([output, "0.99"], float(s["p99"]))
        yield diff
