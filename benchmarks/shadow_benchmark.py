"""Shadow-mode benchmark: the drive loop alone against the same loop with a shadow model beside it,
side by side in one run (the structure of ``benchmarks/safety_benchmark.py``).

    python -m benchmarks.shadow_benchmark --bundle builds/rc_pilot/v3
    python -m benchmarks.shadow_benchmark --bundle B --shadow CANDIDATE --rounds 6 --json out.json

Measures, with frames paced like a 30 fps camera (what the car sees), drive alone (A) and drive +
shadow (B) alternating in ABBA rounds so that load from other processes hits both alike:

- the driving loop's camera-to-command p50/p90/p99 and its inference p99 (ms), each the median
  over rounds, and the ratio of B's camera-to-command p99 to A's (issue 24: B within 5% of A);
  also p50/p90/p99 over every frame of every round pooled per mode (from the loop's telemetry), a
  steadier p99 than the median of per-round ones;
- how much of the drive the shadow judged: frames offered, inferred, skipped (it only gets the
  time the loop leaves, at a lower priority).

Without ``--shadow`` the driving bundle is its own shadow: a candidate of the same architecture
costs the same, and the disagreement is then zero. Frames are the demo track's
(``converter.demo.track``). Results go to stdout as JSON (and ``--json FILE``).
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.safety_benchmark import paced_camera
from runtime.assembly import run
from runtime.camera import CameraFrame
from runtime.config import CameraSection, LinkSection, ModelSection, RunSection, RuntimeConfig
from runtime.policy import PolicyConfig
from runtime.shadow import ShadowConfig
from runtime.telemetry import FrameReport, Telemetry

log = logging.getLogger(__name__)

TARGET_P99_RATIO = 1.05
MODES = ("drive", "drive+shadow")
QUANTITIES = ("p50", "p90", "p99", "inference_p99")


def _config(bundle: Path, shadow: Path | None, frames: int, threads: int, nice: int = 10) -> RuntimeConfig:
    return RuntimeConfig(
        model=ModelSection(bundle=str(bundle), backend="onnxruntime", threads=threads),
        camera=CameraSection(uri="memory://"), link=LinkSection(uri="null://"),
        policy=PolicyConfig(max_throttle=1.0, throttle_slew_rate=0.0),
        shadow=ShadowConfig(bundle=str(shadow) if shadow else "", backend="onnxruntime", nice=nice),
        run=RunSection(max_frames=frames),
    )


def run_shadow_benchmark(bundle: Path, shadow: Path, frames: list[np.ndarray], rounds: int = 4,
                         threads: int = 1, nice: int = 10) -> dict[str, Any]:
    """The figures (see the module) as a dict."""
    c2c: dict[str, list[dict[str, float]]] = {m: [] for m in MODES}
    pooled: dict[str, list[float]] = {m: [] for m in MODES}  # every sent frame's camera-to-command (ms)
    judged: list[dict[str, int]] = []
    for i in range(rounds):
        order = MODES if i % 2 == 0 else MODES[::-1]  # ABBA
        for mode in order:
            telemetry = Telemetry()
            telemetry.subscribe(_Keep(pooled[mode]))
            s = run(_config(bundle, shadow if mode == "drive+shadow" else None, len(frames), threads, nice),
                    camera=paced_camera(bundle, frames, paced=True), telemetry=telemetry)
            st, inf = s["stages_ms"]["camera_to_command"], s["stages_ms"]["inference"]
            c2c[mode].append({"p50": st["p50"], "p90": st["p90"], "p99": st["p99"], "inference_p99": inf["p99"]})
            if "shadow" in s:
                sh = s["shadow"]
                judged.append({k: sh[k] for k in ("offered", "inferred", "skipped", "errors")})
    med = {m: {q: round(statistics.median(r[q] for r in v), 3) for q in QUANTITIES} for m, v in c2c.items()}
    ratio = round(med["drive+shadow"]["p99"] / med["drive"]["p99"], 4) if med["drive"]["p99"] else 0.0
    pool = {m: {f"p{q}": round(float(np.percentile(v, q)), 3) for q in (50, 90, 99)} | {"count": len(v)}
            for m, v in pooled.items() if v}
    return {
        "rounds": rounds, "frames": len(frames), "threads": threads, "nice": nice, "bundle": str(bundle), "shadow": str(shadow),
        "camera_to_command_ms": med, "camera_to_command_rounds": c2c, "camera_to_command_pooled_ms": pool,
        "pooled_p99_ratio": round(pool["drive+shadow"]["p99"] / pool["drive"]["p99"], 4) if len(pool) == 2 else None,
        "p99_ratio": ratio, "p99_ratio_target": TARGET_P99_RATIO, "p99_ratio_ok": ratio <= TARGET_P99_RATIO,
        "shadow_judged": {k: sum(j[k] for j in judged) for k in ("offered", "inferred", "skipped", "errors")},
    }


class _Keep:
    """A telemetry listener keeping every sent frame's camera-to-command (ms)."""

    def __init__(self, into: list[float]) -> None:
        self.into = into

    def __call__(self, frame: CameraFrame, report: FrameReport) -> None:
        if report.camera_to_command_ms is not None:
            self.into.append(report.camera_to_command_ms)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the JSON figures. Exit 0, or 2 for bad arguments."""
    p = argparse.ArgumentParser(prog="shadow_benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--bundle", type=Path, required=True, help="the driving bundle")
    p.add_argument("--shadow", type=Path, help="the shadow bundle (default: the driving bundle itself)")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--frames", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads of the driving model (default 1)")
    p.add_argument("--nice", type=int, default=10, help="the shadow thread's niceness, 0-19 (default 10)")
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    if args.rounds < 1 or args.frames < 10 or not 0 <= args.nice <= 19:
        sys.stderr.write("shadow_benchmark: --rounds >= 1, --frames >= 10, --nice in [0, 19]\n")
        return 2
    for b in (args.bundle, args.shadow):
        if b is not None and not (b / "manifest.json").is_file():
            sys.stderr.write(f"shadow_benchmark: {b} has no manifest.json; pass a bundle made by convert-model\n")
            return 2
    logging.basicConfig(level=logging.WARNING)
    from converter.demo.track import drive_sequence

    frames, _, _ = drive_sequence(args.frames, seed=11)
    out = run_shadow_benchmark(args.bundle, args.shadow or args.bundle, list(frames), args.rounds, args.threads,
                               args.nice)
    text = json.dumps(out, indent=2)
    sys.stdout.write(text + "\n")
    if args.json:
        args.json.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
