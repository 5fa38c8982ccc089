"""``boxes``: detections as separate tensors: boxes (1, N, 4) or (N, 4), scores (1, N) or (N,), and
optionally class ids (1, N) or (N,), as torchvision's detectors return them (``boxes``, ``scores``,
``labels``) and as exported NMS graphs do.

``box_format`` is ``xyxy`` (torchvision), ``xywh`` or ``cxcywh``; boxes are in input pixels unless
``normalized`` (then 0..1). ``nms``: ``graph`` when the model already suppressed overlaps (torchvision,
an exported NMS), ``runtime`` to have :func:`runtime.perception.nms.nms` do it. Class id ``i`` is
named ``classes[i]`` (torchvision's COCO ids start at 1 with 0 the background: list it).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np

from runtime.perception.base import (
    BOX_FORMATS,
    Detection,
    DetectionDecoder,
    PerceptionError,
    input_size_of,
    thresholds,
    to_xyxy,
)
from runtime.perception.nms import nms

NMS_MODES = ("graph", "runtime")


class BoxesDecoder(DetectionDecoder):
    """Boxes + scores (+ labels) tensors -> detections (see the module)."""

    kind = "boxes"
    KEYS = frozenset({"scores", "labels", "box_format", "normalized", "input_size", "classes",
                      "score_threshold", "iou_threshold", "nms"})
    FLAG_KEYS: ClassVar[dict[str, str]] = {"scores": "str", "labels": "str", "box_format": "str", "normalized": "bool", "nms": "str",
                 "classes": "list", "score_threshold": "float", "iou_threshold": "float"}

    def __init__(self, output: str, scores: str, labels: str | None, classes: Sequence[str],
                 box_format: str = "xyxy", normalized: bool = False, input_size: tuple[int, int] | None = None,
                 score_threshold: float = 0.5, iou_threshold: float = 0.45, nms_mode: str = "graph") -> None:
        super().__init__(output, classes, score_threshold, iou_threshold, input_size)
        if box_format not in BOX_FORMATS:
            raise PerceptionError(f"output {output!r}: box_format {box_format!r} is not one of {', '.join(BOX_FORMATS)}")
        if nms_mode not in NMS_MODES:
            raise PerceptionError(f"output {output!r}: nms {nms_mode!r} is not one of {', '.join(NMS_MODES)}")
        if not normalized and input_size is None:
            raise PerceptionError(f"output {output!r}: boxes in pixels need input_size [width, height] "
                                  "(or normalized: true)")
        self.scores, self.labels = scores, labels
        self.box_format, self.normalized, self.nms_mode = box_format, bool(normalized), nms_mode

    @property
    def reads(self) -> tuple[str, ...]:
        """boxes, scores and (when given) labels."""
        return (self.output, self.scores, *((self.labels,) if self.labels else ()))

    def __call__(self, raw: Mapping[str, np.ndarray]) -> list[Detection]:
        """Detections above the score threshold (after NMS when ``nms`` is ``runtime``), highest first;
        boxes clipped to the image; NaN scores or boxes are dropped (never a detection of nothing)."""
        boxes = np.asarray(raw[self.output], np.float64).reshape(-1, 4)
        scores = np.asarray(raw[self.scores], np.float64).reshape(-1)
        ids = (np.asarray(raw[self.labels]).reshape(-1).astype(np.int64) if self.labels
               else np.zeros(scores.shape[0], np.int64))
        if boxes.shape[0] != scores.shape[0] or ids.shape[0] != scores.shape[0]:
            raise ValueError(f"{self.output}: {boxes.shape[0]} boxes but {scores.shape[0]} scores / {ids.shape[0]} labels")
        xyxy = to_xyxy(boxes, self.box_format)
        if not self.normalized:
            assert self.input_size is not None
            w, h = self.input_size
            xyxy = xyxy / np.array([w, h, w, h], np.float64)
        ok = np.isfinite(scores) & np.isfinite(xyxy).all(axis=1)
        xyxy, scores, ids = xyxy[ok], scores[ok], ids[ok]
        if self.nms_mode == "runtime":
            keep = nms(xyxy, scores, ids, self.score_threshold, self.iou_threshold)
        else:
            keep = np.flatnonzero(scores >= self.score_threshold)
            keep = keep[np.argsort(-scores[keep], kind="stable")]
        xyxy = np.clip(xyxy, 0.0, 1.0)
        return [Detection.from_xyxy(xyxy[i], scores[i], ids[i], self.label(int(ids[i])))
                for i in keep if xyxy[i, 2] > xyxy[i, 0] and xyxy[i, 3] > xyxy[i, 1]]

    def to_dict(self) -> dict[str, Any]:
        """kind, scores, labels, box_format, normalized, input_size, classes, thresholds, nms."""
        return {"kind": self.kind, "scores": self.scores, "labels": self.labels, "box_format": self.box_format,
                "normalized": self.normalized, **self._common(), "nms": self.nms_mode}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> BoxesDecoder:
        """Needs boxes shaped (1, N, 4) or (N, 4), a ``scores`` output name and ``classes``."""
        cls._check_keys(d, output)
        if not (len(shape) in (2, 3) and abs(shape[-1]) == 4 and (len(shape) == 2 or abs(shape[0]) == 1)):
            raise PerceptionError(f"output {output!r}: boxes are (1, N, 4) or (N, 4), not shape {list(shape)}")
        if not d.get("scores"):
            raise PerceptionError(f"output {output!r}: decoder boxes needs the name of its scores output")
        classes = [str(c) for c in d.get("classes") or []]
        if not classes:
            raise PerceptionError(f"output {output!r}: decoder boxes needs classes (the name of each class id); "
                                  "pass --classes or tag the version with edge.classes")
        score_t, iou_t = thresholds(d)
        return cls(output, str(d["scores"]), str(d["labels"]) if d.get("labels") else None, classes,
                   str(d.get("box_format", "xyxy")), bool(d.get("normalized", False)), input_size_of(d),
                   score_t, iou_t, str(d.get("nms", "graph")))
