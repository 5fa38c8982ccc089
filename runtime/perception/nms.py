"""Non-maximum suppression for heads that leave it to the runtime: OpenCV's ``cv2.dnn.NMSBoxesBatched``
(per class), a maintained implementation that the car's OpenCV has, never a hand-written one."""

from __future__ import annotations

import numpy as np


def nms(boxes_xyxy: np.ndarray, scores: np.ndarray, class_ids: np.ndarray, score_threshold: float,
        iou_threshold: float) -> np.ndarray:
    """Indices of the boxes kept, highest score first: per class, those above ``score_threshold`` that
    overlap a higher-scoring box of their class by at most ``iou_threshold``. ``boxes_xyxy`` (N, 4)
    in any consistent unit; ``scores`` (N,); ``class_ids`` (N,) int."""
    import cv2

    keep = np.flatnonzero(scores >= score_threshold)
    if keep.size == 0:
        return keep
    b = boxes_xyxy[keep].astype(np.float64)
    xywh = np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
    idx = cv2.dnn.NMSBoxesBatched(xywh.tolist(), scores[keep].astype(float).tolist(),
                                  class_ids[keep].astype(int).tolist(), float(score_threshold),
                                  float(iou_threshold))
    kept = keep[np.asarray(idx, np.int64).reshape(-1)]
    return kept[np.argsort(-scores[kept], kind="stable")]
