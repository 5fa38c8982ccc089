"""The donkeycar-kind family: one real, trained pilot per kind, on drive clips of the synthetic road.

:data:`KINDS` is the table (builder, extra input, output convention, logging style, preprocessing);
:func:`train_kind` trains one kind and measures it on held-out clips; :func:`decode` turns raw
outputs into steering/throttle the way donkeycar does (``linear_unbin`` for bins).

Every kind is trained on the same clips (:mod:`converter.demo.family_data`) and preprocessed as
the car does (``runtime.preprocess``). Labels are the lane-centre targets, except the behaviour
kind (the target of the chosen lane). The memory kind's ``mem_in`` holds the previous frames'
labels, as donkeycar's ``KerasMemory.x_transform`` builds it from the recorded commands.

Held-out metrics per kind: ``val_mae_steering`` of the decoded steering against the truth,
``baseline_mae_steering`` of the constant predictor (the training mean), their ratio, the same for
throttle, and for kinds with an extra input ``shuffled_mae_steering``: the MAE when that input is
taken from other frames (behaviour: the other lane), which shows the input matters.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from converter.demo import DEMO_PREPROCESS, family_models
from converter.demo.family_data import BEHAVIORS, Clips, make_clips, memory_values, one_hot, sequence_index
from runtime.manifest import PreprocessSpec
from runtime.preprocess import preprocess_batch

if TYPE_CHECKING:
    import keras

log = logging.getLogger(__name__)

THROTTLE_RANGE = 0.8  # donkeycar cfg MODEL_CATEGORICAL_MAX_THROTTLE_RANGE (linear_bin's R for throttle)
RGB_PREPROCESS: dict[str, Any] = DEMO_PREPROCESS.to_dict()
GRAY_PREPROCESS: dict[str, Any] = RGB_PREPROCESS | {"color": "GRAY"}
BATCH_SIZE = 32
# (clips, frames per clip) for training and validation; quick is for tests.
DATA = {False: ((48, 60), (10, 60)), True: ((24, 50), (6, 50))}

LOGGED_H5, LOGGED_SAVEDMODEL, LOGGED_TF = "artifact-h5", "keras-savedmodel", "tensorflow-keras"
STYLE = {LOGGED_H5: 1, LOGGED_SAVEDMODEL: 2, LOGGED_TF: 3}  # converter.demo.registration.log_version


@dataclass(frozen=True)
class Kind:
    """One donkeycar pilot kind: how to build, feed, train, decode and register it."""

    key: str
    donkeycar: str  # the donkeycar class it mirrors
    build: Callable[[], keras.Model]
    outputs: str  # "scalar" (two (N,1) outputs), "bins" (angle_out/throttle_out), "vector" (one (N,2))
    extra: str | None = None  # "imu" | "memory" | "behavior": the second input's role
    sequence: bool = False  # img_in holds the last SEQ_LENGTH frames
    color: str = "RGB"
    logged_as: str = LOGGED_TF
    epochs: tuple[int, int] = (10, 6)  # (normal, quick)
    learning_rate: float = 1e-3

    @property
    def name(self) -> str:
        """The registered model's name."""
        return f"dk_{self.key}"

    @property
    def preprocess(self) -> dict[str, Any]:
        return GRAY_PREPROCESS if self.color == "GRAY" else RGB_PREPROCESS


KINDS: dict[str, Kind] = {
    k.key: k
    for k in (
        Kind("linear", "KerasLinear", family_models.build_linear, "scalar", logged_as=LOGGED_H5),
        Kind(
            "categorical",
            "KerasCategorical",
            family_models.build_categorical,
            "bins",
            logged_as=LOGGED_H5,
            epochs=(14, 10),
            learning_rate=2e-3,
        ),
        Kind("imu", "KerasIMU", family_models.build_imu, "scalar", extra="imu"),
        Kind("memory", "KerasMemory", family_models.build_memory, "scalar", extra="memory"),
        Kind(
            "behavior",
            "KerasBehavioral",
            family_models.build_behavior,
            "bins",
            extra="behavior",
            logged_as=LOGGED_H5,
            epochs=(14, 10),
            learning_rate=2e-3,
        ),
        Kind(
            "lstm",
            "KerasLSTM",
            family_models.build_lstm,
            "vector",
            sequence=True,
            epochs=(8, 5),  # it fits the training clips by epoch 5
            learning_rate=2e-3,
        ),
        Kind(
            "3dcnn",
            "Keras3D_CNN",
            family_models.build_3dcnn,
            "vector",
            sequence=True,
            epochs=(12, 8),
            learning_rate=2e-3,
        ),
        Kind(
            "gray",
            "KerasLinear (IMAGE_DEPTH=1)",
            family_models.build_gray,
            "scalar",
            color="GRAY",
            logged_as=LOGGED_SAVEDMODEL,
        ),
        Kind(
            "dynamic",
            "fully convolutional",
            family_models.build_dynamic,
            "scalar",
            epochs=(14, 10),
            learning_rate=2e-3,
        ),
    )
}


# --- donkeycar's binning (donkeycar/utils.py linear_bin / linear_unbin), vectorised -------------


def linear_bin(a: np.ndarray, n: int = 15, offset: float = 1.0, r: float = 2.0) -> np.ndarray:
    """(N,) values -> (N, n) one-hot: bin ``round((a + offset) / (r / (n - offset)))``, clamped."""
    b = np.clip(np.rint((np.asarray(a, np.float64) + offset) / (r / (n - offset))), 0, n - 1).astype(int)
    return np.eye(n, dtype=np.float32)[b]


def linear_unbin(arr: np.ndarray, n: int = 15, offset: float = -1.0, r: float = 2.0) -> np.ndarray:
    """(N, n) scores -> (N,) values: ``argmax * (r / (n + offset)) + offset``."""
    return (np.argmax(arr, axis=-1) * (r / (n + offset)) + offset).astype(np.float32)


def throttle_bin(t: np.ndarray) -> np.ndarray:
    return linear_bin(t, n=family_models.THROTTLE_BINS, offset=0.0, r=THROTTLE_RANGE)


def throttle_unbin(arr: np.ndarray) -> np.ndarray:
    """Bin i means ``i * THROTTLE_RANGE / 20``: 0 .. 0.76 (donkeycar KerasCategorical)."""
    return linear_unbin(arr, n=family_models.THROTTLE_BINS, offset=0.0, r=THROTTLE_RANGE)


THROTTLE_BIN_RANGE = (0.0, THROTTLE_RANGE * (family_models.THROTTLE_BINS - 1) / family_models.THROTTLE_BINS)


def output_names(kind: Kind) -> tuple[str, ...]:
    """The model's output names, steering first."""
    return {
        "scalar": ("out_0", "out_1") if kind.key == "imu" else ("n_outputs0", "n_outputs1"),
        "bins": ("angle_out", "throttle_out"),
        "vector": ("model_outputs",) if kind.key == "lstm" else ("outputs",),
    }[kind.outputs]


def decode(kind: Kind, raw: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Raw outputs by name (batch first) -> (steering (N,), throttle (N,)) as donkeycar decodes them."""
    names = output_names(kind)
    if kind.outputs == "bins":
        return linear_unbin(raw[names[0]]), throttle_unbin(raw[names[1]])
    if kind.outputs == "vector":
        v = np.asarray(raw[names[0]], np.float32)
        return v[:, 0], v[:, 1]
    return np.asarray(raw[names[0]], np.float32).reshape(-1), np.asarray(raw[names[1]], np.float32).reshape(-1)


# --- inputs ---------------------------------------------------------------------------------------


def preprocess_frames(frames_bgr: np.ndarray, color: str) -> np.ndarray:
    """(N, H, W, 3) uint8 BGR -> (N, 120, 160, C) float32 exactly as the car preprocesses (C = 1 for GRAY)."""
    return preprocess_batch(
        frames_bgr, PreprocessSpec.from_dict(GRAY_PREPROCESS if color == "GRAY" else RGB_PREPROCESS)
    )


@dataclass
class KindData:
    """Everything one kind needs from a set of clips: frames, extra inputs, labels."""

    clips: Clips
    steering: np.ndarray
    throttle: np.ndarray
    extra: np.ndarray | None  # (N, k) float32 values of the second input
    seq: np.ndarray | None  # (N, T) frame indices for sequence kinds


def kind_data(kind: Kind, clips: Clips) -> KindData:
    steering, throttle = (
        (clips.lane_steering, clips.lane_throttle)
        if kind.extra == "behavior"
        else (clips.steering, clips.throttle)
    )
    extra = {
        None: None,
        "imu": clips.imu,
        "memory": memory_values(steering, throttle, clips.clip, family_models.MEM_LENGTH),
        "behavior": one_hot(clips.lane),
    }[kind.extra]
    seq = sequence_index(clips.clip, family_models.SEQ_LENGTH) if kind.sequence else None
    return KindData(clips, steering, throttle, extra, seq)


def model_inputs(
    kind: Kind, d: KindData, idx: np.ndarray, extra: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Model inputs by donkeycar's names for frames ``idx``; ``extra`` replaces the second input."""
    if d.seq is not None:
        rows = d.seq[idx]
        imgs = preprocess_frames(d.clips.frames[rows.reshape(-1)], kind.color)
        feeds = {"img_in": imgs.reshape(*rows.shape, *imgs.shape[1:])}
    else:
        feeds = {"img_in": preprocess_frames(d.clips.frames[idx], kind.color)}
    if kind.extra is not None:
        name = {"imu": "imu_in", "memory": "mem_in", "behavior": "xbehavior_in"}[kind.extra]
        feeds[name] = (d.extra if extra is None else extra)[idx]  # type: ignore[index]
    return feeds


def targets(kind: Kind, d: KindData, idx: np.ndarray) -> dict[str, np.ndarray]:
    names = output_names(kind)
    s, t = d.steering[idx], d.throttle[idx]
    if kind.outputs == "bins":
        return {names[0]: linear_bin(s), names[1]: throttle_bin(t)}
    if kind.outputs == "vector":
        return {names[0]: np.stack([s, t], axis=1)}
    return {names[0]: s[:, None], names[1]: t[:, None]}


def predict(
    kind: Kind, model: keras.Model, d: KindData, extra: np.ndarray | None = None, chunk: int = 128
) -> tuple[np.ndarray, np.ndarray]:
    """Decoded (steering, throttle) for every frame of ``d``."""
    names = list(model.output_names)
    steer, thr = [], []
    for i in range(0, len(d.clips), chunk):
        idx = np.arange(i, min(i + chunk, len(d.clips)))
        out = model.predict_on_batch(model_inputs(kind, d, idx, extra))
        out = out if isinstance(out, list | tuple) else [out]
        s, t = decode(kind, dict(zip(names, (np.asarray(o) for o in out), strict=True)))
        steer.append(s)
        thr.append(t)
    return np.concatenate(steer), np.concatenate(thr)


# --- training -------------------------------------------------------------------------------------


def _batches(kind: Kind, d: KindData, seed: int) -> Any:
    import keras

    class Batches(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(d.clips))

        def __len__(self) -> int:
            return int(np.ceil(len(d.clips) / BATCH_SIZE))

        def __getitem__(self, i: int) -> tuple[dict[str, np.ndarray], Any]:
            idx = np.sort(self.order[i * BATCH_SIZE : (i + 1) * BATCH_SIZE])
            y = targets(kind, d, idx)
            return model_inputs(kind, d, idx), (y if len(y) > 1 else next(iter(y.values())))

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(d.clips))

    return Batches()


def compile_kind(kind: Kind, model: keras.Model) -> None:
    import keras

    loss = "categorical_crossentropy" if kind.outputs == "bins" else "mse"
    names = list(model.output_names)
    model.compile(
        optimizer=keras.optimizers.Adam(kind.learning_rate),
        loss={n: loss for n in names} if len(names) > 1 else loss,  # one output: Keras wants no dict
    )


def evaluate(kind: Kind, model: keras.Model, train: KindData, val: KindData) -> dict[str, float]:
    """Held-out MAE of the decoded outputs vs the constant predictor (see module doc)."""
    s, t = predict(kind, model, val)
    m: dict[str, float] = {}
    for name, pred, truth, ref in (
        ("steering", s, val.steering, train.steering),
        ("throttle", t, val.throttle, train.throttle),
    ):
        mae = float(np.mean(np.abs(pred - truth)))
        base = float(np.mean(np.abs(float(np.mean(ref)) - truth)))
        m |= {f"val_mae_{name}": mae, f"baseline_mae_{name}": base, f"mae_ratio_{name}": mae / base}
    if kind.extra is not None and val.extra is not None:
        if kind.extra == "behavior":
            other = one_hot(1 - val.clips.lane)
        else:
            other = val.extra[np.random.default_rng(0).permutation(len(val.extra))]
        s2, _ = predict(kind, model, val, extra=other)
        m["shuffled_mae_steering"] = float(np.mean(np.abs(s2 - val.steering)))
    return m


@dataclass
class FamilyData:
    train: Clips
    val: Clips


def make_family_data(quick: bool = False, seed: int = 0) -> FamilyData:
    """Training and held-out clips (disjoint seeds: other roads, other looks)."""
    (n_tr, len_tr), (n_va, len_va) = DATA[quick]
    return FamilyData(make_clips(n_tr, len_tr, seed), make_clips(n_va, len_va, seed + 5000))


def train_kind(
    kind: Kind | str, data: FamilyData, quick: bool = False, seed: int = 0, epochs: int | None = None
) -> tuple[keras.Model, dict[str, float]]:
    """Build and train one kind; returns (model, metrics incl. ``train_seconds``, ``epochs``, sizes)."""
    import keras

    kind = KINDS[kind] if isinstance(kind, str) else kind
    keras.utils.set_random_seed(seed)
    model = kind.build()
    compile_kind(kind, model)
    tr, va = kind_data(kind, data.train), kind_data(kind, data.val)
    n_epochs = epochs or kind.epochs[quick]
    t0 = time.perf_counter()
    history = model.fit(_batches(kind, tr, seed), epochs=n_epochs, verbose=0).history
    seconds = time.perf_counter() - t0
    log.debug("%s training loss per epoch: %s", kind.name, [round(v, 4) for v in history["loss"]])
    metrics = evaluate(kind, model, tr, va) | {
        "train_seconds": seconds,
        "train_loss": float(history["loss"][-1]),
        "epochs": float(n_epochs),
        "n_train": float(len(tr.clips)),
        "n_val": float(len(va.clips)),
        "params": float(model.count_params()),
    }
    log.info(
        "%s (%s): %d epochs in %.1f s, steering MAE %.3f vs constant %.3f%s",
        kind.name,
        kind.donkeycar,
        n_epochs,
        seconds,
        metrics["val_mae_steering"],
        metrics["baseline_mae_steering"],
        f", with {kind.extra} shuffled {metrics['shuffled_mae_steering']:.3f}" if kind.extra else "",
    )
    return model, metrics


def edge_tags(kind: Kind) -> dict[str, str]:
    """The model-version tags the converter reads for ``kind``; donkeycar's names need no others.

    ``edge.preprocess`` always; ``edge.inputs`` for the behaviour labels (a one-hot does not name
    its slots); ``edge.outputs`` only for the exported SavedModel, whose outputs are named by
    position (``output_0``, ``output_1``). The converter knows donkeycar's output names, the
    bins of ``angle_out`` and ``throttle_out`` (throttle range 0.8, :data:`THROTTLE_RANGE`) and
    the (N, 2) vectors of the sequence kinds.
    """
    tags = {"edge.preprocess": json.dumps(kind.preprocess)}
    if kind.extra == "behavior":
        tags["edge.inputs"] = json.dumps({"xbehavior_in": {"role": "behavior", "labels": list(BEHAVIORS)}})
    if kind.logged_as == LOGGED_SAVEDMODEL:
        tags["edge.outputs"] = json.dumps({"output_0": "steering", "output_1": "throttle"})
    return tags
