"""Per-stage latency percentiles, FPS and drop counts for the run summary and ``--stats-json``.

Samples go into preallocated rings (``array.array`` of doubles: storing a float there is a few
tens of nanoseconds and allocates nothing); percentiles are computed once, at the end, over the
most recent ``capacity`` samples of each stage.
"""

from __future__ import annotations

from array import array
from typing import Any

import numpy as np

# Stages of one frame's trip, in order; all in milliseconds.
STAGES = ("frame_age", "preprocess", "inference", "policy", "write", "camera_to_command")
PERCENTILES = (50, 90, 99)


class Ring:
    """Fixed-capacity sample buffer (float64), overwriting the oldest samples."""

    def __init__(self, capacity: int) -> None:
        self._buf = array("d", bytes(8 * capacity))
        self._cap = capacity
        self.count = 0

    def add(self, value: float) -> None:
        self._buf[self.count % self._cap] = value
        self.count += 1

    def values(self) -> np.ndarray:
        return np.frombuffer(self._buf, np.float64)[: min(self.count, self._cap)]

    def summary(self) -> dict[str, float | int]:
        v = self.values()
        if not len(v):
            return {"count": 0}
        out: dict[str, float | int] = {"count": self.count, "mean": round(float(v.mean()), 4)}
        for p, q in zip(PERCENTILES, np.percentile(v, PERCENTILES), strict=True):
            out[f"p{p}"] = round(float(q), 4)
        out["max"] = round(float(v.max()), 4)
        return out


class LoopStats:
    """What the loop measures. Times are added in seconds and reported in milliseconds."""

    def __init__(self, capacity: int = 1 << 16) -> None:
        self.stages: dict[str, Ring] = {s: Ring(capacity) for s in STAGES}
        self._rings = [self.stages[s] for s in STAGES]  # in STAGES order, for add_frame
        self.frames = 0  # frames inferred
        self.commands = 0  # drive commands handed to the link (not stale)
        # ... of which the link wrote at once; not the ones it withheld before the car confirmed ARM,
        # dropped without a port, or paced (only the newest then goes out, counted in the link's stats).
        self.written = 0
        self.stale = 0  # commands not sent because they were older than the deadline
        self.stale_ages = Ring(capacity)  # ... their camera-to-command age (ms) when they were ready
        self.invalid = 0  # NaN/inf outputs
        self.backend_errors = 0
        self.not_ready = 0  # frames not inferred because an input was not ready (sequence filling, stale IMU)
        self.pilot_held = 0  # inferred frames the pilot held in neutral (lane.lost)
        self.safety_held = 0  # valid commands the safety layer held back (obstacle, stale or failed detector)
        self.t_start: float | None = None
        self.t_first_command: float | None = None
        self.t_end: float | None = None

    def add(self, stage: str, seconds: float) -> None:
        self.stages[stage].add(seconds * 1000.0)

    def add_stale(self, camera_to_command: float) -> None:
        """One command not sent because it was older than the deadline; its age in seconds."""
        self.stale += 1
        self.stale_ages.add(camera_to_command * 1000.0)

    def add_frame(
        self, frame_age: float, preprocess: float, inference: float, policy: float, write: float,
        camera_to_command: float | None,
    ) -> None:
        """One frame's stage times in seconds (``camera_to_command`` None: no command was sent)."""
        r = self._rings
        r[0].add(frame_age * 1000.0)
        r[1].add(preprocess * 1000.0)
        r[2].add(inference * 1000.0)
        r[3].add(policy * 1000.0)
        r[4].add(write * 1000.0)
        if camera_to_command is not None:
            r[5].add(camera_to_command * 1000.0)

    def summary(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        """The stats JSON. ``extra`` adds sections (camera, watchdog, events, backend, model)."""
        duration = (self.t_end or 0.0) - (self.t_start or 0.0)
        out: dict[str, Any] = {
            "frames": self.frames,
            "commands": self.commands,
            "written": self.written,
            "stale": self.stale,
            "invalid_outputs": self.invalid,
            "backend_errors": self.backend_errors,
            "inputs_not_ready": self.not_ready,
            "pilot_held": self.pilot_held,
            "safety_held": self.safety_held,
            "duration_s": round(duration, 4),
            "fps": round(self.frames / duration, 3) if duration > 0 else 0.0,
            "stages_ms": {name: ring.summary() for name, ring in self.stages.items()},
            "stale_ms": self.stale_ages.summary(),
        }
        if self.t_first_command is not None and self.t_start is not None:
            out["time_to_first_command_s"] = round(self.t_first_command - self.t_start, 4)
        out.update(extra or {})
        out["never_drove"] = never_drove(out)
        return out


def never_drove(s: dict[str, Any]) -> bool:
    """A run that inferred frames and had commands to send, but sent none because every one was older
    than the watchdog deadline. A run stopped by a signal, or with no frame, is not judged."""
    return s["frames"] > 0 and s["commands"] == 0 and s["stale"] > 0 and s.get("end_reason") != "stopped"


def never_drove_line(s: dict[str, Any]) -> str | None:
    """The one-line reason a finished run never drove (see :func:`never_drove`), or None: the frames,
    the measured camera-to-command latency against the deadline, and the fix."""
    if not s.get("never_drove"):
        return None
    late = s.get("stale_ms") or {}
    deadline = (s.get("watchdog") or {}).get("deadline_ms")
    against = f" > deadline {deadline:g} ms" if deadline is not None else ""
    measured = f"camera-to-command p50 {late['p50']:.1f} ms{against}" if late.get("count") else "every command was late"
    return (f"no command was in time: {s['frames']} frames, {s['stale']} stale, {measured}; use a faster build or "
            "backend ([model] backend / format, --backend / --format) or raise [watchdog] deadline_ms (--deadline-ms)")


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable summary for the end of a run (plain text, a few lines)."""
    cam = s.get("camera", {})
    wd = s.get("watchdog", {})
    lines = [
        f"frames {s['frames']}  commands {s['commands']} (written {s.get('written', s['commands'])})  fps {s['fps']:.1f}  duration {s['duration_s']:.1f} s",
        f"camera captured {cam.get('captured', 0)}  dropped {cam.get('dropped', 0)}  "
        f"reconnects {cam.get('reconnects', 0)}  stale {s['stale']}  backend errors {s['backend_errors']}  "
        f"invalid outputs {s['invalid_outputs']}  watchdog trips {wd.get('trips', 0)}",
        f"{'stage (ms)':<18}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}",
    ]
    for name, st in s["stages_ms"].items():
        if st.get("count"):
            lines.append(f"{name:<18}{st['p50']:>9.3f}{st['p90']:>9.3f}{st['p99']:>9.3f}{st['max']:>9.3f}")
    for name, ev in s.get("events", {}).items():
        lines.append(f"event {name} ({ev['severity']}): {ev['episodes']} episode(s), {ev['occurrences']} occurrence(s)")
    return "\n".join(lines)
