"""``yolo``: a YOLO-style detection head before NMS, one tensor: (1, 4 + K, N) (``layout`` ``CN``,
Ultralytics YOLOv8/11's ``output0``, e.g. (1, 84, 8400) for COCO) or (1, N, 4 + K) (``NC``); with
``objectness`` (YOLOv5) a fifth value per candidate multiplies the class scores. Boxes are centre x,
y, width, height in input pixels (``input_size``). NMS by :func:`runtime.perception.nms.nms`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from runtime.perception.base import (
    Detection,
    DetectionDecoder,
    PerceptionError,
    input_size_of,
    thresholds,
    to_xyxy,
)
from runtime.perception.nms import nms

LAYOUTS = ("CN", "NC")


class YoloDecoder(DetectionDecoder):
    """A (1, 4 + K, N) or (1, N, 4 + K) head -> detections after class-aware NMS."""

    kind = "yolo"
    KEYS = frozenset({"layout", "objectness", "input_size", "classes", "score_threshold", "iou_threshold"})
    FLAG_KEYS: ClassVar[dict[str, str]] = {"layout": "upper", "objectness": "bool", "classes": "list", "score_threshold": "float",
                 "iou_threshold": "float"}

    def __init__(self, output: str, classes: Sequence[str], input_size: tuple[int, int], layout: str = "CN",
                 objectness: bool = False, score_threshold: float = 0.5, iou_threshold: float = 0.45) -> None:
        super().__init__(output, classes, score_threshold, iou_threshold, input_size)
        self.layout, self.objectness = layout, bool(objectness)

    def __call__(self, raw: Mapping[str, np.ndarray]) -> list[Detection]:
        """Detections after NMS, highest score first, boxes normalised and clipped to the image."""
        y = np.asarray(raw[self.output], np.float64)[0]
        rows = y.T if self.layout == "CN" else y  # (N, 4 + [1] + K)
        cls_scores = rows[:, 5:] * rows[:, 4:5] if self.objectness else rows[:, 4:]
        ids = np.argmax(cls_scores, axis=1)
        scores = cls_scores[np.arange(rows.shape[0]), ids]
        assert self.input_size is not None
        w, h = self.input_size
        xyxy = to_xyxy(rows[:, :4], "cxcywh") / np.array([w, h, w, h], np.float64)
        ok = np.isfinite(scores) & np.isfinite(xyxy).all(axis=1)
        scores = np.where(ok, scores, -np.inf)
        keep = nms(np.nan_to_num(xyxy), scores, ids, self.score_threshold, self.iou_threshold)
        xyxy = np.clip(xyxy, 0.0, 1.0)
        return [Detection.from_xyxy(xyxy[i], scores[i], ids[i], self.label(int(ids[i])))
                for i in keep if xyxy[i, 2] > xyxy[i, 0] and xyxy[i, 3] > xyxy[i, 1]]

    def to_dict(self) -> dict[str, Any]:
        """kind, layout, objectness, input_size, classes, thresholds."""
        return {"kind": self.kind, "layout": self.layout, "objectness": self.objectness, **self._common()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> YoloDecoder:
        """Needs a rank-3 head whose value axis holds 4 (+1) + len(classes) values, and ``input_size``."""
        cls._check_keys(d, output)
        if len(shape) != 3 or abs(shape[0]) != 1:
            raise PerceptionError(f"output {output!r}: a YOLO head is (1, 4 + K, N) or (1, N, 4 + K), "
                                  f"not shape {list(shape)}")
        layout = str(d.get("layout", "CN")).upper()
        if layout not in LAYOUTS:
            raise PerceptionError(f"output {output!r}: yolo layout {layout!r} is not one of {', '.join(LAYOUTS)}")
        objectness = bool(d.get("objectness", False))
        values = int(shape[1] if layout == "CN" else shape[2])
        classes = [str(c) for c in d.get("classes") or []]
        k = values - 4 - int(objectness)
        if k < 1 or len(classes) != k:
            raise PerceptionError(
                f"output {output!r}: the head has {values} values per candidate ({layout}, shape {list(shape)}), "
                f"i.e. {k} classes{' after objectness' if objectness else ''}, but classes is {classes}; pass "
                f"--classes with {max(k, 1)} names"
            )
        size = input_size_of(d)
        if size is None:
            raise PerceptionError(f"output {output!r}: decoder yolo needs input_size [width, height] (its boxes are "
                                  "in input pixels)")
        score_t, iou_t = thresholds(d)
        return cls(output, classes, size, layout, objectness, score_t, iou_t)
