"""Small multi-input bundles for the runtime's feeding tests, without TensorFlow.

Each is a real ONNX model run by ONNX Runtime, built with ``onnx.helper`` so that its outputs are
a known function of every input: steering = tanh(sum of per-input terms), throttle = sigmoid(the
same sum) / 2. The image term is the frame's mean (a sequence: a weighted sum over its frames,
different weights per time step, so the frame order matters); a vector input's term is its dot
product with distinct weights (so each slot matters). :func:`predict` is the same function in
numpy: a command on the wire can be checked against the inputs the runtime should have fed.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

PREPROCESS: dict[str, Any] = {"width": 32, "height": 24, "crop_top": 4, "color": "RGB", "scale": 1 / 255.0,
              "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0], "model_rescales": False}
IMAGE_GAIN, BIAS = 3.0, -1.2


def weights(n: int, seed: int) -> np.ndarray:
    """Distinct weights per slot, deterministic."""
    return (np.linspace(-1.0, 1.0, n) * 0.7 + 0.05 * seed).astype(np.float32)


def image_input(name: str = "img_in", length: int | None = None, layout: str | None = None) -> dict[str, Any]:
    h, w = int(PREPROCESS["height"]) - int(PREPROCESS["crop_top"]), int(PREPROCESS["width"])
    if length is None:
        return {"name": name, "role": "image", "shape": [1, h, w, 3], "dtype": "float32", "layout": layout or "NHWC",
                "preprocess": PREPROCESS}
    lay = layout or "NTHWC"
    frame = [h, w, 3] if lay == "NTHWC" else [3, h, w]
    return {"name": name, "role": "image_sequence", "shape": [1, length, *frame], "dtype": "float32",
            "layout": lay, "length": length, "preprocess": PREPROCESS}


def vector_input(name: str, role: str, size: int, **fields: Any) -> dict[str, Any]:
    return {"name": name, "role": role, "shape": [1, size], "dtype": "float32", "layout": "NC", **fields}


def predict(inputs: list[dict[str, Any]], feeds: dict[str, np.ndarray]) -> tuple[float, float]:
    """The bundle's model in numpy: (steering, throttle) for one sample (batch 1 arrays)."""
    total = BIAS
    for k, spec in enumerate(inputs):
        x = np.asarray(feeds[spec["name"]], np.float32)
        if spec["role"] == "image":
            total += IMAGE_GAIN * float(x.mean())
        elif spec["role"] == "image_sequence":
            per_frame = x.reshape(x.shape[1], -1).mean(axis=1)
            total += IMAGE_GAIN * float(per_frame @ _time_weights(x.shape[1]))
        else:
            total += float(x.reshape(-1) @ weights(x.shape[1], k))
    return float(np.tanh(total)), float(0.5 / (1.0 + np.exp(-total)))


def _time_weights(t: int) -> np.ndarray:
    """The newest frame plus its change from the older ones (sums to 1): the order matters."""
    return np.asarray([-1.0] * (t - 1) + [float(t)], np.float32)


def build_onnx(inputs: list[dict[str, Any]]) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, graph_inputs, terms = [], [], [], []
    for k, spec in enumerate(inputs):
        name, shape = spec["name"], spec["shape"]
        graph_inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        term = f"term{k}"
        if spec["role"] == "image":
            nodes.append(helper.make_node("ReduceMean", [name], [f"m{k}"], axes=[1, 2, 3], keepdims=1))
            nodes.append(helper.make_node("Reshape", [f"m{k}", "shape11"], [f"m{k}r"]))
            inits.append(numpy_helper.from_array(np.asarray([IMAGE_GAIN], np.float32), f"g{k}"))
            nodes.append(helper.make_node("Mul", [f"m{k}r", f"g{k}"], [term]))
        elif spec["role"] == "image_sequence":
            t = shape[1]
            nodes.append(helper.make_node("ReduceMean", [name], [f"m{k}"], axes=[2, 3, 4], keepdims=0))  # (1, T)
            inits.append(numpy_helper.from_array((IMAGE_GAIN * _time_weights(t)).reshape(t, 1), f"w{k}"))
            nodes.append(helper.make_node("MatMul", [f"m{k}", f"w{k}"], [term]))
        else:
            inits.append(numpy_helper.from_array(weights(shape[1], k).reshape(-1, 1), f"w{k}"))
            nodes.append(helper.make_node("MatMul", [name, f"w{k}"], [term]))
        terms.append(term)
    inits.append(numpy_helper.from_array(np.asarray([1, 1], np.int64), "shape11"))
    inits.append(numpy_helper.from_array(np.asarray([[BIAS]], np.float32), "bias"))
    nodes.append(helper.make_node("Sum", [*terms, "bias"], ["total"]))
    nodes.append(helper.make_node("Tanh", ["total"], ["steering"]))
    nodes.append(helper.make_node("Sigmoid", ["total"], ["sig"]))
    inits.append(numpy_helper.from_array(np.asarray([[0.5]], np.float32), "half"))
    nodes.append(helper.make_node("Mul", ["sig", "half"], ["throttle"]))
    outputs = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1]) for n in ("steering", "throttle")]
    graph = helper.make_graph(nodes, "multi_input_pilot", graph_inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def write_reference(bundle: Path, inputs: list[dict[str, Any]], n: int = 12, seed: int = 4) -> dict[str, Any]:
    """``reference.npz`` as the converter writes it: road frames, ``in/<name>`` for non-image
    inputs, and the model's outputs (:func:`predict`, the "source model"); its manifest entry."""
    from converter.demo.track import drive_sequence
    from runtime.manifest import PreprocessSpec
    from runtime.preprocess import image_layout, preprocess_batch, sequence_windows

    frames, _, _ = drive_sequence(n, seed=seed)
    rng = np.random.default_rng(seed)
    vectors = {i["name"]: rng.normal(0, 1, (n, i["shape"][1])).astype(np.float32)
               for i in inputs if i["role"] not in ("image", "image_sequence")}
    spec = PreprocessSpec.from_dict(PREPROCESS)
    feeds: dict[str, np.ndarray] = dict(vectors)
    for i in inputs:
        if i["role"] in ("image", "image_sequence"):
            pre = preprocess_batch(frames, spec, image_layout(i["layout"]))
            feeds[i["name"]] = sequence_windows(pre, i["length"]) if i["role"] == "image_sequence" else pre
    outs = np.asarray([predict(inputs, {k: v[j : j + 1] for k, v in feeds.items()}) for j in range(n)], np.float32)
    arrays = {"frames_bgr": np.asarray(frames), "out/steering": outs[:, :1], "out/throttle": outs[:, 1:],
              **{f"in/{k}": v for k, v in vectors.items()}}
    with open(bundle / "reference.npz", "wb") as f:
        np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
    digest = hashlib.sha256((bundle / "reference.npz").read_bytes()).hexdigest()
    return {"file": "reference.npz", "sha256": digest, "frames": "synthetic track"}


def write_bundle(root: Path, name: str, inputs: list[dict[str, Any]], reference: bool = False) -> Path:
    """A schema-2 bundle with one ``onnx`` build of :func:`build_onnx`'s model (and with
    ``reference``, a ``reference.npz``); its directory."""
    bundle = root / name
    bundle.mkdir(parents=True)
    data = build_onnx(inputs)
    (bundle / "model.onnx").write_bytes(data)
    source = {"reference": write_reference(bundle, inputs)} if reference else {}
    io = {i["name"]: {"name": i["name"], "dtype": "float32"} for i in inputs}
    io.update({n: {"name": n, "dtype": "float32"} for n in ("steering", "throttle")})
    manifest = {
        "schema_version": 2,
        "converter_version": "test",
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(),
        "model": {"name": name, "version": "1", "run_id": None, "source_uri": "test://", "flavor": "onnx"},
        "inputs": inputs,
        "outputs": [{"name": "steering", "shape": [1, 1], "meaning": "steering", "decode": {"kind": "scalar"}},
                    {"name": "throttle", "shape": [1, 1], "meaning": "throttle", "decode": {"kind": "scalar"}}],
        "builds": [{"format": "onnx", "precision": "fp32", "file": "model.onnx",
                    "sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data), "io": io}],
        "source": source,
        "not_built": [],
    }
    (bundle / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return bundle
