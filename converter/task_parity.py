"""Perception builds judged by what the task means: the gates (per precision, or per format) and
the verdict on the figures :func:`runtime.agreement.task_agreement` measures.

A segmentation build passes when its class maps agree with the source's (pixel agreement, mIoU,
drivable-mask IoU); a detection build when its detections do (F1 at IoU 0.5 with the source as
ground truth, mean IoU of the matched boxes, score error of the matches). Raw max/mean abs errors
of perception outputs are recorded, never judged: a logit map's FP16 error says little, and a
padded detection list compared slot by slot says less.

Config (the converter's TOML; keys of :class:`TaskThresholds`, each section optional)::

    [parity]             # score_margin, match_iou
    [parity.fp16]        # a precision's gates: fp32, fp16, int8
    min_pixel_agreement = 0.99
    [parity.onnx-int8]   # one format's, over its precision's
    min_f1 = 0.85
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

from runtime.agreement import MATCH_IOU, SCORE_MARGIN
from runtime.formats import BY_ID

PRECISIONS = ("fp32", "fp16", "int8")


class GateConfigError(ValueError, TypeError):
    """A bad ``[parity]`` section (unknown key or level, or a value out of range): one line. Also a
    TypeError, like :class:`calibration.cost.LimitsError`, so config callers report it as exit 2."""


@dataclass(frozen=True)
class TaskThresholds:
    """What a perception build must reach against the source model on the reference frames.

    Segmentation: ``min_pixel_agreement`` (share of pixels of the source's class),
    ``min_miou`` (mean IoU over classes), ``min_drivable_iou`` (IoU of the drivable masks).
    Detection: ``min_f1`` (F1 at IoU ``match_iou``, the source as ground truth; 1.0 means every
    detection matched, none missed, none extra, outside the ``score_margin`` band above the score
    threshold, see :mod:`runtime.agreement.detection`), ``min_mean_iou`` (of the matched boxes),
    ``max_score_error`` (worst |build - source score| of a match). All shares in [0, 1].
    """

    min_pixel_agreement: float = 0.999
    min_miou: float = 0.995
    min_drivable_iou: float = 0.995
    min_f1: float = 1.0
    min_mean_iou: float = 0.99
    max_score_error: float = 0.01
    score_margin: float = SCORE_MARGIN
    match_iou: float = MATCH_IOU

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not 0 <= v <= 1:
                raise GateConfigError(f"[parity] {f.name} must be a number in [0, 1], got {v!r}")
        if self.match_iou <= 0:
            raise GateConfigError(f"[parity] match_iou must be > 0, got {self.match_iou}")


_DEFAULTS: dict[str, TaskThresholds] = {
    "fp32": TaskThresholds(),
    "fp16": TaskThresholds(min_pixel_agreement=0.99, min_miou=0.97, min_drivable_iou=0.98, min_f1=0.95,
                           min_mean_iou=0.95, max_score_error=0.05),
    "int8": TaskThresholds(min_pixel_agreement=0.95, min_miou=0.9, min_drivable_iou=0.9, min_f1=0.9,
                           min_mean_iou=0.85, max_score_error=0.15),
}


@dataclass(frozen=True)
class TaskGates:
    """Gates per precision (``fp32``, ``fp16``, ``int8``) and per format id, from ``[parity]``."""

    levels: Mapping[str, TaskThresholds] = field(default_factory=lambda: dict(_DEFAULTS))

    def for_format(self, fmt: str, precision: str | None = None) -> TaskThresholds:
        """The thresholds of format ``fmt``: its own entry, else its precision's."""
        return self.levels.get(self.level_of(fmt, precision)) or _DEFAULTS["fp32"]

    def level_of(self, fmt: str, precision: str | None = None) -> str:
        """Which entry judges ``fmt``: the format id when it has its own, else its precision."""
        if fmt in self.levels:
            return fmt
        prec = precision or (BY_ID[fmt].precision if fmt in BY_ID else "fp32")
        return prec if prec in self.levels else "fp32"

    @classmethod
    def from_config(cls, section: Mapping[str, Any] | None) -> TaskGates:
        """From the TOML ``[parity]`` table: top-level keys apply to every level, sub-tables
        ``fp32``/``fp16``/``int8`` or a format id override them. :class:`GateConfigError` names an
        unknown key or level, or a value out of range."""
        section = dict(section or {})
        keys = {f.name for f in fields(TaskThresholds)}
        common = {k: v for k, v in section.items() if not isinstance(v, Mapping)}
        subs = {k: dict(v) for k, v in section.items() if isinstance(v, Mapping)}
        for where, d in (("[parity]", common), *((f"[parity.{k}]", v) for k, v in subs.items())):
            unknown = sorted(set(d) - keys)
            if unknown:
                raise GateConfigError(f"config {where}: unknown key(s) {unknown}; allowed: {', '.join(sorted(keys))}")
        bad = sorted(k for k in subs if k not in PRECISIONS and k not in BY_ID)
        if bad:
            raise GateConfigError(f"config [parity]: unknown level(s) {bad}; use a precision ({', '.join(PRECISIONS)}) "
                                  f"or a format id ({', '.join(BY_ID)})")
        levels = {p: replace(t, **common) for p, t in _DEFAULTS.items()}
        for k, v in subs.items():
            base = levels[k] if k in PRECISIONS else levels[BY_ID[k].precision]
            levels[k] = replace(base, **v)
        return cls(levels)


DEFAULT_GATES = TaskGates()

# (meaning, figure, threshold field, at least?) in the order failures are reported
_CHECKS: tuple[tuple[str, str, str, bool], ...] = (
    ("segmentation", "pixel_acc_segmentation", "min_pixel_agreement", True),
    ("segmentation", "miou_segmentation", "min_miou", True),
    ("segmentation", "drivable_iou", "min_drivable_iou", True),
    ("detection", "f1_50_detection", "min_f1", True),
    ("detection", "mean_iou", "min_mean_iou", True),
    ("detection", "score_max_abs", "max_score_error", False),
)
_NAMES = {"pixel_acc_segmentation": "pixel agreement", "miou_segmentation": "mIoU", "drivable_iou": "drivable IoU",
          "f1_50_detection": "F1@0.5", "mean_iou": "matched box IoU", "score_max_abs": "score error"}


def task_failures(figures: Mapping[str, Mapping[str, Any]], t: TaskThresholds, level: str = "") -> list[str]:
    """One line per figure of ``figures`` ({meaning: figures}) on the wrong side of ``t``, each
    naming the figure, its value and the threshold (``level`` names the gate); [] when all pass.
    A NaN figure fails."""
    out = []
    for meaning, key, limit, at_least in _CHECKS:
        f = figures.get(meaning)
        if f is None or key not in f:
            continue
        v, lim = float(f[key]), float(getattr(t, limit))
        if not (v >= lim if at_least else v <= lim):
            detail = ""
            if meaning == "detection":
                detail = (f" ({int(f.get('matched', 0))} of {int(f.get('source_detections', 0))} matched, "
                          f"{int(f.get('missed', 0))} missed, {int(f.get('extra', 0))} extra)")
            out.append(f"{meaning} {_NAMES[key]} {v:.4g} {'<' if at_least else '>'} {lim:g}"
                       f"{f' ({level} gate)' if level else ''} vs the source on {int(f.get('frames', 0))} frames{detail}")
    return out


def headline(figures: Mapping[str, Mapping[str, Any]]) -> dict[str, float]:
    """The few figures a console row shows: ``miou``, ``pixel_acc``, ``drivable_iou`` for a
    segmentation build; ``f1``, ``box_iou``, ``missed``, ``extra`` for a detection build."""
    out: dict[str, float] = {}
    seg, det = figures.get("segmentation"), figures.get("detection")
    if seg:
        out.update(miou=float(seg["miou_segmentation"]), pixel_acc=float(seg["pixel_acc_segmentation"]),
                   drivable_iou=float(seg["drivable_iou"]))
    if det:
        out.update(f1=float(det["f1_50_detection"]), box_iou=float(det["mean_iou"]), missed=float(det["missed"]),
                   extra=float(det["extra"]))
    return out


SEED_METRICS = ("pixel_acc_segmentation", "miou_segmentation", "precision_50_detection", "recall_50_detection",
                "f1_50_detection")


def task_metrics(fmt: str, task: Mapping[str, Any]) -> dict[str, float]:
    """A build's ``parity["task"]`` as MLflow metrics: the seed team's names as ``<format>.<name>``
    (``onnx-fp16.miou_segmentation``), every other figure as ``<format>.<meaning>.<figure>``
    (``onnx-fp16.detection.missed``), per-class IoU as ``<format>.segmentation.iou.<class>``."""
    out: dict[str, float] = {}
    for meaning in ("segmentation", "detection"):
        for k, v in (task.get(meaning) or {}).items():
            if isinstance(v, Mapping):
                for cls, iou in v.items():
                    out[f"{fmt}.{meaning}.iou.{_metric_safe(str(cls))}"] = float(iou)
            elif isinstance(v, int | float) and not isinstance(v, bool):
                out[f"{fmt}.{k}" if k in SEED_METRICS else f"{fmt}.{meaning}.{k}"] = float(v)
    return out


def _metric_safe(name: str) -> str:
    # MLflow metric names: alphanumerics, underscores, dashes, periods, spaces, slashes.
    return "".join(c if c.isalnum() or c in "_-. /" else "_" for c in name)
