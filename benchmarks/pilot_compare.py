"""Loop FPS of two pilots side by side: the Keras demo pilot (NHWC) and the PyTorch JetRacer-style
one (NCHW), in one run, alternating (A B B A ...) so that load from other processes hits both alike.

    python -m benchmarks.pilot_compare builds/rc_pilot/v3 builds/jetracer_pilot/v1 --backend onnxruntime

Each turn is one :func:`benchmarks.loop_benchmark.run_loop_benchmark` call (bare backend FPS and
the whole pipeline's FPS on the same frames); the report gives, per bundle, the median over its
turns, and the ratio of the two pipelines' FPS.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.loop_benchmark import run_loop_benchmark
from runtime.backend_names import canonical_backend

log = logging.getLogger(__name__)


def compare(a: Path, b: Path, backend: str, frames: int, turns: int, threads: int | None) -> dict[str, Any]:
    """{bundle name: {bare_fps, pipeline_fps, fps_ratio, camera_to_command_p99_ms}} + pipeline ratio b/a."""
    order = [a, b, b, a] * ((turns + 1) // 2)
    runs: dict[Path, list[dict[str, Any]]] = {a: [], b: []}
    for bundle in order[: 2 * turns]:
        r = run_loop_benchmark(bundle, backend, n_frames=frames, rounds=1, latency_frames=min(frames, 150),
                               measure_rss=False, threads=threads)
        runs[bundle].append(r)
        log.info("%s: bare %.1f fps, pipeline %.1f fps", bundle, r["bare_fps"], r["pipeline_fps"])
    out: dict[str, Any] = {"backend": backend, "frames": frames, "turns": turns, "threads": threads}
    for bundle, rs in runs.items():
        out[str(bundle)] = {
            "model": rs[0]["model"],
            "bare_fps": round(float(np.median([r["bare_fps"] for r in rs])), 1),
            "pipeline_fps": round(float(np.median([r["pipeline_fps"] for r in rs])), 1),
            "fps_ratio": round(float(np.median([r["fps_ratio"] for r in rs])), 3),
            "bare_inference_p50_ms": round(float(np.median([r["bare_inference_ms"]["p50"] for r in rs])), 2),
            "camera_to_command_p99_ms": round(float(np.median([r["camera_to_command_ms"]["p99"] for r in rs])), 2),
        }
    out["pipeline_fps_b_over_a"] = round(out[str(b)]["pipeline_fps"] / out[str(a)]["pipeline_fps"], 3)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.pilot_compare", description=__doc__.splitlines()[0])
    p.add_argument("a", type=Path, help="first bundle (e.g. builds/rc_pilot/v3)")
    p.add_argument("b", type=Path, help="second bundle (e.g. builds/jetracer_pilot/v1)")
    p.add_argument("--backend", default="onnxruntime", choices=("onnxruntime", "litert", "tensorrt"),
                   type=canonical_backend, help="tflite: the old name of litert")
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--turns", type=int, default=2, help="runs per bundle (alternating)")
    p.add_argument("--threads", type=int, help="backend CPU threads")
    p.add_argument("--json", type=Path, help="also write the result here")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    result = compare(args.a, args.b, args.backend, args.frames, args.turns, args.threads)
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
