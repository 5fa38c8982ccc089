"""Latency summaries and medians over repeated runs (no single run is ever reported alone)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

LATENCY_KEYS = ("min", "mean", "p50", "p90", "p99", "max")


def summarize(samples_ms: Sequence[float] | np.ndarray) -> dict[str, float]:
    """min/mean/p50/p90/p99/max of per-call latencies in milliseconds, plus ``count``."""
    v = np.asarray(samples_ms, np.float64)
    if v.size == 0:
        raise ValueError("no latency samples")
    p50, p90, p99 = np.percentile(v, [50, 90, 99])
    return {
        "min": round(float(v.min()), 4),
        "mean": round(float(v.mean()), 4),
        "p50": round(float(p50), 4),
        "p90": round(float(p90), 4),
        "p99": round(float(p99), 4),
        "max": round(float(v.max()), 4),
        "count": int(v.size),
    }


def median(values: Iterable[float | None]) -> float | None:
    vals = [float(v) for v in values if v is not None]
    return round(float(np.median(vals)), 4) if vals else None


def median_of_dicts(dicts: Sequence[dict[str, Any]], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Key-wise median of numeric values over repeats; nested dicts are handled recursively."""
    if not dicts:
        return {}
    keys = list(keys) if keys is not None else list(dicts[0])
    out: dict[str, Any] = {}
    for k in keys:
        vals = [d.get(k) for d in dicts]
        if all(isinstance(v, dict) for v in vals):
            out[k] = median_of_dicts(vals)  # type: ignore[arg-type]
        elif all(isinstance(v, int | float) and not isinstance(v, bool) for v in vals):
            out[k] = median(vals)
    return out


def rotate(items: Sequence[Any], by: int) -> list[Any]:
    """The order of builds in repeat ``by``: each build runs first once, so warm caches, turbo
    states and other processes' load do not always favour the same one."""
    if not items:
        return []
    k = by % len(items)
    return [*items[k:], *items[:k]]
