"""Compare a build's outputs with the source model's, by output name, never by position.

Driving outputs: raw outputs decide (``max_abs`` within the format's tolerance); the decoded
commands are compared too and recorded (``decoded``: per meaning, max error of the decoded value
and, for categorical outputs, the share of frames whose most probable bin differs from the source
model's).

Perception outputs (a segmentation map; boxes, scores and labels or a YOLO head, and every output
their decoder reads) are judged by what the task means (:mod:`converter.task_parity`): decoded with
the bundle's decoder on both sides, then class-map IoU / pixel agreement or detection matching
against the source, gated per precision. Their raw max/mean abs errors are recorded, not judged.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from itertools import permutations
from typing import Any

import numpy as np

from converter.task_parity import DEFAULT_GATES, TaskThresholds, task_failures
from runtime.agreement import perception_reads, task_agreement
from runtime.backends.base import Backend
from runtime.decode import OutputDecoders
from runtime.decode.bins import BinsDecoder
from runtime.manifest import OutputSpec

log = logging.getLogger(__name__)


@dataclass
class ParityResult:
    """A build's outputs against the source model's on ``samples`` reference frames: per output name
    ``{max_abs, mean_abs}`` (absolute error in the output's own units), the format's ``tolerance``,
    ``swapped`` (build output -> the source output it matches instead, when outputs came out by
    position) and ``decoded`` (per meaning ``{max_abs[, bin_flip_rate]}``, recorded, not judged).

    Perception bundles add ``task`` ({meaning: figures} from :func:`runtime.agreement.task_agreement`),
    the ``gate`` they were judged by (its ``level``, e.g. ``fp16``, and thresholds) and
    ``task_failures`` (one line per figure over its threshold); ``judged`` then lists the outputs
    whose raw error is held to ``tolerance`` (None: every output).
    """

    per_output: dict[str, dict[str, float]]  # name -> {max_abs, mean_abs}
    samples: int
    tolerance: float
    swapped: dict[str, str] | None = None  # build output -> source output it matches instead
    decoded: dict[str, dict[str, float]] | None = None  # meaning -> {max_abs[, bin_flip_rate]}
    task: dict[str, dict[str, Any]] | None = None  # meaning -> figures (perception outputs only)
    gate: dict[str, Any] | None = None  # {level, thresholds...} the task figures were judged by
    task_failures: list[str] = field(default_factory=list)
    judged: tuple[str, ...] | None = None  # outputs held to ``tolerance``; None: all

    @property
    def max_abs(self) -> float:
        """The largest absolute error over every output; NaN when any output is NaN/inf (then not
        :attr:`ok`).
        """
        # np.max, not max(): a NaN anywhere must make the whole result NaN (and so not ok).
        return float(np.max([v["max_abs"] for v in self.per_output.values()])) if self.per_output else 0.0

    @property
    def mean_abs(self) -> float:
        """The mean of the outputs' mean absolute errors."""
        return float(np.mean([v["mean_abs"] for v in self.per_output.values()])) if self.per_output else 0.0

    @property
    def judged_max_abs(self) -> float:
        """The largest absolute error over the outputs held to ``tolerance`` (0.0 with none)."""
        names = self.per_output if self.judged is None else self.judged
        vals = [self.per_output[n]["max_abs"] for n in names if n in self.per_output]
        return float(np.max(vals)) if vals else 0.0

    @property
    def ok(self) -> bool:
        """True when every output is finite, the judged outputs' error is within ``tolerance`` and
        no task figure is over its threshold."""
        return (bool(np.isfinite(self.max_abs)) and self.judged_max_abs <= self.tolerance
                and not self.task_failures)

    def to_dict(self) -> dict[str, object]:
        """The manifest's ``parity`` entry: max_abs, mean_abs, samples, tolerance, per_output[, decoded]
        [, task: {meaning: figures, gate, failures, judged_outputs}]."""
        task: dict[str, Any] = {}
        if self.task:
            task = {"task": {**self.task, "gate": self.gate or {}, "failures": list(self.task_failures),
                             "judged_outputs": list(self.judged or ())}}
        return {
            "max_abs": self.max_abs,
            "mean_abs": self.mean_abs,
            "samples": self.samples,
            "tolerance": self.tolerance,
            "per_output": self.per_output,
            **({"decoded": self.decoded} if self.decoded else {}),
            **task,
        }

    def failure(self) -> str:
        """One line saying why the build failed: a non-finite output, swapped outputs, or the worst error vs
        the tolerance.
        """
        bad = [k for k, v in self.per_output.items() if not np.isfinite(v["max_abs"])]
        if bad:
            return f"output {bad[0]!r} is not finite (NaN or inf) on some reference frames"
        if self.swapped:
            pairs = ", ".join(f"{b} carries {s}" for b, s in self.swapped.items())
            return f"outputs are swapped ({pairs}): the build maps outputs by position, not name"
        names = list(self.per_output if self.judged is None else self.judged)
        if names and self.judged_max_abs > self.tolerance:
            worst = max(names, key=lambda k: self.per_output[k]["max_abs"])
            return f"max abs error {self.judged_max_abs:.3g} on {worst!r} exceeds tolerance {self.tolerance:g}"
        return "; ".join(self.task_failures) or "no failure"


def run_build(backend: Backend, inputs: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Batch-1 inference over every sample, as the car runs it: (N, ...) inputs (one array, or
    {input name: array}) -> {output name: (N, values) float32}."""
    outs: dict[str, list[np.ndarray]] = {}
    n = inputs.shape[0] if isinstance(inputs, np.ndarray) else len(next(iter(inputs.values())))
    for i in range(n):
        x = inputs[i : i + 1] if isinstance(inputs, np.ndarray) else {k: v[i : i + 1] for k, v in inputs.items()}
        for k, v in backend.infer(x).items():
            outs.setdefault(k, []).append(v.ravel())
    return {k: np.stack(v) for k, v in outs.items()}


def compare(got: dict[str, np.ndarray], want: dict[str, np.ndarray], tolerance: float,
            outputs: Sequence[OutputSpec] = (), thresholds: TaskThresholds | None = None,
            level: str = "fp32") -> ParityResult:
    """Per-output max/mean absolute error of ``got`` vs ``want`` ({name: (N, ...)}), by name.

    ``outputs`` (the manifest's) adds the decoded comparison and, for perception outputs, the task
    figures judged by ``thresholds`` (default: the ``fp32`` gate; ``level`` names the gate in
    messages). ``max_abs`` is NaN when any error is.
    """
    per: dict[str, dict[str, float]] = {}
    n = 0
    for name, ref in want.items():
        ref2 = ref.reshape(ref.shape[0], -1).astype(np.float64)
        err = np.abs(got[name].reshape(ref2.shape).astype(np.float64) - ref2)
        n = ref2.shape[0]
        per[name] = {"max_abs": float(err.max()) if err.size else 0.0, "mean_abs": float(err.mean()) if err.size else 0.0}
    result = ParityResult(per, n, tolerance, decoded=_decoded(got, want, outputs) if outputs else None)
    task_reads = perception_reads(outputs)
    if task_reads:
        t = thresholds or DEFAULT_GATES.for_format("", level)
        result.judged = tuple(k for k in want if k not in task_reads)
        result.task = task_agreement(outputs, got, want, t.score_margin, t.match_iou)
        result.gate = {"level": level, **asdict(t)}
        result.task_failures = task_failures(result.task, t, level)
        det = result.task.get("detection")
        if det is not None and not det["source_detections"]:
            # Passing vacuously is all it can do: say so rather than let "F1 1.0" look like a check.
            log.warning("detection parity says nothing: the source model detected nothing above score %g on the %d "
                        "reference frames; pass --samples with frames that show the objects",
                        det["score_threshold"], det["frames"])
    if not (np.isfinite(result.max_abs) and result.judged_max_abs <= tolerance):
        # with one judged output, no permutation but the identity: never a swap
        judged = result.judged if result.judged is not None else tuple(want)
        result.swapped = _find_swap(got, {k: want[k] for k in judged}, tolerance)
    return result


def _decoded(got: dict[str, np.ndarray], want: dict[str, np.ndarray],
             outputs: Sequence[OutputSpec]) -> dict[str, dict[str, float]]:
    decoders = OutputDecoders(outputs)
    g, w = decoders.batch(got), decoders.batch(want)
    out: dict[str, dict[str, float]] = {}
    for name, meaning, dec in decoders.items:
        d: dict[str, float] = {"max_abs": float(np.max(np.abs(g[meaning] - w[meaning])))}
        if isinstance(dec, BinsDecoder):
            n = want[name].shape[0]
            flips = [dec.index(got[name][i]) != dec.index(want[name][i]) for i in range(n)]
            d["bin_flip_rate"] = float(np.mean(flips))  # n >= 1: compare refused an empty batch already
        out[meaning] = d
    return out


def _find_swap(got: dict[str, np.ndarray], want: dict[str, np.ndarray], tol: float) -> dict[str, str] | None:
    names = list(want)
    for perm in permutations(names):
        if list(perm) == names:
            continue
        pairs = list(zip(names, perm, strict=True))
        errs = [np.abs(got[b].ravel() - want[s].ravel()).max() for b, s in pairs if got[b].size == want[s].size]
        if len(errs) == len(names) and np.max(errs) <= tol:  # np.max: a NaN never counts as a match
            return {b: s for b, s in pairs if b != s}
    return None
