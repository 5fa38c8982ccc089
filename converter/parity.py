"""Compare a build's outputs with the source model's, by output name, never by position."""

from __future__ import annotations

from dataclasses import dataclass
from itertools import permutations

import numpy as np

from runtime.backends.base import Backend


@dataclass
class ParityResult:
    per_output: dict[str, dict[str, float]]  # name -> {max_abs, mean_abs}
    samples: int
    tolerance: float
    swapped: dict[str, str] | None = None  # build output -> source output it matches instead

    @property
    def max_abs(self) -> float:
        # np.max, not max(): a NaN anywhere must make the whole result NaN (and so not ok).
        return float(np.max([v["max_abs"] for v in self.per_output.values()])) if self.per_output else 0.0

    @property
    def mean_abs(self) -> float:
        return float(np.mean([v["mean_abs"] for v in self.per_output.values()])) if self.per_output else 0.0

    @property
    def ok(self) -> bool:
        return bool(np.isfinite(self.max_abs)) and self.max_abs <= self.tolerance

    def to_dict(self) -> dict[str, object]:
        return {
            "max_abs": self.max_abs,
            "mean_abs": self.mean_abs,
            "samples": self.samples,
            "tolerance": self.tolerance,
            "per_output": self.per_output,
        }

    def failure(self) -> str:
        bad = [k for k, v in self.per_output.items() if not np.isfinite(v["max_abs"])]
        if bad:
            return f"output {bad[0]!r} is not finite (NaN or inf) on some reference frames"
        if self.swapped:
            pairs = ", ".join(f"{b} carries {s}" for b, s in self.swapped.items())
            return f"outputs are swapped ({pairs}): the build maps outputs by position, not name"
        worst = max(self.per_output, key=lambda k: self.per_output[k]["max_abs"])
        return f"max abs error {self.max_abs:.3g} on {worst!r} exceeds tolerance {self.tolerance:g}"


def run_build(backend: Backend, inputs: np.ndarray) -> dict[str, np.ndarray]:
    """Batch-1 inference over every sample, as the car runs it."""
    outs: dict[str, list[np.ndarray]] = {}
    for i in range(inputs.shape[0]):
        for k, v in backend.infer(inputs[i : i + 1]).items():
            outs.setdefault(k, []).append(v.reshape(-1))
    return {k: np.stack(v) for k, v in outs.items()}


def compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray], tolerance: float) -> ParityResult:
    per: dict[str, dict[str, float]] = {}
    n = 0
    for name, ref in want.items():
        ref2 = ref.reshape(ref.shape[0], -1).astype(np.float64)
        err = np.abs(got[name].reshape(ref2.shape).astype(np.float64) - ref2)
        n = ref2.shape[0]
        per[name] = {"max_abs": float(err.max()), "mean_abs": float(err.mean())}
    result = ParityResult(per, n, tolerance)
    if not result.ok and len(want) > 1:
        result.swapped = _find_swap(got, want, tolerance)
    return result


def _find_swap(got: dict[str, np.ndarray], want: dict[str, np.ndarray], tol: float) -> dict[str, str] | None:
    names = list(want)
    for perm in permutations(names):
        if list(perm) == names:
            continue
        errs = [
            np.abs(got[b].reshape(-1) - want[s].reshape(-1)).max() for b, s in zip(names, perm, strict=True)
            if got[b].size == want[s].size
        ]
        if len(errs) == len(names) and np.max(errs) <= tol:  # np.max: a NaN never counts as a match
            return {b: s for b, s in zip(names, perm, strict=True) if b != s}
    return None
