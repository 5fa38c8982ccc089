"""Measure one build in a process of its own: ``python -m benchmarks.worker --bundle B --format F --out R.json``.

A fresh process per build (and per repeat) makes the peak resident memory that build's own — a
process that had loaded every backend would report the sum — and keeps one build's allocator
state and thread pools from colouring the next. Peak memory is ``VmHWM`` read by this process at
the end: ``ru_maxrss`` of a child seen from the parent would include the parent's memory (it is
inherited across fork + exec).

Writes one JSON object (always, also when the build cannot run here: ``status`` says so) and the
raw per-call latencies as ``.npy``. Imports neither TensorFlow nor MLflow.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.stats import summarize
from runtime import formats
from runtime.backends import BackendUnavailable, open_backend
from runtime.manifest import load_manifest
from runtime.resources import peak_rss_mb

log = logging.getLogger(__name__)

GPU_STAGES = ("h2d", "compute", "d2h")


def timed_calls(
    infer: Callable[[Any], Any],
    inputs: np.ndarray | dict[str, np.ndarray],
    warmup: int,
    min_count: int,
    min_time_s: float,
    after_call: Callable[[], None] | None = None,
) -> tuple[np.ndarray, float]:
    """Warm up, then call until both ``min_count`` calls and ``min_time_s`` seconds are reached.

    Returns (per-call latencies in ms, wall seconds of the timed part). Inputs cycle through the
    given frames, batch 1, so caches see varied data as on the car. ``inputs`` is one (N, ...) array
    or {input name: (N, ...) array}; each call gets sample i of every input.
    """
    if isinstance(inputs, dict):
        n = len(next(iter(inputs.values())))
        calls: list[Any] = [{k: v[i : i + 1] for k, v in inputs.items()} for i in range(n)]
    else:
        n = len(inputs)
        calls = [inputs[i : i + 1] for i in range(n)]
    for i in range(warmup):
        infer(calls[i % n])
    lat: list[float] = []
    t_start = time.perf_counter()
    i = 0
    while True:
        x = calls[i % n]
        t = time.perf_counter()
        infer(x)
        t_end = time.perf_counter()
        lat.append((t_end - t) * 1000.0)
        if after_call is not None:
            after_call()
        i += 1
        if i >= min_count and t_end - t_start >= min_time_s:
            return np.asarray(lat), t_end - t_start


def _inputs(bundle: Path, manifest: Any) -> tuple[dict[str, np.ndarray], Any]:
    from benchmarks.reference_data import load_reference

    ref = load_reference(bundle, manifest)
    if ref is not None:
        return ref.inputs, ref
    # No reference frames: time on noise of the right shape (accuracy is then not measured).
    rng = np.random.default_rng(0)
    return {i.name: rng.random((16, *i.shape[1:]), dtype=np.float32) for i in manifest.inputs}, None


def measure_build(
    bundle: Path, fmt: str, warmup: int, min_count: int, min_time_s: float, want_accuracy: bool,
    threads: int | None = None, cache_dir: str | None = None,
) -> tuple[dict[str, Any], np.ndarray | None]:
    manifest = load_manifest(bundle)
    spec = formats.get(fmt)
    result: dict[str, Any] = {"format": fmt, "backend": spec.runner, "precision": spec.precision}
    options: dict[str, Any] = {}
    if threads:
        options["threads"] = threads
    if cache_dir:
        options["cache_dir"] = cache_dir
    t0 = time.perf_counter()
    try:
        backend = open_backend(bundle, spec.runner, fmt, manifest, **options)
    except BackendUnavailable as e:
        return {**result, "status": "skipped", "reason": str(e)}, None
    result["load_s"] = round(time.perf_counter() - t0, 3)
    with backend:
        result["file"] = backend.build.file
        result["size_bytes"] = Path(backend.path).stat().st_size
        result["describe"] = {k: str(v) for k, v in backend.describe().items()}
        inputs, ref = _inputs(bundle, manifest)
        gpu: dict[str, list[float]] = {k: [] for k in GPU_STAGES}
        has_gpu_timings = hasattr(type(backend), "last_timings_ms")

        def record_gpu() -> None:
            t = backend.last_timings_ms  # type: ignore[attr-defined]
            for k in GPU_STAGES:
                gpu[k].append(float(t[k]))

        lat, wall = timed_calls(backend.infer, inputs, warmup, min_count, min_time_s,
                                record_gpu if has_gpu_timings else None)
        result.update(status="ok", latency_ms=summarize(lat), fps=round(len(lat) / wall, 2),
                      timed_s=round(wall, 3))
        if has_gpu_timings:
            result["gpu_ms"] = {k: summarize(v) for k, v in gpu.items()}
        if want_accuracy and ref is not None:
            from benchmarks.reference_data import accuracy

            result["accuracy"] = accuracy(backend, ref)
    result["peak_rss_mb"], result["rss_source"] = peak_rss_mb()
    return result, lat


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="benchmarks.worker", description="Measure one build (used by rc-benchmark).")
    p.add_argument("--bundle", required=True, type=Path)
    p.add_argument("--format", required=True)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--min-count", type=int, default=500)
    p.add_argument("--min-time", type=float, default=3.0)
    p.add_argument("--threads", type=int)
    p.add_argument("--cache-dir", help="TensorRT engine cache")
    p.add_argument("--accuracy", action="store_true")
    p.add_argument("--out", required=True, type=Path, help="result JSON")
    p.add_argument("--samples", type=Path, help="per-call latencies (.npy)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        result, lat = measure_build(args.bundle, args.format, args.warmup, args.min_count, args.min_time,
                                    args.accuracy, args.threads, args.cache_dir)
    except Exception as e:  # any failure is this build's result; the parent reports it in the table
        log.debug("measuring %s failed", args.format, exc_info=True)
        result, lat = {"format": args.format, "status": "failed", "reason": f"{type(e).__name__}: {e}"}, None
    result["pid"] = os.getpid()
    if lat is not None and args.samples:
        np.save(args.samples, lat.astype(np.float32))
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
