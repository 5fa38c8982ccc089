"""The seed team's lane segmenter: torchvision's LRASPP-MobileNetV3 in miniature, in plain PyTorch.

Structure (as ``torchvision.models.segmentation.lraspp_mobilenet_v3_large``, scaled down): a
MobileNet-style backbone of depthwise-separable blocks giving low-level features (stride 4 here; 8 in
torchvision) and high-level features (stride 16); the LRASPP head multiplies a 1x1 conv of the high
features by a sigmoid gate from their global average (squeeze-excite style), upsamples it bilinearly
to the low features, adds the two 1x1 classifiers, and upsamples bilinearly to the input size.
``forward`` returns ``{"out": (N, 2, H, W)}`` logits, classes ``ROAD_CLASSES`` (background, road),
as torchvision's segmentation models do.

Input: the camera frame resized to ``SEGMENTER_PREPROCESS`` (96x72, RGB, 1/255, ImageNet mean/std,
torchvision's normalisation), NCHW. Trained with cross-entropy on the synthetic road's drivable masks
(:mod:`converter.demo.perception_data`), a random look per frame and cones in a quarter of them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from converter.demo.perception_data import ROAD_CLASSES, segmentation_samples
from runtime.manifest import PreprocessSpec

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
SEGMENTER_PREPROCESS = PreprocessSpec(
    width=96, height=72, crop_top=0, color="RGB", scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD
)
MODEL_NAME = "lraspp_mobilenet_v3_mini"  # the seed's segmentation_model_name param
OUTPUT_NAME = "out"


@dataclass(frozen=True)
class SegmenterConfig:
    """Training settings (the seed's ``common_*`` params). ``quick``: tests, ~20-30 s on 2 cores."""

    samples: int = 960
    val_samples: int = 160
    epochs: int = 6
    batch_size: int = 16
    lr: float = 3e-3
    weight_decay: float = 1e-4
    width: int = 16

    @classmethod
    def quick(cls) -> SegmenterConfig:
        """A short run that still learns the road (mIoU well above the all-background baseline)."""
        return cls(samples=320, val_samples=64, epochs=4, width=12)


def build_segmenter(width: int = 16, classes: int = len(ROAD_CLASSES)) -> Any:
    """A :class:`MiniLRASPP` (``width`` scales the channels); (N, 3, H, W) -> {"out": (N, classes, H, W)}."""
    from converter.demo.segmenter_net import MiniLRASPP

    return MiniLRASPP(width, classes)


def nchw_batch(frames_bgr: np.ndarray, spec: PreprocessSpec = SEGMENTER_PREPROCESS) -> np.ndarray:
    """Camera frames (N, H, W, 3) uint8 BGR -> (N, 3, h, w) float32 by the runtime's own preprocessing."""
    from runtime.preprocess import preprocess_batch

    return np.ascontiguousarray(preprocess_batch(frames_bgr, spec, layout="NCHW"))


def segmentation_scores(pred: np.ndarray, truth: np.ndarray, classes: int = len(ROAD_CLASSES)) -> dict[str, float]:
    """Per-class IoU, their mean (``miou``) and pixel accuracy of label maps ``pred`` vs ``truth``
    (same shape, int class ids). A class absent from both has IoU 1 (nothing to get wrong)."""
    out: dict[str, float] = {"pixel_acc": float(np.mean(pred == truth))}
    ious = []
    for c in range(classes):
        p, t = pred == c, truth == c
        union = np.logical_or(p, t).sum()
        iou = float(np.logical_and(p, t).sum() / union) if union else 1.0
        out[f"iou_{ROAD_CLASSES[c] if c < len(ROAD_CLASSES) else c}"] = iou
        ious.append(iou)
    out["miou"] = float(np.mean(ious))
    return out


def predict_labels(model: Any, frames_bgr: np.ndarray, chunk: int = 64) -> np.ndarray:
    """(N, h, w) int64 argmax classes of the model (eval mode, no gradients) on camera frames."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(frames_bgr), chunk):
            logits = model(torch.from_numpy(nchw_batch(frames_bgr[i:i + chunk])))["out"]
            out.append(logits.argmax(1).numpy())
    return np.concatenate(out)


@dataclass
class SegmenterRun:
    """A trained segmenter: the model (eval mode), the config, per-epoch history
    (``train_loss``, ``val_loss``, ``miou``, ``pixel_acc``, one dict per epoch) and the final metrics."""

    model: Any
    config: SegmenterConfig
    history: list[dict[str, float]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)


def train_segmenter(config: SegmenterConfig | None = None, seed: int = 0, quick: bool = False) -> SegmenterRun:
    """Train on ``config.samples`` synthetic frames (AdamW, cross-entropy), validate every epoch on
    ``config.val_samples`` held-out frames (another seed: other states and looks). Deterministic for a
    seed. Final metrics: ``miou``, ``pixel_acc``, ``iou_background``, ``iou_road``, ``train_seconds``."""
    import torch

    cfg = config or (SegmenterConfig.quick() if quick else SegmenterConfig())
    torch.manual_seed(seed)
    size = (SEGMENTER_PREPROCESS.width, SEGMENTER_PREPROCESS.height)
    frames, masks = segmentation_samples(cfg.samples, seed, mask_size=size)
    val_frames, val_masks = segmentation_samples(cfg.val_samples, seed + 10_000, mask_size=size)
    x_all = torch.from_numpy(nchw_batch(frames))
    y_all = torch.from_numpy(masks.astype(np.int64))
    x_val = torch.from_numpy(nchw_batch(val_frames))
    y_val = torch.from_numpy(val_masks.astype(np.int64))
    model = build_segmenter(cfg.width)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps = cfg.epochs * -(-cfg.samples // cfg.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=steps, pct_start=0.2)
    rng = np.random.default_rng(seed)
    run = SegmenterRun(model, cfg)
    t0 = time.perf_counter()
    for epoch in range(cfg.epochs):
        model.train()
        order = torch.from_numpy(rng.permutation(cfg.samples))
        total = 0.0
        for i in range(0, cfg.samples, cfg.batch_size):
            idx = order[i:i + cfg.batch_size]
            loss = torch.nn.functional.cross_entropy(model(x_all[idx])["out"], y_all[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
        model.eval()
        with torch.no_grad():
            logits = model(x_val)["out"]
            val_loss = float(torch.nn.functional.cross_entropy(logits, y_val))
        scores = segmentation_scores(logits.argmax(1).numpy(), val_masks.astype(np.int64))
        run.history.append({"train_loss": total / cfg.samples, "val_loss": val_loss,
                            "miou": scores["miou"], "pixel_acc": scores["pixel_acc"]})
        log.info("segmenter epoch %d/%d: train loss %.4f, val loss %.4f, mIoU %.3f, pixel acc %.3f",
                 epoch + 1, cfg.epochs, total / cfg.samples, val_loss, scores["miou"], scores["pixel_acc"])
    run.metrics = {**scores, "val_loss": val_loss, "train_seconds": time.perf_counter() - t0}
    model.eval()
    return run
