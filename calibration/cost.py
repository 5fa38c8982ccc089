"""What an INT8 build costs against FP32 on held-out frames, and the limits it must stay within.

The cost record goes into the bundle manifest (``build.extra["int8_cost"]``) and, flattened, into
the MLflow run as metrics ``<format>.int8.<key>``, e.g. ``onnx-int8.int8.per_output.steering.mean_abs``.

Perception outputs are costed by what the task means (:func:`runtime.agreement.task_agreement`,
FP32 as ground truth): ``task.segmentation`` (mIoU, drivable IoU, pixel agreement) and
``task.detection`` (F1 at IoU 0.5, missed per frame...), e.g. metric
``onnx-int8.int8.task.segmentation.miou_segmentation``. Their raw errors are recorded, not judged
(an INT8 logit map is off by more than 0.25 where no pixel changes class).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from runtime.agreement import perception_reads, task_agreement
from runtime.manifest import OutputSpec

STEERING_DIFF = 0.05  # a steering difference the car would show (~1.3 degrees of wheel at full lock 25 deg)


class LimitsError(ValueError, TypeError):
    """Bad [int8] limits. Also a TypeError: the converter reports TypeErrors from Int8Limits(**config)
    as config errors (exit 2)."""


@dataclass(frozen=True)
class Int8Limits:
    """What an INT8 build may cost, on the calibration set's held-out frames. The converter's
    TOML config sets these in its ``[int8]`` section; unknown keys are errors."""

    max_steering_mae: float = 0.02  # mean |INT8 - FP32| on steering outputs
    max_steering_share_over: float = 0.05  # share of frames whose steering differs by > 0.05
    max_mae: float = 0.03  # mean |INT8 - FP32| on any output (throttle...)
    max_abs: float = 0.25  # worst single-frame |INT8 - FP32| on any output
    min_frames: float = 20  # fewer held-out frames than this and the figures say nothing
    # perception outputs, INT8 vs FP32 as ground truth ("drop" = 1 - agreement)
    max_miou_drop: float = 0.1  # segmentation: 1 - mIoU
    max_drivable_iou_drop: float = 0.05  # segmentation: 1 - IoU of the drivable masks (the lane follower's)
    max_f1_drop: float = 0.1  # detection: 1 - F1 at IoU 0.5
    max_missed_per_frame: float = 0.1  # detection: FP32 detections INT8 loses, per frame (beyond the margin)

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
                raise LimitsError(f"[int8] {f.name} must be a finite number >= 0, got {v!r}")
        for name in ("max_steering_share_over", "max_miou_drop", "max_drivable_iou_drop", "max_f1_drop"):
            if getattr(self, name) > 1:
                raise LimitsError(f"[int8] {name} is a share in [0, 1], got {getattr(self, name)}")


def int8_cost(got: dict[str, np.ndarray], want: dict[str, np.ndarray], meanings: dict[str, str],
              outputs: Sequence[OutputSpec] = ()) -> dict[str, Any]:
    """Per output (by name) mean and max abs error of ``got`` (INT8) vs ``want`` (FP32); for steering
    outputs also the share of frames differing by more than :data:`STEERING_DIFF`. JSON-able.

    With ``outputs`` (the manifest's) holding perception outputs, also ``task`` ({meaning: figures}
    of :func:`runtime.agreement.task_agreement`) and ``task_outputs`` (the outputs judged by them)."""
    per: dict[str, dict[str, float]] = {}
    frames = 0
    shares = []
    for name, ref in want.items():
        if name not in got:
            raise ValueError(f"INT8 outputs lack {name!r} (have {sorted(got)})")
        ref2 = np.asarray(ref, np.float64).reshape(len(ref), -1)
        err = np.abs(np.asarray(got[name], np.float64).reshape(ref2.shape) - ref2)
        frames = ref2.shape[0]
        entry = {"mean_abs": _num(err.mean()) if err.size else 0.0, "max_abs": _num(err.max()) if err.size else 0.0}
        if meanings.get(name) == "steering":
            # A frame "differs" when any of its steering values does (one value per frame in practice).
            over = err.max(axis=1) > STEERING_DIFF if err.size else np.zeros(0, bool)
            entry["share_over"] = _num(over.mean()) if over.size else 0.0
            shares.append(entry["share_over"])
        per[name] = entry
    cost: dict[str, Any] = {"frames": int(frames), "steering_threshold": STEERING_DIFF, "per_output": per}
    if shares:
        cost["steering_share_over"] = max(shares)
    reads = perception_reads(outputs)
    if reads:
        cost["task"] = task_agreement(outputs, got, want)
        cost["task_outputs"] = sorted(reads)
    return cost


def over_limits(cost: dict[str, Any], limits: Int8Limits | None) -> str | None:
    """A one-line reason, with the figures, when the cost is over a limit; None when within."""
    lim = limits or Int8Limits()
    frames = int(cost.get("frames", 0))
    if frames < lim.min_frames:
        return (f"INT8 cost measured on only {frames} held-out frames (need >= {lim.min_frames:g}); "
                "make a larger calibration set or a larger --heldout")
    problems = []
    meanings = _steering_names(cost)
    by_task = set(cost.get("task_outputs") or ())
    for name, e in cost.get("per_output", {}).items():
        if name in by_task:
            continue  # judged below, by what it means
        mae, worst = float(e["mean_abs"]), float(e["max_abs"])
        if name in meanings and not mae <= lim.max_steering_mae:
            problems.append(f"{name} mean abs error {mae:.4g} > {lim.max_steering_mae:g}")
        elif not mae <= lim.max_mae:
            problems.append(f"{name} mean abs error {mae:.4g} > {lim.max_mae:g}")
        if not worst <= lim.max_abs:
            problems.append(f"{name} max abs error {worst:.4g} > {lim.max_abs:g}")
        share = e.get("share_over")
        if share is not None and not float(share) <= lim.max_steering_share_over:
            problems.append(f"{name} differs by > {cost.get('steering_threshold', STEERING_DIFF):g} on "
                            f"{float(share):.1%} of frames > {lim.max_steering_share_over:.1%}")
    problems += _task_problems(cost.get("task") or {}, lim)
    if not problems:
        return None
    return f"INT8 costs too much vs FP32 on {frames} held-out frames: " + "; ".join(problems)


def _task_problems(task: dict[str, Any], lim: Int8Limits) -> list[str]:
    """Perception figures over their [int8] limits, one phrase each (a NaN figure is over)."""
    out = []
    seg, det = task.get("segmentation"), task.get("detection")
    if seg:
        for key, what, limit in (("miou_segmentation", "mIoU", "max_miou_drop"),
                                 ("drivable_iou", "drivable IoU", "max_drivable_iou_drop")):
            drop, cap = 1.0 - float(seg[key]), float(getattr(lim, limit))
            if not drop <= cap:
                out.append(f"segmentation {what} {float(seg[key]):.4g} (drop {drop:.4g} > {limit} {cap:g})")
    if det:
        drop = 1.0 - float(det["f1_50_detection"])
        if not drop <= lim.max_f1_drop:
            out.append(f"detection F1@0.5 {float(det['f1_50_detection']):.4g} (drop {drop:.4g} > max_f1_drop "
                       f"{lim.max_f1_drop:g})")
        missed = float(det["missed_per_frame"])
        if not missed <= lim.max_missed_per_frame:
            out.append(f"detection missed {missed:.3g} per frame ({int(det['missed'])} of "
                       f"{int(det['source_detections'])}) > max_missed_per_frame {lim.max_missed_per_frame:g}")
    return out


def _steering_names(cost: dict[str, Any]) -> set[str]:
    return {n for n, e in cost.get("per_output", {}).items() if "share_over" in e}


def _num(x: Any) -> float:
    v = float(x)
    return v if math.isfinite(v) else float("inf")
