"""The second demo pilot: NVIDIA JetRacer-style road following, in plain PyTorch.

JetRacer (and JetBot's road following) fine-tune a torchvision ResNet-18 whose last layer outputs a
target point (x, y) in image coordinates ([-1, 1]) and steer with ``steering = x * gain + bias``.
torchvision does not import beside this torch build (DESIGN.md), so the ResNet-18 topology is
written in :mod:`converter.demo.jetracer_net`. ``width`` scales the channels: 64 is
ResNet-18 itself (11.2 M parameters); the demo trains ``width=16`` (0.7 M parameters, ~50 M MACs
on the 160x120 frame, the Keras pilot's compute) because it must train in a minute on 2 CPU
cores. Input: the Keras pilot's 160x120 RGB frame with ImageNet mean/std (JetRacer normalises so;
JetRacer itself feeds 224x224), NCHW.

Labels from the synthetic track (:mod:`converter.demo.track`): ``x`` is the image column of the
lane centre ``LOOKAHEAD`` metres ahead, in [-1, 1] of the half width; ``y`` is a speed target
(``2 * throttle_target - 1``). ``steering = x * gain + bias`` with gain and bias fitted to the
track's steering target, as one calibrates JetRacer's STEERING_GAIN; throttle = ``0.5 * y + 0.5``.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from converter.demo.track import (
    FOCAL_FRACTION,
    LOOKAHEAD,
    _lane_x,
    random_states,
    render_frame,
    steering_target,
    throttle_target,
)
from runtime.manifest import PreprocessSpec

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
JETRACER_PREPROCESS = PreprocessSpec(
    width=160, height=120, crop_top=0, color="RGB", scale=1 / 255, mean=IMAGENET_MEAN, std=IMAGENET_STD
)
INPUT_NAME = "image"
OUTPUT_NAME = "xy"
DEMO_WIDTH = 16
THROTTLE_GAIN, THROTTLE_BIAS = 0.5, 0.5  # throttle = 0.5 * y + 0.5 (y = 2 * throttle_target - 1)
DEFAULT_SAMPLES, DEFAULT_EPOCHS = 800, 4  # ~50 ms of CPU per frame and epoch: ~3 min on 2 idle cores
QUICK_SAMPLES, QUICK_EPOCHS, QUICK_WIDTH = 256, 2, 8  # tests: parity and driving, not accuracy
BATCH_SIZE = 32


def build_resnet18(width: int = DEMO_WIDTH, outputs: int = 2) -> Any:
    """ResNet-18 topology (:class:`converter.demo.jetracer_net.ResNet18`); (N, 3, H, W) -> (N, outputs)."""
    from converter.demo.jetracer_net import ResNet18

    return ResNet18(width, outputs)


def point_targets(curvature: Any, offset: Any, heading: Any) -> np.ndarray:
    """(N, 2) float32: x = image column of the lane centre LOOKAHEAD ahead ([-1, 1] of the half
    width), y = 2 * throttle_target - 1."""
    x = 2.0 * FOCAL_FRACTION * _lane_x(curvature, offset, heading, LOOKAHEAD) / LOOKAHEAD
    y = 2.0 * throttle_target(curvature, offset, heading) - 1.0
    return np.stack([np.asarray(x, np.float32), np.asarray(y, np.float32)], axis=1)


@dataclass
class RoadData:
    frames: np.ndarray  # (N, H, W, 3) uint8 BGR
    points: np.ndarray  # (N, 2) float32 (x, y)
    steering: np.ndarray  # (N,) float32, the track's steering target


def make_road_data(n: int, seed: int, spec: PreprocessSpec = JETRACER_PREPROCESS) -> RoadData:
    rng = np.random.default_rng(seed)
    curvature, offset, heading = random_states(n, rng)
    frames = np.empty((n, spec.height, spec.width, 3), np.uint8)
    for i in range(n):
        frames[i] = render_frame(curvature[i], offset[i], heading[i], rng, spec.width, spec.height)
    return RoadData(frames, point_targets(curvature, offset, heading),
                    np.asarray(steering_target(curvature, offset, heading), np.float32))


def nchw_batch(frames_bgr: np.ndarray, spec: PreprocessSpec = JETRACER_PREPROCESS) -> np.ndarray:
    """Frames -> (N, 3, H, W) float32, the runtime's own preprocessing, then to channels-first."""
    from runtime.preprocess import preprocess_batch

    x = preprocess_batch(frames_bgr, spec)
    return np.ascontiguousarray(x if x.shape[1] == 3 and x.shape[-1] != 3 else x.transpose(0, 3, 1, 2))


def fit_steering(x: np.ndarray, steering: np.ndarray) -> tuple[float, float]:
    """(gain, bias): least squares ``steering ~ x * gain + bias`` (JetRacer's STEERING_GAIN/BIAS)."""
    a = np.stack([x, np.ones_like(x)], axis=1).astype(np.float64)
    gain, bias = np.linalg.lstsq(a, steering.astype(np.float64), rcond=None)[0]
    return float(gain), float(bias)


def train_jetracer(
    n_samples: int | None = None, epochs: int | None = None, seed: int = 0, quick: bool = False,
    width: int | None = None,
) -> tuple[Any, dict[str, float]]:
    """Train the road-following ResNet on the synthetic track (Adam, MSE on (x, y)).

    Returns (model in eval mode, metrics): ``val_mae_x``, ``baseline_mae_x`` (predict the mean),
    ``val_mae_steering`` (decoded with the fitted gain/bias), ``steering_gain``/``steering_bias``,
    ``train_seconds``. Deterministic for a seed.
    """
    import torch

    n_samples = n_samples or (QUICK_SAMPLES if quick else DEFAULT_SAMPLES)
    epochs = epochs or (QUICK_EPOCHS if quick else DEFAULT_EPOCHS)
    width = width or (QUICK_WIDTH if quick else DEMO_WIDTH)
    torch.manual_seed(seed)
    train = make_road_data(n_samples, seed)
    val = make_road_data(max(64, n_samples // 5), seed + 10_000)
    gain, bias = fit_steering(train.points[:, 0], train.steering)
    model = build_resnet18(width)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    model.train()
    for epoch in range(epochs):
        order = rng.permutation(n_samples)
        for i in range(0, n_samples, BATCH_SIZE):
            idx = np.sort(order[i:i + BATCH_SIZE])
            x = torch.from_numpy(nchw_batch(train.frames[idx]))
            y = torch.from_numpy(train.points[idx])
            opt.zero_grad()
            loss = torch.nn.functional.mse_loss(model(x), y)
            loss.backward()
            opt.step()
        log.info("jetracer epoch %d/%d: last batch loss %.4f", epoch + 1, epochs, float(loss.detach()))
    train_s = time.perf_counter() - t0
    model.eval()
    pred = predict_points(model, val.frames)
    mae_x = float(np.mean(np.abs(pred[:, 0] - val.points[:, 0])))
    base_x = float(np.mean(np.abs(float(np.mean(train.points[:, 0])) - val.points[:, 0])))
    steer = np.clip(pred[:, 0] * gain + bias, -1, 1)
    metrics = {
        "val_mae_x": mae_x, "baseline_mae_x": base_x, "mae_ratio_x": mae_x / base_x,
        "val_mae_y": float(np.mean(np.abs(pred[:, 1] - val.points[:, 1]))),
        "val_mae_steering": float(np.mean(np.abs(steer - val.steering))),
        "steering_gain": gain, "steering_bias": bias, "train_seconds": train_s,
        "n_samples": float(n_samples), "epochs": float(epochs), "width": float(width),
    }
    log.info("trained the JetRacer pilot in %.1f s: MAE x %.3f (baseline %.3f)", train_s, mae_x, base_x)
    return model, metrics


def predict_points(model: Any, frames_bgr: np.ndarray, chunk: int = 128) -> np.ndarray:
    """(N, 2) float32 from PyTorch in eval mode, no gradients."""
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(frames_bgr), chunk):
            out.append(model(torch.from_numpy(nchw_batch(frames_bgr[i:i + chunk]))).numpy())
    return np.concatenate(out).astype(np.float32)
