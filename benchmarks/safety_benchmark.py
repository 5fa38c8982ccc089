"""Safety-layer benchmark: the drive loop with a pilot alone against the same pilot with a detection
safety layer beside it, side by side in one run, and the stop latency from an obstacle's frame to
NEUTRAL on the wire.

    python -m benchmarks.safety_benchmark                       # the test bundles (lane follower + cone detector)
    python -m benchmarks.safety_benchmark --pilot B1 --safety B2 --rounds 6 --json out.json

Measures:

- **throughput**: loop FPS with every frame handled (frames from memory, lossless), pilot alone
  (A) and with the safety layer (B), in alternating ABBA rounds so that load from other processes
  hits both alike; medians and the ratio B / A (issue 19: >= 0.90);
- **latency**: camera-to-command p50/p99 with the frames paced like a 30 fps camera, A and B alternating;
- **stop latency**: with a cone drawn on the road in a few stretches of the drive, from the capture
  of the first cone frame the loop took to the first NEUTRAL the simulated car got over a real pty,
  p50/p99 over every stretch of every round (the watchdog deadline is the bound).

Without ``--pilot``/``--safety`` it builds the small real bundles of
``tests/runtime/perception_bundles.py`` (ONNX Runtime): a colour-threshold road segmenter and a
colour-blob cone detector. Results go to stdout as JSON (and ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from runtime.assembly import run
from runtime.camera import Camera, MemorySource
from runtime.config import CameraSection, LinkSection, ModelSection, RecordSection, RunSection, RuntimeConfig
from runtime.manifest import load_manifest
from runtime.policy import PolicyConfig
from runtime.preprocess import Preprocessor, image_layout
from runtime.recording import read_recording
from runtime.safety import SafetyConfig

log = logging.getLogger(__name__)

TARGET_FPS_RATIO = 0.90
EPISODES = [(20, 35), (65, 80), (110, 125)]


def _config(pilot: Path, safety: Path | None, link: str, frames: int, threads: int) -> RuntimeConfig:
    return RuntimeConfig(
        model=ModelSection(bundle=str(pilot), backend="onnxruntime", threads=threads),
        camera=CameraSection(uri="memory://"), link=LinkSection(uri=link),
        policy=PolicyConfig(max_throttle=1.0, throttle_slew_rate=0.0),
        safety=SafetyConfig(bundle=str(safety) if safety else "", backend="onnxruntime", threads=threads),
        run=RunSection(max_frames=frames),
    )


def _camera(pilot: Path, frames: list[np.ndarray], paced: bool) -> Camera:
    m = load_manifest(pilot)
    spec, layout = m.preprocess, image_layout(m.camera_input.layout)
    src = MemorySource(frames, lossless=not paced, pacing_s=1 / 30 if paced else None)
    return Camera(src, prepare=lambda: Preprocessor(spec, layout))


def _pct(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 3) if values else float("nan")


def stop_latencies(pilot: Path, safety: Path, frames: list[np.ndarray], threads: int, work: Path) -> list[float]:
    """One paced drive over the simulated car: capture of each stretch's first cone frame -> NEUTRAL (ms)."""
    from runtime.sim import start_pty_simulator

    car, port = start_pty_simulator()
    try:
        cfg = _config(pilot, safety, port, len(frames), threads)
        cfg.record = RecordSection(dir=str(work / "rec"), every=10**6)
        summary = run(cfg, camera=_camera(pilot, frames, paced=True))
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


def run_safety_benchmark(pilot: Path, safety: Path, frames: list[np.ndarray], cone_frames: list[np.ndarray],
                         rounds: int = 4, threads: int = 1) -> dict[str, Any]:
    """The figures (see the module) as a dict."""
    fps: dict[str, list[float]] = {"pilot": [], "pilot+safety": []}
    c2c: dict[str, list[dict[str, float]]] = {"pilot": [], "pilot+safety": []}
    stops: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(rounds):
            order = ["pilot", "pilot+safety"] if i % 2 == 0 else ["pilot+safety", "pilot"]  # ABBA
            for name in order:
                det = safety if name == "pilot+safety" else None
                s = run(_config(pilot, det, "null://", len(frames), threads), camera=_camera(pilot, frames, False))
                fps[name].append(s["fps"])
            for name in order:
                det = safety if name == "pilot+safety" else None
                s = run(_config(pilot, det, "null://", len(frames), threads), camera=_camera(pilot, frames, True))
                st = s["stages_ms"]["camera_to_command"]
                c2c[name].append({"p50": st["p50"], "p99": st["p99"]})
            stops += stop_latencies(pilot, safety, cone_frames, threads, Path(tmp) / f"r{i}")
    med = {k: round(statistics.median(v), 2) for k, v in fps.items()}
    ratio = round(med["pilot+safety"] / med["pilot"], 4) if med["pilot"] else 0.0
    return {
        "rounds": rounds, "frames": len(frames), "threads": threads,
        "fps_median": med, "fps_rounds": fps, "fps_ratio": ratio, "fps_ratio_target": TARGET_FPS_RATIO,
        "fps_ratio_ok": ratio >= TARGET_FPS_RATIO,
        "camera_to_command_ms": {k: {"p50": round(statistics.median(r["p50"] for r in v), 3),
                                     "p99": round(statistics.median(r["p99"] for r in v), 3)} for k, v in c2c.items()},
        "stop_latency_ms": {"count": len(stops), "p50": _pct(stops, 50), "p99": _pct(stops, 99),
                            "max": round(max(stops), 3) if stops else float("nan")},
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
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per model (default 1)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if (args.pilot is None) != (args.safety is None) or args.rounds < 1 or args.frames < 140:
        sys.stderr.write("safety_benchmark: give both --pilot and --safety or neither; --rounds >= 1, --frames >= 140\n")
        return 2
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        pilot, safety, frames, cones = _test_bundles(Path(tmp), args.frames)
        if args.pilot is not None:
            pilot, safety = args.pilot, args.safety
        out = run_safety_benchmark(pilot, safety, frames, cones[:140], args.rounds, args.threads)
    text = json.dumps(out, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
