"""Safety-layer benchmark: the drive loop with a pilot alone against the same pilot with a detection
safety layer beside it, side by side in one run, and the stop latency from an obstacle's frame to
NEUTRAL on the wire.

    python -m benchmarks.safety_benchmark                       # the test bundles (lane follower + cone detector)
    python -m benchmarks.safety_benchmark --pilot B1 --safety B2 --rounds 6 --json out.json
    python -m benchmarks.safety_benchmark --compare nice=0,min_interval_ms=0   # + the uncapped detector

Measures:

- **throughput**: loop FPS with every frame handled (frames from memory, lossless), pilot alone
  (A) and with the safety layer (B), in ``--fps-rounds`` short alternating rounds (ABBA) so that
  load from other processes hits both alike; medians, the ratio B / A (issue 19: >= 0.90), the
  median of each round's own B / A, CPU ms per frame, and how many frames the detector judged
  (with the stale checks and frames held, so a starved detector cannot pass for a cheap one);
- **latency**: camera-to-command p50/p99 with the frames paced like a 30 fps camera, A and B alternating;
- **stop latency**: with a cone drawn on the road in a few stretches of the drive, from the capture
  of the first cone frame the loop took to the first NEUTRAL the simulated car got over a real pty,
  p50/p99 over every stretch of every round (the watchdog deadline is the bound).

Without ``--pilot``/``--safety`` it builds the small real bundles of
``tests/runtime/perception_bundles.py`` (ONNX Runtime): a colour-threshold road segmenter and a
colour-blob cone detector. ``--compare KEY=VALUE,...`` (repeatable) adds an arm, the detector with other
``[safety]`` settings, measured in the same rounds. Results go to stdout as JSON (and ``--json FILE``),
with the load average at the start and end.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from runtime.assembly import run
from runtime.camera import Camera, MemorySource
from runtime.config import (
    CameraSection,
    LinkSection,
    ModelSection,
    RecordSection,
    RunSection,
    RuntimeConfig,
    WatchdogSection,
)
from runtime.manifest import load_manifest
from runtime.policy import PolicyConfig
from runtime.preprocess import Preprocessor, image_layout
from runtime.recording import read_recording
from runtime.safety import SafetyConfig

log = logging.getLogger(__name__)

TARGET_FPS_RATIO = 0.90
EPISODES = [(20, 35), (65, 80), (110, 125)]


PILOT, SAFETY = "pilot", "pilot+safety"
CPU_KEYS = ("threads", "nice", "min_interval_ms", "max_verdict_age_ms")  # how the detector shares the CPU


def _config(pilot: Path, safety: Path | None, link: str, frames: int, threads: int,
            safety_set: dict[str, Any] | None = None) -> RuntimeConfig:
    return RuntimeConfig(
        model=ModelSection(bundle=str(pilot), backend="onnxruntime", threads=threads),
        camera=CameraSection(uri="memory://"), link=LinkSection(uri=link),
        policy=PolicyConfig(max_throttle=1.0, throttle_slew_rate=0.0),
        safety=SafetyConfig(bundle=str(safety) if safety else "", backend="onnxruntime", threads=threads,
                            **(safety_set or {})),
        run=RunSection(max_frames=frames),
    )


def paced_camera(pilot: Path, frames: list[np.ndarray], paced: bool) -> Camera:
    """A camera over ``frames`` prepared for ``pilot``'s input: paced like a 30 fps camera, or
    lossless as fast as the loop takes them."""
    m = load_manifest(pilot)
    spec, layout = m.preprocess, image_layout(m.camera_input.layout)
    src = MemorySource(frames, lossless=not paced, pacing_s=1 / 30 if paced else None)
    return Camera(src, prepare=lambda: Preprocessor(spec, layout))


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def parse_safety_set(text: str) -> dict[str, Any]:
    """``"nice=0,min_interval_ms=0"`` -> ``[safety]`` overrides (ints/floats as written);
    ``ValueError`` for a key :class:`SafetyConfig` does not have."""
    known = {f.name for f in dataclasses.fields(SafetyConfig)}
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in known or not value:
            raise ValueError(f"--compare {item!r}: give KEY=VALUE with a [safety] key ({', '.join(sorted(known))})")
        out[key] = float(value) if "." in value else int(value)
    return out


def stop_latencies(pilot: Path, safety: Path, frames: list[np.ndarray], threads: int, work: Path,
                   safety_set: dict[str, Any] | None = None) -> list[float]:
    """One paced drive over the simulated car: capture of each stretch's first cone frame -> NEUTRAL (ms)."""
    from runtime.sim import start_pty_simulator

    car, port = start_pty_simulator()
    try:
        cfg = _config(pilot, safety, port, len(frames), threads, safety_set)
        cfg.record = RecordSection(dir=str(work / "rec"), every=10**6)
        summary = run(cfg, camera=paced_camera(pilot, frames, paced=True))
        car.wait_for(lambda s: s.state == "disarmed", 3.0)
        stops = [e["t"] for e in list(car.events) if e["event"] == "neutral"]
        _, records = read_recording(summary["recording"]["dir"])
        rows = list(records)
        out = []
        for a, b in EPISODES:
            seen = [r["t_capture"] for r in rows if a <= r["source_index"] < b]
            later = [t for t in stops if seen and t > min(seen)]
            if later:
                out.append((min(later) - min(seen)) * 1000.0)
        return out
    finally:
        car.stop()


def _arms(compare: list[dict[str, Any]]) -> dict[str, dict[str, Any] | None]:
    """Arm name -> ``[safety]`` overrides (None: the pilot alone)."""
    arms: dict[str, dict[str, Any] | None] = {PILOT: None, SAFETY: {}}
    for c in compare:
        arms[SAFETY + "[" + ",".join(f"{k}={v}" for k, v in c.items()) + "]"] = c
    return arms


def _order(names: list[str], i: int) -> list[str]:
    """Round ``i``'s order: rotated by ``i``, reversed every other round (ABBA for two arms)."""
    k = (i // 2) % len(names)
    rot = names[k:] + names[:k]
    return rot if i % 2 == 0 else rot[::-1]


def _safety_figures(s: dict[str, Any]) -> dict[str, Any]:
    st = s.get("safety") or {}
    return {"judged_share": round(st["inferred"] / max(1, st["submitted"]), 4), "stale_checks": st["stale_checks"],
            "safety_held": s["safety_held"]} if st else {}


def run_safety_benchmark(pilot: Path, safety: Path, frames: list[np.ndarray], cone_frames: list[np.ndarray],
                         rounds: int = 4, threads: int = 1, fps_rounds: int = 16,
                         compare: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The figures (see the module) as a dict. ``compare``: ``[safety]`` overrides for more arms
    (the same detector with other settings, e.g. the rate cap and nice off), measured alike."""
    arms = _arms(compare or [])
    names = list(arms)
    fps: dict[str, list[float]] = {n: [] for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    ratios: dict[str, list[float]] = {n: [] for n in names[1:]}
    det: dict[str, list[dict[str, Any]]] = {n: [] for n in names[1:]}
    c2c: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    stops: dict[str, list[float]] = {n: [] for n in names[1:]}
    load = [round(x, 2) for x in os.getloadavg()]
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(fps_rounds):  # short unpaced runs, many alternations: foreign load hits every arm alike
            got: dict[str, float] = {}
            for name in _order(names, i):
                cfg = _config(pilot, safety if arms[name] is not None else None, "null://", len(frames), threads,
                              arms[name])
                c0 = time.process_time()
                s = run(cfg, camera=paced_camera(pilot, frames, False))
                cpu[name].append((time.process_time() - c0) / max(1, s["frames"]) * 1000.0)
                got[name] = s["fps"]
                fps[name].append(s["fps"])
                if arms[name] is not None:
                    det[name].append(_safety_figures(s))
            for name in names[1:]:
                ratios[name].append(got[name] / got[PILOT] if got[PILOT] else 0.0)
        for i in range(rounds):
            for name in _order(names, i):
                cfg = _config(pilot, safety if arms[name] is not None else None, "null://", len(frames), threads,
                              arms[name])
                s = run(cfg, camera=paced_camera(pilot, frames, True))
                st = s["stages_ms"]["camera_to_command"]
                c2c[name].append({"p50": st["p50"], "p99": st["p99"]})
            for name in names[1:]:
                stops[name] += stop_latencies(pilot, safety, cone_frames, threads, Path(tmp) / f"r{i}-{len(name)}",
                                              arms[name])
    load_end = [round(x, 2) for x in os.getloadavg()]
    med = {k: round(statistics.median(v), 2) for k, v in fps.items()}
    ratio = round(med[SAFETY] / med[PILOT], 4) if med[PILOT] else 0.0
    return {
        "rounds": rounds, "fps_rounds": fps_rounds, "frames": len(frames), "threads": threads,
        "safety_settings": {n: {k: getattr(SafetyConfig(threads=threads, **a), k) for k in CPU_KEYS}
                            for n, a in arms.items() if a is not None},
        "load_average_1_5_15": {"start": load, "end": load_end},
        "fps_median": med, "fps_all": {k: [round(x, 1) for x in v] for k, v in fps.items()},
        "fps_ratio": ratio, "fps_ratio_target": TARGET_FPS_RATIO, "fps_ratio_ok": ratio >= TARGET_FPS_RATIO,
        "fps_ratio_pairs_median": {k: round(statistics.median(v), 4) for k, v in ratios.items()},
        "cpu_ms_per_frame_median": {k: round(statistics.median(v), 4) for k, v in cpu.items()},
        "detector_unpaced": {k: {"judged_share_median": round(statistics.median(d["judged_share"] for d in v), 4),
                                 "stale_checks": sum(d["stale_checks"] for d in v),
                                 "safety_held": sum(d["safety_held"] for d in v)} for k, v in det.items()},
        "camera_to_command_ms": {k: {"p50": round(statistics.median(r["p50"] for r in v), 3),
                                     "p99": round(statistics.median(r["p99"] for r in v), 3)} for k, v in c2c.items()},
        "stop_latency_ms": {k: {"count": len(v), "p50": _pct(v, 50), "p99": _pct(v, 99),
                                "max": round(max(v), 3) if v else float("nan")} for k, v in stops.items()},
    }


def _test_bundles(root: Path, n: int) -> tuple[Path, Path, list[np.ndarray], list[np.ndarray]]:
    from tests.runtime.perception_bundles import det_bundle, draw_cone, road_drive, seg_bundle

    frames, _ = road_drive(n, seed=18)
    cones = frames.copy()
    for a, b in EPISODES:
        cones[a:b] = [draw_cone(f, z=1.3, x=0.05) for f in cones[a:b]]
    return seg_bundle(root), det_bundle(root), list(frames), list(cones)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON figures. Exit 0, or 2 for bad arguments."""
    p = argparse.ArgumentParser(prog="safety_benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--pilot", type=Path, help="pilot bundle (default: the test lane-follower bundle)")
    p.add_argument("--safety", type=Path, help="detection bundle (default: the test cone detector)")
    p.add_argument("--rounds", type=int, default=4, help="paced and stop-latency rounds (default 4)")
    p.add_argument("--fps-rounds", type=int, default=16, help="unpaced throughput rounds (default 16)")
    p.add_argument("--compare", action="append", default=[], metavar="KEY=VALUE,...",
                   help="one more arm: the detector with these [safety] settings (e.g. nice=0,min_interval_ms=0); "
                        "repeatable")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model (default 1)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if (args.pilot is None) != (args.safety is None) or min(args.rounds, args.fps_rounds) < 1 or args.frames < 140:
        sys.stderr.write("safety_benchmark: give both --pilot and --safety or neither; --rounds and --fps-rounds "
                         ">= 1, --frames >= 140\n")
        return 2
    try:
        compare = [parse_safety_set(c) for c in args.compare]
        for c in compare:  # the benchmark runs with the default watchdog deadline
            SafetyConfig(**c).check_interval(WatchdogSection().deadline_ms, "[watchdog] deadline_ms")
    except (ValueError, TypeError) as e:
        sys.stderr.write(f"safety_benchmark: {e}\n")
        return 2
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        pilot, safety, frames, cones = _test_bundles(Path(tmp), args.frames)
        if args.pilot is not None:
            pilot, safety = args.pilot, args.safety
        out = run_safety_benchmark(pilot, safety, frames, cones[:140], args.rounds, args.threads, args.fps_rounds,
                                   compare)
    text = json.dumps(out, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
