"""The replay gate: before a staged bundle may drive, it runs on the car, on the backend it will
drive with, over the bundle's reference frames (``reference.npz``: the frames and the source model's
outputs the converter stored), and must agree with those outputs within the build's own parity
tolerance and keep its per-frame p99 latency under a budget.

Reference frames only, not yet a ``--record`` drive of the car's own camera: a recording has no
source-model outputs to compare with (the issue's comparison with the current model's decoded
commands is not built). Bundles with image sequences are not gated (logged, passed).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

DEFAULT_TOLERANCE = 0.01  # the converter's own parity default for FP16 builds


@dataclass(frozen=True)
class GateConfig:
    """``backend``/``fmt`` as ``rc-runtime --backend/--format`` would pick; ``p99_ms`` the budget;
    ``tolerance`` overrides the build's parity tolerance when set."""

    backend: str = "auto"
    fmt: str = ""
    p99_ms: float = 50.0
    tolerance: float | None = None
    warmup: int = 3
    timed_runs: int = 300  # latency: the reference frames cycled to at least this many inferences


def replay_gate(bundle: Path, cfg: GateConfig) -> tuple[str | None, dict[str, Any]]:
    """(why it fails or None, figures). Figures: backend, build, frames, max |error| per output,
    tolerance, p50/p99 ms, budget."""
    from runtime.backends import open_backend
    from runtime.manifest import load_manifest
    from runtime.preprocess import Preprocessor, image_layout

    manifest = load_manifest(bundle)
    ref_entry = manifest.source.get("reference")
    if not ref_entry:
        return "no reference.npz in the bundle to replay; convert it with a current convert-model", {}
    ref = np.load(bundle / ref_entry["file"])
    roles = {i.role for i in manifest.inputs}
    if "image_sequence" in roles:
        log.warning("replay gate: image-sequence inputs are not replayed yet; %s passes ungated", bundle)
        return None, {"gated": False}
    try:
        backend = open_backend(bundle, cfg.backend, cfg.fmt or None, manifest)
    except Exception as e:  # BackendUnavailable, a build the car cannot load: it could not drive either
        return f"replay gate: cannot open it on this car ({cfg.backend}): {e}", {}
    try:
        build = backend.build
        tol = cfg.tolerance if cfg.tolerance is not None else float(build.parity.get("tolerance", DEFAULT_TOLERANCE))
        frames = ref["frames_bgr"]
        arrays = {k: ref[k] for k in ref.files}  # NpzFile decompresses on every access
        pre = {i.name: Preprocessor(i.preprocess, image_layout(i.layout)) for i in manifest.inputs
               if i.role == "image" and i.preprocess is not None}
        worst = {o.name: 0.0 for o in manifest.outputs}
        feeds = [_feeds(manifest, pre, arrays, frames, j) for j in range(len(frames))]
        for _ in range(cfg.warmup):
            backend.infer(feeds[0])
        for j, feed in enumerate(feeds):
            out = backend.infer(feed)
            for o in manifest.outputs:
                if f"out/{o.name}" not in arrays:
                    continue
                err = np.abs(out[o.name].reshape(-1).astype(np.float64) - arrays[f"out/{o.name}"][j].reshape(-1))
                worst[o.name] = max(worst[o.name], float(np.max(err)) if err.size else 0.0)
        p50, p99 = _timed(backend, feeds, cfg.timed_runs)
        tries = [round(p99, 3)]
        if p99 > cfg.p99_ms:  # one scheduler hiccup in a few hundred runs is not a slow model: measure again
            p50, p99 = min((p50, p99), _timed(backend, feeds, cfg.timed_runs), key=lambda t: t[1])
            tries.append(round(p99, 3))
        figures = {"gated": True, "backend": backend.name, "build": build.format, "frames": len(frames),
                   "max_abs_err": {k: round(v, 6) for k, v in worst.items()}, "tolerance": tol,
                   "timed_runs": max(cfg.timed_runs, len(feeds)), "p50_ms": round(p50, 3), "p99_ms": round(p99, 3),
                   "p99_tries_ms": tries, "p99_budget_ms": cfg.p99_ms}
    finally:
        backend.close()
    bad = {k: v for k, v in worst.items() if not v <= tol}  # NaN fails too
    if bad:
        name, err = max(bad.items(), key=lambda kv: kv[1] if kv[1] == kv[1] else float("inf"))
        return (f"replay gate: {name} off by {err:.4g} (> tolerance {tol:g}) on {len(frames)} reference frames "
                f"with {backend.name} {build.format}"), figures
    if p99 > cfg.p99_ms:
        return (f"replay gate: p99 {p99:.1f} ms > budget {cfg.p99_ms:g} ms on {len(frames)} reference frames "
                f"with {backend.name} {build.format}"), figures
    return None, figures


def _feeds(manifest: Any, pre: dict[str, Any], arrays: dict[str, np.ndarray], frames: np.ndarray,
           j: int) -> dict[str, np.ndarray]:
    """Reference frame ``j`` as the runtime feeds it: images through the bundle's preprocessing,
    vector inputs from ``in/<name>``."""
    feeds = {name: p(frames[j]).copy() for name, p in pre.items()}
    for i in manifest.inputs:
        if i.name not in feeds:
            feeds[i.name] = np.asarray(arrays[f"in/{i.name}"][j : j + 1], np.float32)
    return feeds


def _timed(backend: Any, feeds: list[dict[str, np.ndarray]], runs: int) -> tuple[float, float]:
    """(p50, p99) ms of one inference over ``runs`` (at least one per frame), frames cycled."""
    times = []
    for k in range(max(runs, len(feeds))):
        t0 = time.perf_counter()
        backend.infer(feeds[k % len(feeds)])
        times.append((time.perf_counter() - t0) * 1000.0)
    return float(np.percentile(times, 50)), float(np.percentile(times, 99))
