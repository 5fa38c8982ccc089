"""Train the demo pilot on synthetic track frames, preprocessed exactly as the car does.

Frames come from :mod:`converter.demo.track` (BGR uint8, like a camera) and go through
``runtime.preprocess.preprocess_batch`` with the demo's :class:`PreprocessSpec`, batch by batch
(so a few thousand frames stay uint8 in memory). Validation frames are a separate seed.
The metrics compare the model's mean absolute error with the trivial predict-the-training-mean
baseline; a model that learned the geometry is far below it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.demo import DEMO_PREPROCESS, DEMO_PREPROCESS_RAW
from converter.demo.model import OUTPUTS, build_variant
from converter.demo.track import generate_dataset
from runtime.manifest import PreprocessSpec
from runtime.preprocess import preprocess_batch

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 3000
DEFAULT_EPOCHS = 10
QUICK_SAMPLES = 1200
QUICK_EPOCHS = 6
BATCH_SIZE = 32


@dataclass
class DemoData:
    """uint8 BGR frames and float32 labels, split into training and validation."""

    train_frames: np.ndarray
    train_labels: dict[str, np.ndarray]
    val_frames: np.ndarray
    val_labels: dict[str, np.ndarray]
    spec: PreprocessSpec


def preprocess_for(variant: str) -> PreprocessSpec:
    """The preprocessing the car must apply for a model variant."""
    return DEMO_PREPROCESS_RAW if variant == "rescaling" else DEMO_PREPROCESS


def make_data(n_samples: int, seed: int, variant: str = "pilot", val_fraction: float = 0.2) -> DemoData:
    n_val = max(64, round(n_samples * val_fraction))
    tr, tr_s, tr_t = generate_dataset(n_samples, seed)
    va, va_s, va_t = generate_dataset(n_val, seed + 10_000)  # disjoint stream: no state or look shared
    return DemoData(
        tr,
        {"steering": tr_s, "throttle": tr_t},
        va,
        {"steering": va_s, "throttle": va_t},
        preprocess_for(variant),
    )


def _batches(model: keras.Model, data: DemoData, seed: int) -> Any:
    """A keras PyDataset that preprocesses each shuffled batch on the fly (float32 only per batch)."""
    import keras

    names = list(model.output_names)

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(data.train_frames))

        def __len__(self) -> int:
            return int(np.ceil(len(data.train_frames) / BATCH_SIZE))

        def __getitem__(self, i: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
            idx = np.sort(self.order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE])
            x = preprocess_batch(data.train_frames[idx], data.spec)
            return x, {n: data.train_labels[n][idx, None] for n in names}

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(data.train_frames))

    return Batches()


def compile_pilot(model: keras.Model, learning_rate: float = 1e-3) -> None:
    import keras

    names = list(model.output_names)
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss={n: "mse" for n in names},
        loss_weights={n: (1.0 if n == "steering" else 3.0) for n in names},  # throttle's range is narrower
    )


def fit(model: keras.Model, data: DemoData, epochs: int, seed: int = 0) -> float:
    """Train ``epochs`` more epochs (the optimizer state carries over between calls). Returns seconds."""
    t0 = time.perf_counter()
    model.fit(_batches(model, data, seed), epochs=epochs, verbose=0)
    return time.perf_counter() - t0


def predict(
    model: keras.Model, frames_bgr: np.ndarray, spec: PreprocessSpec, chunk: int = 256
) -> dict[str, np.ndarray]:
    """Model outputs by name for BGR frames, preprocessed as the car does. {name: (N,) float32}."""
    names = list(model.output_names)
    parts: dict[str, list[np.ndarray]] = {n: [] for n in names}
    for i in range(0, len(frames_bgr), chunk):
        out = model.predict_on_batch(preprocess_batch(frames_bgr[i : i + chunk], spec))
        out = out if isinstance(out, list | tuple) else [out]
        for n, o in zip(names, out, strict=True):
            parts[n].append(np.asarray(o, np.float32).reshape(-1))
    return {n: np.concatenate(p) for n, p in parts.items()}


def evaluate(model: keras.Model, data: DemoData) -> dict[str, float]:
    """``val_mae_<out>``, ``baseline_mae_<out>`` (predict the training mean) and their ratio."""
    pred = predict(model, data.val_frames, data.spec)
    metrics: dict[str, float] = {}
    for n, p in pred.items():
        truth = data.val_labels[n]
        mae = float(np.mean(np.abs(p - truth)))
        base = float(np.mean(np.abs(float(np.mean(data.train_labels[n])) - truth)))
        metrics |= {f"val_mae_{n}": mae, f"baseline_mae_{n}": base, f"mae_ratio_{n}": mae / base}
    return metrics


def train_pilot(
    n_samples: int | None = None,
    epochs: int | None = None,
    seed: int = 0,
    variant: str = "pilot",
    quick: bool = False,
) -> tuple[keras.Model, dict[str, float]]:
    """Build and train a demo model; ``quick`` picks a few-second setting. Returns (model, metrics).

    Deterministic for a given seed (``keras.utils.set_random_seed`` and seeded data). ``metrics``
    holds the validation MAE per output, the baseline's, their ratio, ``train_seconds`` and sizes.
    """
    import keras

    n_samples = n_samples or (QUICK_SAMPLES if quick else DEFAULT_SAMPLES)
    epochs = epochs or (QUICK_EPOCHS if quick else DEFAULT_EPOCHS)
    keras.utils.set_random_seed(seed)
    t0 = time.perf_counter()
    data = make_data(n_samples, seed, variant)
    data_s = time.perf_counter() - t0
    model = build_variant(variant)
    compile_pilot(model)
    train_s = fit(model, data, epochs, seed)
    metrics = evaluate(model, data) | {
        "data_seconds": data_s,
        "train_seconds": train_s,
        "n_samples": float(n_samples),
        "epochs": float(epochs),
    }
    log.info(
        "trained %s on %d frames x %d epochs in %.1f s: %s",
        variant,
        n_samples,
        epochs,
        train_s,
        ", ".join(f"{k}={v:.3f}" for k, v in metrics.items() if k.startswith(("val_mae", "mae_ratio"))),
    )
    return model, metrics


__all__ = ["OUTPUTS", "DemoData", "evaluate", "fit", "make_data", "predict", "train_pilot"]
