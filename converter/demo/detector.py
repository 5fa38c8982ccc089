"""The seed team's cone detector: a CenterNet-style grid detector in plain PyTorch, torchvision's outputs.

:class:`converter.demo.detector_net.ConeDetector` returns, in eval mode, torchvision's detection
output (a list of ``{"boxes", "scores", "labels"}`` dicts, boxes x1, y1, x2, y2 in input pixels),
decoded inside ``forward``; in train mode the raw head (losses: :func:`detector_loss`). Classes
``CONE_CLASSES`` (background, cone).

Input: the 160x120 camera frame as it is (``DETECTOR_PREPROCESS``: RGB, 1/255, ImageNet mean/std),
NCHW. Trained on synthetic road frames with a cone in 60% of them (positions 0.5-1.8 m ahead, in the
lane, on its lines and just off it) so that it finds cones and stays quiet on the empty road.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converter.demo.detector_net import STRIDE
from converter.demo.perception_data import CONE_CLASSES, detection_samples
from converter.demo.segmenter import IMAGENET_MEAN, IMAGENET_STD
from runtime.manifest import PreprocessSpec

log = logging.getLogger(__name__)

DETECTOR_PREPROCESS = PreprocessSpec(
    width=160, height=120, crop_top=0, color="RGB", scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD
)
MODEL_NAME = "centernet_mobile_mini"  # the seed's detection_model_name param
IOU_MATCH = 0.5  # the seed's *_50_detection metrics


@dataclass(frozen=True)
class DetectorConfig:
    """Training settings (the seed's ``common_*`` params). ``quick``: tests, ~20-30 s on 2 cores."""

    samples: int = 1200
    val_samples: int = 200
    epochs: int = 10
    batch_size: int = 16
    lr: float = 6e-3
    weight_decay: float = 1e-4
    width: int = 16
    score_threshold: float = 0.4
    max_detections: int = 10

    @classmethod
    def quick(cls) -> DetectorConfig:
        """A short run that already finds most cones."""
        return cls(samples=480, val_samples=100, epochs=8, width=12)


def build_detector(width: int = 16, score_threshold: float = 0.4, max_detections: int = 10) -> Any:
    """A :class:`~converter.demo.detector_net.ConeDetector` for ``CONE_CLASSES``."""
    from converter.demo.detector_net import ConeDetector

    return ConeDetector(width, len(CONE_CLASSES), max_detections, score_threshold)


def nchw_batch(frames_bgr: np.ndarray, spec: PreprocessSpec = DETECTOR_PREPROCESS) -> np.ndarray:
    """Camera frames (N, H, W, 3) uint8 BGR -> (N, 3, h, w) float32 by the runtime's own preprocessing."""
    from runtime.preprocess import preprocess_batch

    return np.ascontiguousarray(preprocess_batch(frames_bgr, spec, layout="NCHW"))


def head_targets(boxes: np.ndarray, width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training targets for frames with at most one cone, ``boxes`` (N, 4) pixels (NaN: none).

    Returns heat (N, 1, h, w) float32 (a Gaussian of sigma ~ a third of the box in cells, 1 at the
    centre cell), cell (N,) int64 flat index of the centre cell (-1: none), reg (N, 4) float32: log
    width and height in cells, and the centre's offset in its cell in [0, 1).
    """
    gw, gh = width // STRIDE, height // STRIDE
    n = len(boxes)
    heat = np.zeros((n, 1, gh, gw), np.float32)
    cell = np.full(n, -1, np.int64)
    reg = np.zeros((n, 4), np.float32)
    ys, xs = np.mgrid[0:gh, 0:gw]
    for i, b in enumerate(boxes):
        if np.isnan(b[0]):
            continue
        cx, cy = (b[0] + b[2]) / 2 / STRIDE, (b[1] + b[3]) / 2 / STRIDE
        ix, iy = min(int(cx), gw - 1), min(int(cy), gh - 1)
        bw, bh = max(b[2] - b[0], 1.0) / STRIDE, max(b[3] - b[1], 1.0) / STRIDE
        sigma = max(0.5, min(bw, bh) / 3)
        g = np.exp(-((xs - ix) ** 2 + (ys - iy) ** 2) / (2 * sigma**2))
        heat[i, 0] = g
        cell[i] = iy * gw + ix
        reg[i] = (np.log(bw), np.log(bh), np.clip(cx - ix, 0.0, 0.999), np.clip(cy - iy, 0.0, 0.999))
    return heat, cell, reg


def detector_loss(raw: dict[str, Any], heat: Any, cell: Any, reg: Any) -> Any:
    """CenterNet's loss: penalty-reduced focal loss on the heat map (per cone) + L1 on log size +
    binary cross-entropy on the offset, at the centre cell of each cone. Tensors from :func:`head_targets`."""
    import torch
    from torch.nn import functional as F

    logits = raw["heatmap"]
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = (heat >= 1.0).to(p.dtype)
    focal = -(pos * (1 - p) ** 2 * torch.log(p) + (1 - pos) * (1 - heat) ** 4 * p**2 * torch.log(1 - p)).sum()
    n_pos = max(float(pos.sum()), 1.0)
    has = cell >= 0
    if bool(has.any()):
        n, _, gh, gw = logits.shape
        size = raw["size"].reshape(n, 2, gh * gw)[has]  # (m, 2, cells)
        offset = raw["offset"].reshape(n, 2, gh * gw)[has]
        at = cell[has].view(-1, 1, 1).expand(-1, 2, 1)
        size_l1 = F.l1_loss(size.gather(2, at).squeeze(2), reg[has, :2], reduction="sum")
        off_bce = F.binary_cross_entropy_with_logits(offset.gather(2, at).squeeze(2), reg[has, 2:], reduction="sum")
        return (focal + size_l1 + off_bce) / n_pos
    return focal / n_pos


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    inter = max(0.0, float(w)) * max(0.0, float(h))
    union = float((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1])) - inter
    return inter / union if union > 0 else 0.0


def detection_scores(detections: list[np.ndarray], truth: np.ndarray, iou: float = IOU_MATCH) -> dict[str, float]:
    """Precision, recall, F1 at IoU >= ``iou`` and the false-positive rate on empty frames.

    ``detections``: per frame an (n, 4) array of boxes (score order); ``truth`` (N, 4), NaN rows where the
    frame has no cone. Each true box matches at most one detection (the first that overlaps enough);
    every other detection is a false positive. ``fp_rate_empty``: share of cone-free frames with any
    detection. Returns also ``tp``, ``fp``, ``fn``, ``mean_iou`` (of the matches).
    """
    tp = fp = fn = 0
    ious: list[float] = []
    empty = fired = 0
    for dets, gt in zip(detections, truth, strict=True):
        if np.isnan(gt[0]):
            empty += 1
            fired += int(len(dets) > 0)
            fp += len(dets)
            continue
        overlaps = [_iou(d, gt) for d in dets]
        hit = next((j for j, o in enumerate(overlaps) if o >= iou), None)
        if hit is None:
            fn += 1
            fp += len(dets)
        else:
            tp += 1
            fp += len(dets) - 1
            ious.append(overlaps[hit])
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1, "fp_rate_empty": fired / empty if empty else 0.0,
            "tp": float(tp), "fp": float(fp), "fn": float(fn), "mean_iou": float(np.mean(ious)) if ious else 0.0}


def predict_boxes(model: Any, frames_bgr: np.ndarray, chunk: int = 64) -> list[np.ndarray]:
    """Per frame the (n, 4) float32 boxes (pixels) the model reports in eval mode, no gradients."""
    import torch

    model.eval()
    out: list[np.ndarray] = []
    with torch.no_grad():
        for i in range(0, len(frames_bgr), chunk):
            out.extend(d["boxes"].numpy() for d in model(torch.from_numpy(nchw_batch(frames_bgr[i:i + chunk]))))
    return out


@dataclass
class DetectorRun:
    """A trained detector: the model (eval mode), the config, per-epoch history (``train_loss``,
    ``val_loss``, ``precision``, ``recall``, ``f1``, ``fp_rate_empty``) and the final metrics."""

    model: Any
    config: DetectorConfig
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def train_detector(config: DetectorConfig | None = None, seed: int = 0, quick: bool = False) -> DetectorRun:
    """Train on ``config.samples`` synthetic frames (AdamW, :func:`detector_loss`), validate every epoch
    on ``config.val_samples`` held-out frames (another seed). Deterministic for a seed. Final metrics:
    those of :func:`detection_scores` plus ``val_loss`` and ``train_seconds``."""
    import torch

    cfg = config or (DetectorConfig.quick() if quick else DetectorConfig())
    torch.manual_seed(seed)
    w, h = DETECTOR_PREPROCESS.width, DETECTOR_PREPROCESS.height
    frames, boxes = detection_samples(cfg.samples, seed + 20_000, w, h)
    val_frames, val_boxes = detection_samples(cfg.val_samples, seed + 30_000, w, h)
    x_all = torch.from_numpy(nchw_batch(frames))
    x_val = torch.from_numpy(nchw_batch(val_frames))
    targets = [torch.from_numpy(t) for t in head_targets(boxes, w, h)]
    val_targets = [torch.from_numpy(t) for t in head_targets(val_boxes, w, h)]
    model = build_detector(cfg.width, cfg.score_threshold, cfg.max_detections)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-cfg.samples // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.2)
    rng = np.random.default_rng(seed)
    run = DetectorRun(model, cfg)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(cfg.samples))
        total = 0.0
        for i in range(0, cfg.samples, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = detector_loss(model(x_all[idx]), *(t[idx] for t in targets))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            head = model.raw(x_val)
            c = model.classes - 1
            raw = {"heatmap": head[:, :c], "size": head[:, c:c + 2], "offset": head[:, c + 2:c + 4]}
            val_loss = float(detector_loss(raw, *val_targets))
            dets = [d["boxes"].numpy() for d in model.postprocess(head, w, h)]
        scores = detection_scores(dets, val_boxes)
        run.history.append({"train_loss": total / cfg.samples, "val_loss": val_loss, "precision": scores["precision"],
                            "recall": scores["recall"], "f1": scores["f1"], "fp_rate_empty": scores["fp_rate_empty"]})
        log.info("detector epoch %d/%d: train loss %.4f, val loss %.4f, P %.3f R %.3f F1 %.3f, FP on empty %.3f",
                 epoch + 1, cfg.epochs, total / cfg.samples, val_loss, scores["precision"], scores["recall"],
                 scores["f1"], scores["fp_rate_empty"])
    run.metrics = {**scores, "val_loss": val_loss, "train_seconds": time.perf_counter() - t0}
    model.eval()
    return run
