"""How closely two lists of detections agree: a build's against the source model's, frame by frame.

Both lists come from the same decoder (``manifest.perception_decoder("detection")``: the score
threshold applied and, for heads that leave it to the runtime, NMS done), so what is compared is
what the car would act on, never padded slots by position.

**Matching.** Per frame and per class, pairs (build, source) with IoU >= ``match_iou`` (0.5) are
taken greedily, highest IoU first, each detection in at most one pair.

**Near the threshold.** A detection whose score is within ``margin`` above the score threshold
flips in and out of the list with tiny score changes (FP16, INT8): the source at 0.52 and the
build at 0.49 is not a missed object. So an unmatched source detection counts as ``missed`` only
when its score is >= threshold + margin, and an unmatched build detection as ``extra`` only when
its score is >= threshold + margin; the others are reported as ``borderline_missed`` /
``borderline_extra`` and left out of precision and recall. Matched detections always count.

With the source as ground truth: precision = matched / (matched + extra), recall = matched /
(matched + missed), F1 their harmonic mean (each 1.0 when its denominator is 0: nothing to find,
nothing found).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from runtime.perception.base import Detection

MATCH_IOU = 0.5  # the seed's *_50_detection metrics
SCORE_MARGIN = 0.05


def match(got: Sequence[Detection], want: Sequence[Detection], match_iou: float = MATCH_IOU) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matching of one frame's detections: [(index in got, index in want, IoU)],
    highest IoU first, same class only, IoU >= ``match_iou``. IoUs per class as one numpy matrix,
    so a head with thousands of candidates above the threshold stays fast."""
    pairs: list[tuple[float, int, int]] = []
    by_g: dict[int, list[int]] = {}
    by_w: dict[int, list[int]] = {}
    for i, d in enumerate(got):
        by_g.setdefault(d.class_id, []).append(i)
    for j, d in enumerate(want):
        by_w.setdefault(d.class_id, []).append(j)
    for cls in by_g.keys() & by_w.keys():
        gi, wi = np.array(by_g[cls]), np.array(by_w[cls])
        iou = box_iou(_xyxy([got[i] for i in gi]), _xyxy([want[j] for j in wi]))
        r, c = np.nonzero(iou >= match_iou)
        pairs += [(float(iou[a, b]), int(gi[a]), int(wi[b])) for a, b in zip(r, c, strict=True)]
    pairs.sort(key=lambda p: (-p[0], p[1], p[2]))  # ties: the earlier (higher-scoring) detection first
    used_g: set[int] = set()
    used_w: set[int] = set()
    out: list[tuple[int, int, float]] = []
    for iou_v, i, j in pairs:
        if i not in used_g and j not in used_w:
            used_g.add(i)
            used_w.add(j)
            out.append((i, j, iou_v))
    return out


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(A, B) IoU of (A, 4) and (B, 4) xyxy boxes (0 where they do not overlap or a box is empty)."""
    w = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    h = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = w * h
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _xyxy(dets: Sequence[Detection]) -> np.ndarray:
    return np.array([[d.x1, d.y1, d.x2, d.y2] for d in dets], np.float64).reshape(-1, 4)


def detection_agreement(got: Sequence[Sequence[Detection]], want: Sequence[Sequence[Detection]],
                        score_threshold: float, margin: float = SCORE_MARGIN,
                        match_iou: float = MATCH_IOU) -> dict[str, float]:
    """Agreement of the build's detections (``got``, one list per frame) with the source's
    (``want``) over N frames, as JSON-able figures (see the module for the rules):

    ``frames``; ``source_detections``, ``build_detections`` (totals); ``matched``; ``matched_share``
    (matched / source detections); ``mean_iou`` (mean IoU of the matches; 1.0 with none to make),
    ``min_iou``; ``score_max_abs``/``score_mean_abs`` (|build - source score| over matches);
    ``missed``, ``extra``, ``borderline_missed``, ``borderline_extra`` (counts), ``missed_per_frame``,
    ``extra_per_frame`` (means) and ``missed_max_frame``, ``extra_max_frame`` (the worst frame's);
    ``precision_50_detection``, ``recall_50_detection``, ``f1_50_detection``.

    Raises ``ValueError`` when the two have different frame counts.
    """
    if len(got) != len(want):
        raise ValueError(f"{len(got)} frames of build detections but {len(want)} of the source's")
    sure = score_threshold + margin
    ious: list[float] = []
    score_err: list[float] = []
    missed, extra, b_missed, b_extra = [], [], 0, 0
    for g, w in zip(got, want, strict=True):
        pairs = match(g, w, match_iou)
        ious += [p[2] for p in pairs]
        score_err += [abs(g[i].score - w[j].score) for i, j, _ in pairs]
        mg, mw = {p[0] for p in pairs}, {p[1] for p in pairs}
        lost = [d for j, d in enumerate(w) if j not in mw]
        new = [d for i, d in enumerate(g) if i not in mg]
        missed.append(sum(d.score >= sure for d in lost))
        extra.append(sum(d.score >= sure for d in new))
        b_missed += len(lost) - missed[-1]
        b_extra += len(new) - extra[-1]
    n = len(want)
    tp, fn, fp = len(ious), int(sum(missed)), int(sum(extra))
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    source_total = sum(len(w) for w in want)
    return {
        "frames": n,
        "source_detections": source_total,
        "build_detections": sum(len(g) for g in got),
        "matched": tp,
        "matched_share": tp / source_total if source_total else 1.0,
        "mean_iou": float(np.mean(ious)) if ious else (1.0 if not fn else 0.0),
        "min_iou": float(np.min(ious)) if ious else (1.0 if not fn else 0.0),
        "score_max_abs": float(np.max(score_err)) if score_err else 0.0,
        "score_mean_abs": float(np.mean(score_err)) if score_err else 0.0,
        "missed": fn,
        "extra": fp,
        "borderline_missed": b_missed,
        "borderline_extra": b_extra,
        "missed_per_frame": fn / n if n else 0.0,
        "extra_per_frame": fp / n if n else 0.0,
        "missed_max_frame": max(missed, default=0),
        "extra_max_frame": max(extra, default=0),
        "precision_50_detection": precision,
        "recall_50_detection": recall,
        "f1_50_detection": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
    }
