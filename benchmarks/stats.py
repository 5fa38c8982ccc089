"""Latency summaries and medians over repeated runs (no single run is ever reported alone)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Interval:
    """A figure's point estimate with its confidence interval (``lo`` <= ``value`` <= ``hi``)."""

    value: float
    lo: float
    hi: float
    confidence: float
    n: int

    @property
    def rel_width(self) -> float:
        """The interval's width as a share of the value (0.12: 12 % wide); inf for a zero value."""
        return (self.hi - self.lo) / abs(self.value) if self.value else float("inf")

    def to_dict(self) -> dict[str, float]:
        return {"value": round(self.value, 5), "lo": round(self.lo, 5), "hi": round(self.hi, 5),
                "confidence": self.confidence, "n": self.n}


BOOTSTRAP_RESAMPLES = 4000


def bootstrap_median(values: Sequence[float] | np.ndarray, confidence: float = 0.95, seed: int = 0,
                     resamples: int = BOOTSTRAP_RESAMPLES) -> Interval:
    """The median of ``values`` (one per round) with its percentile-bootstrap interval.

    Rounds are resampled with replacement ``resamples`` times with a fixed ``seed``, so the same
    rounds always give the same interval. Few rounds give a wide interval, as they should: with
    3 rounds it is about [min, max]."""
    v = np.asarray(values, np.float64)
    if v.size == 0:
        raise ValueError("no rounds to summarize")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence {confidence} must be between 0 and 1")
    rng = np.random.default_rng(seed)
    meds = np.median(v[rng.integers(0, v.size, (resamples, v.size))], axis=1)
    tail = (1 - confidence) / 2
    lo, hi = np.quantile(meds, [tail, 1 - tail])
    return Interval(float(np.median(v)), float(lo), float(hi), confidence, int(v.size))


def paired_ratio(cand: Sequence[float] | np.ndarray, base: Sequence[float] | np.ndarray,
                 confidence: float = 0.95, seed: int = 0) -> Interval:
    """Median over rounds of candidate/baseline, with its bootstrap interval. Each round measured
    both back to back, so a round's ratio cancels the load that round had in common."""
    c, b = np.asarray(cand, np.float64), np.asarray(base, np.float64)
    if c.shape != b.shape:
        raise ValueError(f"{c.size} candidate rounds but {b.size} baseline rounds")
    with np.errstate(divide="ignore", invalid="ignore"):
        return bootstrap_median(c / b, confidence, seed)
