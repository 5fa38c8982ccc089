"""How closely two segmentation results agree: a build's class maps against the source model's.

The source model's map serves as ground truth (as the seed team's ``pixel_acc_segmentation`` and
``miou_segmentation`` are computed against labels), so an exact copy scores 1.0 everywhere.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def confusion(got: np.ndarray, want: np.ndarray, classes: int) -> np.ndarray:
    """(K, K) int64 pixel counts, row = the source's class (``want``), column = the build's (``got``),
    summed over every frame. ``got``/``want``: (N, H, W) or (H, W) int class ids in [0, K); ids
    outside that range are not counted (a NaN pixel's argmax can be anything)."""
    g, w = np.asarray(got, np.int64).reshape(-1), np.asarray(want, np.int64).reshape(-1)
    if g.shape != w.shape:
        raise ValueError(f"label maps differ in size: {np.shape(got)} vs {np.shape(want)}")
    ok = (g >= 0) & (g < classes) & (w >= 0) & (w < classes)
    return np.bincount(w[ok] * classes + g[ok], minlength=classes * classes).reshape(classes, classes)


def iou_per_class(cm: np.ndarray) -> np.ndarray:
    """(K,) float64 intersection over union per class from a :func:`confusion` matrix; NaN for a
    class that neither map has anywhere (it is then left out of the mean)."""
    inter = np.diag(cm).astype(np.float64)
    union = cm.sum(axis=0) + cm.sum(axis=1) - np.diag(cm)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


def mask_iou(got: np.ndarray, want: np.ndarray) -> float:
    """IoU of two boolean masks of the same shape; 1.0 when both are empty (they agree)."""
    g, w = np.asarray(got, bool), np.asarray(want, bool)
    union = int(np.count_nonzero(g | w))
    return float(np.count_nonzero(g & w)) / union if union else 1.0


def segmentation_agreement(got_labels: np.ndarray, want_labels: np.ndarray, got_drivable: np.ndarray,
                           want_drivable: np.ndarray, classes: Sequence[str]) -> dict[str, Any]:
    """Agreement of the build's maps with the source's on N frames, as JSON-able figures:

    - ``pixel_acc_segmentation``: share of pixels whose class is the source's (all frames together);
    - ``miou_segmentation``: mean over classes present in either map of the per-class IoU
      (dataset-level: intersections and unions summed over every frame first);
    - ``iou_per_class``: {class name: IoU} for the classes present;
    - ``drivable_iou``: IoU of the drivable masks (what the lane follower steers by), all frames;
      ``drivable_iou_min_frame``: the worst single frame's;
    - ``frames``, ``pixels``: what was compared.

    ``*_labels``: (N, H, W) int class ids; ``*_drivable``: (N, H, W) bool. Raises ``ValueError``
    when the maps differ in shape.
    """
    g, w = np.asarray(got_labels), np.asarray(want_labels)
    if g.shape != w.shape or np.shape(got_drivable) != np.shape(want_drivable) or g.shape != np.shape(want_drivable):
        raise ValueError(f"maps differ in shape: labels {g.shape} vs {w.shape}, drivable "
                         f"{np.shape(got_drivable)} vs {np.shape(want_drivable)}")
    k = len(classes)
    iou = iou_per_class(confusion(g, w, k))
    present = ~np.isnan(iou)
    frames = int(g.shape[0]) if g.ndim == 3 else 1
    per_frame = (frames, int(g[0].size)) if frames and g.ndim == 3 else (frames, int(g.size))
    gd, wd = np.asarray(got_drivable, bool).reshape(per_frame), np.asarray(want_drivable, bool).reshape(per_frame)
    return {
        "frames": frames,
        "pixels": int(g.size),
        "pixel_acc_segmentation": float(np.mean(g == w)) if g.size else 1.0,
        "miou_segmentation": float(np.mean(iou[present])) if present.any() else 1.0,
        "iou_per_class": {str(classes[i]): float(iou[i]) for i in range(k) if present[i]},
        "drivable_iou": mask_iou(gd, wd),
        "drivable_iou_min_frame": min((mask_iou(gd[i], wd[i]) for i in range(frames)), default=1.0),
    }
