"""Per-build benchmarks: which builds to measure, one worker process per build and repeat, medians.

Repeats are interleaved: repeat 1 measures every build once, then repeat 2 again in a rotated
order, and so on, so that a burst of load from another process lands on several builds' repeats
rather than on all of one build's. Reported figures are medians over the repeats.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.stats import LATENCY_KEYS, median, median_of_dicts, rotate
from runtime import formats
from runtime.manifest import Manifest

log = logging.getLogger(__name__)

WORKER_TIMEOUT_S = 1800  # a TensorRT engine build on a Jetson can take minutes


@dataclass
class Settings:
    repeats: int = 3
    warmup: int = 50
    min_count: int = 500
    min_time_s: float = 3.0
    threads: int | None = None
    trt_cache_dir: str | None = None

    def __post_init__(self) -> None:
        if self.repeats < 1 or self.warmup < 0 or self.min_count < 1 or self.min_time_s < 0:
            raise ValueError("--repeats and --min-count must be >= 1, --warmup and --min-time >= 0")


@dataclass
class BuildPlan:
    format: str
    backend: str
    precision: str
    file: str = ""
    size_bytes: int | None = None
    status: str = "pending"  # pending -> ok | skipped | failed; not_built: listed, never measured
    reason: str = ""
    runs: list[dict[str, Any]] = field(default_factory=list)
    samples: list[np.ndarray] = field(default_factory=list)


def plan_builds(manifest: Manifest, only: list[str] | None = None) -> list[BuildPlan]:
    """Every build in the bundle, plus TensorRT formats the converter could not build (this machine
    may have the GPU the workstation lacked: the backend builds the engine from the ONNX)."""
    plans: list[BuildPlan] = []
    for b in manifest.builds:
        spec = formats.get(b.format)
        plans.append(BuildPlan(b.format, spec.runner, spec.precision, b.file, b.bytes))
    seen = {p.format for p in plans}
    for nb in manifest.not_built:
        fmt = str(nb.get("format", ""))
        if fmt in seen or fmt not in formats.BY_ID:
            continue
        spec = formats.get(fmt)
        plan = BuildPlan(fmt, spec.runner, spec.precision)
        if spec.runner != "tensorrt":
            plan.status, plan.reason = "not_built", f"not in the bundle: {nb.get('reason') or nb.get('status')}"
        plans.append(plan)
        seen.add(fmt)
    if only:
        unknown = [f for f in only if f not in formats.BY_ID]
        if unknown:
            raise ValueError(f"--formats: unknown {unknown}; known: {', '.join(formats.BY_ID)}")
        missing = [f for f in only if f not in seen]
        plans = [p for p in plans if p.format in only]
        for f in missing:
            spec = formats.get(f)
            plans.append(BuildPlan(f, spec.runner, spec.precision, status="not_built",
                                   reason="not in the bundle; convert it with convert-model --formats " + f))
    order = {f.id: i for i, f in enumerate(formats.FORMATS)}
    return sorted(plans, key=lambda p: order[p.format])


def run_worker(bundle: Path, plan: BuildPlan, settings: Settings, workdir: Path, tag: str,
               accuracy: bool) -> tuple[dict[str, Any], np.ndarray | None]:
    out, samples = workdir / f"{plan.format}.{tag}.json", workdir / f"{plan.format}.{tag}.npy"
    cmd = [sys.executable, "-m", "benchmarks.worker", "--bundle", str(bundle), "--format", plan.format,
           "--warmup", str(settings.warmup), "--min-count", str(settings.min_count),
           "--min-time", str(settings.min_time_s), "--out", str(out), "--samples", str(samples)]
    if accuracy:
        cmd.append("--accuracy")
    if settings.threads:
        cmd += ["--threads", str(settings.threads)]
    if settings.trt_cache_dir:
        cmd += ["--cache-dir", settings.trt_cache_dir]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=WORKER_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {WORKER_TIMEOUT_S} s"}, None
    if proc.returncode != 0 or not out.is_file():
        tail = (proc.stderr or "").strip().splitlines()[-1:] or ["no output"]
        return {"status": "failed", "reason": f"worker exited {proc.returncode}: {tail[0][:300]}"}, None
    result = json.loads(out.read_text())
    lat = np.load(samples) if samples.is_file() else None
    return result, lat


def measure_builds(bundle: Path, plans: list[BuildPlan], settings: Settings, workdir: Path) -> None:
    """Fill each plan's ``runs``/``samples``/``status`` (in place), repeats interleaved."""
    for r in range(settings.repeats):
        todo = [p for p in plans if p.status in ("pending", "ok")]
        for plan in rotate(todo, r):
            log.info("repeat %d/%d: %s", r + 1, settings.repeats, plan.format)
            result, lat = run_worker(bundle, plan, settings, workdir, f"r{r}", accuracy=not plan.runs)
            if result.get("status") != "ok":
                plan.status, plan.reason = str(result.get("status", "failed")), str(result.get("reason", ""))
                continue
            plan.status = "ok"
            plan.runs.append(result)
            if lat is not None:
                plan.samples.append(lat)


def aggregate(plan: BuildPlan) -> dict[str, Any]:
    """The build's entry in the results JSON: medians over repeats, per-repeat spread alongside."""
    out: dict[str, Any] = {
        "format": plan.format, "backend": plan.backend, "precision": plan.precision, "file": plan.file,
        "status": plan.status, "reason": plan.reason, "size_bytes": plan.size_bytes,
        "size_mb": round(plan.size_bytes / 1e6, 3) if plan.size_bytes else None,
    }
    runs = plan.runs
    if plan.status != "ok" or not runs:
        return out
    lats = [r["latency_ms"] for r in runs]
    out["repeats"] = len(runs)
    out["latency_ms"] = {k: median(x[k] for x in lats) for k in LATENCY_KEYS}
    out["latency_ms_per_repeat"] = {k: [x[k] for x in lats] for k in ("p50", "p99")}
    out["calls_per_repeat"] = [x["count"] for x in lats]
    out["fps"] = median(r["fps"] for r in runs)
    out["fps_per_repeat"] = [r["fps"] for r in runs]
    out["load_s"] = median(r.get("load_s") for r in runs)
    out["peak_rss_mb"] = median(r.get("peak_rss_mb") for r in runs)
    out["rss_source"] = runs[0].get("rss_source")
    if all("gpu_ms" in r for r in runs):
        out["gpu_ms"] = median_of_dicts([r["gpu_ms"] for r in runs])
    acc = next((r["accuracy"] for r in runs if "accuracy" in r), None)
    out["accuracy"] = acc  # deterministic: measured once, in the first repeat
    out["file"] = out["file"] or runs[0].get("file", "")
    engine_bytes = runs[0].get("size_bytes")
    if out["size_bytes"] is None and engine_bytes:  # an engine built here, in the cache
        out["size_bytes"], out["size_mb"] = engine_bytes, round(engine_bytes / 1e6, 3)
    return out
