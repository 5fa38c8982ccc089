"""End to end: the runtime's real loop on a video file, driving the car simulator over a pty.

Each round is :func:`benchmarks.loop_benchmark.run_loop_benchmark` for one build: the bare
backend and the whole pipeline on the same frames in the same run (their FPS ratio is the loop's
overhead), then camera-to-command latency with the file paced like a camera. Commands go over a
real pseudo-terminal to the car simulator (``sim://``), so serial framing and writes are counted.
Builds are interleaved over repeats, as for the per-build figures; results are medians.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.builds import BuildPlan
from benchmarks.stats import bootstrap_median, median, rotate

log = logging.getLogger(__name__)


@dataclass
class LoopSettings:
    enabled: bool = True
    frames: int = 300  # frames of the video per throughput round
    rounds: int = 2  # bare/pipeline rounds per call (ABBA order inside run_loop_benchmark)
    latency_fps: float = 100.0  # camera rate of the paced latency run
    latency_frames: int = 300
    link: str = "sim://"

    def __post_init__(self) -> None:
        if self.frames < 2 or self.rounds < 1 or self.latency_frames < 2 or self.latency_fps <= 0:
            raise ValueError("--loop-frames and --loop-latency-frames must be >= 2, --loop-rounds >= 1")


def loop_round(bundle: Path, plan: BuildPlan, video: Path, s: LoopSettings, threads: int | None = None
               ) -> dict[str, Any]:
    from benchmarks.loop_benchmark import run_loop_benchmark

    # the workers' --threads too: bare and loop are compared on the backend the per-build figures used
    r = run_loop_benchmark(
        bundle, plan.backend, video, s.frames, s.rounds, s.latency_fps, s.latency_frames,
        measure_rss=False, fmt=plan.format, link=s.link, threads=threads,
    )
    return {
        "fps": r["pipeline_fps"],
        "bare_fps": r["bare_fps"],
        "fps_ratio": r["fps_ratio"],
        "fps_ratio_per_round": r["fps_ratio_per_round"],
        "per_frame_overhead_us": r.get("per_frame_overhead_us"),
        "per_frame_overhead_us_per_round": r["per_frame_overhead_us_per_round"],
        "bare_p50_ms": r["bare_inference_ms"]["p50"],
        "loop_inference_p50_ms": r["pipeline_inference_p50_ms"],
        "loadavg": r["machine"]["loadavg"],
        "bare_p99_ms": r["bare_p99_ms_rounds"],
        "camera_to_command_ms": r["camera_to_command_ms"],
        "latency_margin_ms": r["latency_margin_ms"],
        "dropped": r["frames_dropped_paced"],
        "frames": r["frames"],
    }


def measure_loops(
    bundle: Path, plans: list[BuildPlan], video: Path, s: LoopSettings, repeats: int, threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """{format: aggregated loop figures} for every build measured ``ok``; a failing build's loop
    is reported as ``{"error": ...}`` and the others go on."""
    ok = [p for p in plans if p.status == "ok"]
    rounds: dict[str, list[dict[str, Any]]] = {p.format: [] for p in ok}
    errors: dict[str, str] = {}
    for r in range(repeats):
        for plan in rotate(ok, r):
            if plan.format in errors:
                continue
            log.info("loop repeat %d/%d: %s", r + 1, repeats, plan.format)
            try:
                rounds[plan.format].append(loop_round(bundle, plan, video, s, threads))
            except Exception as e:  # reported in the build's row; other builds still run
                log.warning("loop benchmark of %s failed: %s", plan.format, e)
                errors[plan.format] = f"{type(e).__name__}: {e}"
    out: dict[str, dict[str, Any]] = {}
    for fmt, rs in rounds.items():
        if fmt in errors:
            out[fmt] = {"error": errors[fmt]}
        elif rs:
            out[fmt] = aggregate_loop(rs, s)
    return out


def aggregate_loop(rs: list[dict[str, Any]], s: LoopSettings) -> dict[str, Any]:
    """Medians over repeats; the FPS ratio and the overhead per frame over every round of every
    repeat (each round pairs bare and loop back to back), with their bootstrap intervals."""
    import os

    from benchmarks.loop_benchmark import consistency

    c2c_keys = ("p50", "p90", "p99", "max")
    ratio = bootstrap_median([x for r in rs for x in r["fps_ratio_per_round"]])
    overhead = bootstrap_median([x for r in rs for x in r["per_frame_overhead_us_per_round"]])
    why = consistency(ratio.to_dict(), float(median(r["bare_p50_ms"] for r in rs) or 0.0),
                      float(median(r["loop_inference_p50_ms"] for r in rs) or 0.0),
                      [x for r in rs for x in r["loadavg"]], os.cpu_count())
    return {
        "fps_ratio_interval": ratio.to_dict(),
        "per_frame_overhead_us_interval": overhead.to_dict(),
        "consistency": why,
        "link": s.link,
        "repeats": len(rs),
        "frames": rs[0]["frames"],
        "latency_fps": s.latency_fps,
        "fps": median(r["fps"] for r in rs),
        "bare_fps": median(r["bare_fps"] for r in rs),
        "fps_ratio": round(ratio.value, 4),
        "fps_ratio_per_repeat": [r["fps_ratio"] for r in rs],
        "per_frame_overhead_us": round(overhead.value, 2),
        "bare_p99_ms": median(r["bare_p99_ms"] for r in rs),
        "camera_to_command_ms": {k: median(r["camera_to_command_ms"][k] for r in rs) for k in c2c_keys},
        "camera_to_command_p99_per_repeat": [r["camera_to_command_ms"]["p99"] for r in rs],
        "latency_margin_ms": median(r["latency_margin_ms"] for r in rs),
        "dropped": int(sum(r["dropped"] for r in rs)),
    }
