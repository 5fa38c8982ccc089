"""Small real donkeycar-style pilots as bundles, for measuring the loop with several inputs.

    python -m tests.benchmarks.keras_pilots OUT_DIR      # builds OUT_DIR/{linear,imu,sequence}

Each is a Keras model of donkeycar's kind (KerasLinear, KerasIMU, Keras3D_CNN; input names
``img_in``/``imu_in``, outputs ``n_outputs0``/``n_outputs1``), trained for a few epochs on the
synthetic road (steering error on held-out frames printed: they learn, no random weights),
exported to ONNX with tf2onnx and written as a bundle (schema 2, one ``onnx`` build, reference
samples with ``in/<name>``). It does not use ``convert-model`` (that needs an MLflow registry);
the family in the demo registry (``rc-demo-registry --family``) is the converter's path.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

H, W, T = 120, 160, 3
PREPROCESS = {"width": W, "height": H, "crop_top": 0, "color": "RGB", "scale": 1 / 255.0,
              "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "model_rescales": False}


def drive(n: int, seed: int) -> dict[str, np.ndarray]:
    """Frames (BGR uint8), model images, IMU rows like the car's, sequences, targets."""
    from converter.demo.track import drive_sequence
    from runtime.manifest import PreprocessSpec
    from runtime.preprocess import preprocess_batch

    frames, steering, throttle = drive_sequence(n, seed=seed)
    images = preprocess_batch(frames, PreprocessSpec.from_dict(PREPROCESS))
    rng = np.random.default_rng(seed)
    v = 0.4 + 2.4 * np.clip(throttle, 0, 1)
    gz = v * np.tan(0.45 * np.clip(steering, -1, 1)) / 0.26
    imu = np.stack([rng.normal(0, 0.3, n), v * gz, 9.81 + rng.normal(0, 0.2, n), rng.normal(0, 0.05, n),
                    rng.normal(0, 0.05, n), gz + rng.normal(0, 0.05, n)], 1).astype(np.float32)
    idx = np.clip(np.arange(n)[:, None] + np.arange(-T + 1, 1)[None, :], 0, None)  # oldest first
    return {"frames": np.asarray(frames), "img": images, "imu": imu, "seq": images[idx],
            "y": np.stack([steering, throttle], 1).astype(np.float32)}


def _conv_stack(x: Any) -> Any:
    from tensorflow import keras

    L = keras.layers
    for filters, k, s in ((24, 5, 2), (32, 5, 2), (64, 5, 2), (64, 3, 1), (64, 3, 1)):
        x = L.Conv2D(filters, k, strides=s, activation="relu")(x)
    return L.Flatten()(x)


def _heads(x: Any) -> list[Any]:
    from tensorflow import keras

    L = keras.layers
    x = L.Dense(50, activation="relu")(x)
    return [L.Dense(1, name="n_outputs0")(x), L.Dense(1, name="n_outputs1")(x)]


def build(kind: str) -> Any:
    from tensorflow import keras

    L = keras.layers
    if kind == "linear":
        img = keras.Input((H, W, 3), name="img_in")
        x = L.Dense(100, activation="relu")(_conv_stack(img))
        return keras.Model(img, _heads(x))
    if kind == "imu":
        img, imu = keras.Input((H, W, 3), name="img_in"), keras.Input((6,), name="imu_in")
        x = L.Dense(100, activation="relu")(_conv_stack(img))
        y = L.Dense(14, activation="relu")(L.Dense(14, activation="relu")(imu))
        return keras.Model([img, imu], _heads(L.Concatenate()([x, y])))
    seq = keras.Input((T, H, W, 3), name="img_in")  # Keras3D_CNN-like
    x = L.Conv3D(16, (3, 3, 3), strides=(1, 3, 3), padding="same", activation="relu")(seq)
    x = L.Conv3D(32, (1, 3, 3), strides=(1, 2, 2), activation="relu")(x)
    x = L.MaxPooling3D((1, 2, 2))(x)
    x = L.Conv3D(64, (3, 3, 3), strides=(1, 2, 2), activation="relu")(x)
    x = L.Dense(64, activation="relu")(L.Flatten()(x))
    return keras.Model(seq, _heads(x))


def inputs_of(kind: str) -> list[dict[str, Any]]:
    image = {"name": "img_in", "role": "image", "shape": [1, H, W, 3], "dtype": "float32", "layout": "NHWC",
             "preprocess": PREPROCESS}
    if kind == "linear":
        return [image]
    if kind == "imu":
        return [image, {"name": "imu_in", "role": "imu", "shape": [1, 6], "dtype": "float32", "layout": "NC",
                        "order": ["ax", "ay", "az", "gx", "gy", "gz"]}]
    return [{"name": "img_in", "role": "image_sequence", "shape": [1, T, H, W, 3], "dtype": "float32",
             "layout": "NTHWC", "length": T, "preprocess": PREPROCESS}]


def feeds(kind: str, d: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    if kind == "linear":
        return {"img_in": d["img"]}
    if kind == "imu":
        return {"img_in": d["img"], "imu_in": d["imu"]}
    return {"img_in": d["seq"]}


def make_pilot(root: Path, kind: str, train: dict[str, np.ndarray], held: dict[str, np.ndarray]) -> Path:
    import tensorflow as tf
    import tf2onnx

    tf.keras.utils.set_random_seed(1)
    model = build(kind)
    model.compile(optimizer="adam", loss="mse")
    xs = feeds(kind, train)
    model.fit([xs[i["name"]] for i in inputs_of(kind)], [train["y"][:, :1], train["y"][:, 1:]],
              epochs=6, batch_size=32, verbose=0)
    xh = feeds(kind, held)
    pred = model.predict([xh[i["name"]] for i in inputs_of(kind)], verbose=0)
    err = float(np.mean(np.abs(pred[0][:, 0] - held["y"][:, 0])))
    base = float(np.mean(np.abs(held["y"][:, 0] - train["y"][:, 0].mean())))
    print(f"{kind}: held-out steering MAE {err:.3f} (predicting the mean: {base:.3f})")
    sig = [tf.TensorSpec((1, *xh[i["name"]].shape[1:]), tf.float32, name=i["name"]) for i in inputs_of(kind)]
    proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=17)
    data = proto.SerializeToString()
    out_names = [o.name for o in proto.graph.output]
    in_names = [i.name for i in proto.graph.input]
    bundle = root / kind
    bundle.mkdir(parents=True, exist_ok=True)
    (bundle / "model.onnx").write_bytes(data)
    meanings = {"n_outputs0": "steering", "n_outputs1": "throttle"}
    io = {i["name"]: {"name": n, "dtype": "float32"} for i, n in zip(inputs_of(kind), in_names, strict=True)}
    outputs = []
    for n in out_names:
        logical = next(k for k in meanings if k in n)
        io[logical] = {"name": n, "dtype": "float32"}
        outputs.append({"name": logical, "shape": [1, 1], "meaning": meanings[logical], "decode": {"kind": "scalar"}})
    k = 32
    ref = {"frames_bgr": held["frames"][:k], **{f"out/{o['name']}": pred[j][:k] for j, o in enumerate(outputs)}}
    if kind == "imu":
        ref["in/imu_in"] = held["imu"][:k]
    with open(bundle / "reference.npz", "wb") as f:
        np.savez_compressed(f, **ref)
    ref_sha = hashlib.sha256((bundle / "reference.npz").read_bytes()).hexdigest()
    manifest = {
        "schema_version": 2, "converter_version": "keras_pilots",
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "model": {"name": f"pilot_{kind}", "version": "1", "run_id": None, "source_uri": "keras_pilots",
                  "flavor": "keras"},
        "inputs": inputs_of(kind), "outputs": outputs,
        "builds": [{"format": "onnx", "precision": "fp32", "file": "model.onnx",
                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "io": io}],
        "source": {"reference": {"file": "reference.npz", "sha256": ref_sha, "frames": "synthetic track"},
                   "heldout_steering_mae": err},
        "not_built": [],
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return bundle


def make_pilots(root: Path, kinds: tuple[str, ...] = ("linear", "imu", "sequence")) -> dict[str, Path]:
    train, held = drive(480, seed=21), drive(96, seed=22)
    return {kind: make_pilot(root, kind, train, held) for kind in kinds}


if __name__ == "__main__":
    for kind, path in make_pilots(Path(sys.argv[1])).items():
        print(kind, path)
