"""How closely a build's perception results agree with the source model's, by what the task means.

Converter parity, the INT8 cost and the benchmarks all measure a perception build this way (the
car can too: it needs only numpy, OpenCV and the bundle): both sets of raw outputs are decoded
frame by frame with the bundle's own decoder (:mod:`runtime.perception`), then

- ``segmentation``: per-class IoU, mIoU, pixel agreement and drivable-mask IoU
  (:mod:`runtime.agreement.segmentation`);
- ``detection``: detections matched by IoU per class, matched IoU, score error, missed and extra
  detections, precision / recall / F1 at IoU 0.5 (:mod:`runtime.agreement.detection`).

The source's outputs serve as ground truth throughout.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from runtime.agreement.detection import MATCH_IOU, SCORE_MARGIN, detection_agreement, match
from runtime.agreement.segmentation import confusion, iou_per_class, mask_iou, segmentation_agreement
from runtime.manifest.outputs import PERCEPTION_MEANINGS, OutputSpec
from runtime.perception import DetectionDecoder, SegmentationDecoder, perception_decoder_for

__all__ = [
    "MATCH_IOU", "SCORE_MARGIN", "confusion", "detection_agreement", "frame_outputs", "iou_per_class", "mask_iou",
    "match", "perception_reads", "segmentation_agreement", "task_agreement",
]


def perception_reads(outputs: Sequence[OutputSpec]) -> set[str]:
    """Names of the outputs a perception decoder reads (the map; boxes, scores, labels; a head):
    judged by what they mean, not by their raw values."""
    names: set[str] = set()
    for o in outputs:
        if o.meaning in PERCEPTION_MEANINGS:
            names.update(perception_decoder_for(o.meaning, o.decode, o.shape, o.name).reads)
    return names


def frame_outputs(raw: Mapping[str, np.ndarray], i: int, shapes: Mapping[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Frame ``i`` of (N, ...) outputs (flattened per frame, as :func:`converter.parity.run_build`
    returns them, or in any shape) reshaped to each output's batch-1 manifest shape (at most one
    unknown dimension is inferred; with more, a (1, values) row, which box decoders accept)."""
    out: dict[str, np.ndarray] = {}
    for name, shape in shapes.items():
        row = np.asarray(raw[name][i])
        dims = [int(d) if int(d) > 0 else -1 for d in shape[1:]]
        out[name] = row.reshape(1, *dims) if dims.count(-1) <= 1 else row.reshape(1, -1)
    return out


def task_agreement(outputs: Sequence[OutputSpec], got: Mapping[str, np.ndarray], want: Mapping[str, np.ndarray],
                   margin: float = SCORE_MARGIN, match_iou: float = MATCH_IOU) -> dict[str, dict[str, Any]]:
    """{meaning: figures} for each perception output of ``outputs`` (the manifest's), ``got`` (the
    build's) vs ``want`` (the source's) raw outputs, {name: (N, ...)}, frame i of each together.

    Empty for a driving bundle. ``margin`` and ``match_iou``: see :mod:`runtime.agreement.detection`.
    Raises ``KeyError`` when an output a decoder reads is missing, ``ValueError`` when frame
    counts differ.
    """
    shapes = {o.name: tuple(o.shape) for o in outputs}
    figures: dict[str, dict[str, Any]] = {}
    for o in outputs:
        if o.meaning not in PERCEPTION_MEANINGS:
            continue
        dec = perception_decoder_for(o.meaning, o.decode, o.shape, o.name)
        reads = {n: shapes[n] for n in dec.reads}
        n = len(want[dec.output])
        if len(got[dec.output]) != n:
            raise ValueError(f"{dec.output}: {len(got[dec.output])} build frames but {n} source frames")
        g = [dec(frame_outputs(got, i, reads)) for i in range(n)]
        w = [dec(frame_outputs(want, i, reads)) for i in range(n)]
        if isinstance(dec, SegmentationDecoder):
            figures[o.meaning] = segmentation_agreement(
                np.stack([r.labels for r in g]) if n else np.zeros((0, 0, 0), np.int64),
                np.stack([r.labels for r in w]) if n else np.zeros((0, 0, 0), np.int64),
                np.stack([r.drivable for r in g]) if n else np.zeros((0, 0, 0), bool),
                np.stack([r.drivable for r in w]) if n else np.zeros((0, 0, 0), bool),
                dec.classes)
        elif isinstance(dec, DetectionDecoder):
            figures[o.meaning] = {**detection_agreement(g, w, dec.score_threshold, margin, match_iou),
                                  "score_threshold": dec.score_threshold, "margin": margin, "match_iou": match_iou}
    return figures
