"""``converter.builders.onnx_tf`` on an ONNX whose image input is NHWC (what tf2onnx exports from a
Keras model): onnx2tf would download sample images from GitHub for such inputs; the build must
work with the network unreachable and give ONNX Runtime's outputs, by name."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

# Looked up, never imported here: importing onnx2tf sets TF_USE_LEGACY_KERAS=1 for the whole
# process, and every later tf.keras (MLflow's tensorflow flavor among them) would be tf_keras.
if importlib.util.find_spec("onnx2tf") is None:
    pytest.skip("onnx2tf is not installed (the torch extra; see README)", allow_module_level=True)

import onnx
from onnx import TensorProto, helper, numpy_helper

from converter.builders.onnx_tf import saved_model_from_onnx

pytestmark = pytest.mark.slow  # an onnx2tf -> TensorFlow SavedModel conversion in a child process


def _nhwc_onnx(path: Path) -> Path:
    """input_1 (1, 16, 16, 3) NHWC -> Transpose -> Conv 3x3 -> ReLU -> global pool -> two heads
    ``angle`` (tanh) and ``speed`` (sigmoid), each (1, 1); opset 13, random weights."""
    rng = np.random.default_rng(0)
    w = numpy_helper.from_array(rng.normal(0, 0.5, (4, 3, 3, 3)).astype(np.float32), "w")
    ha = numpy_helper.from_array(rng.normal(0, 1, (4, 1)).astype(np.float32), "ha")
    hs = numpy_helper.from_array(rng.normal(0, 1, (4, 1)).astype(np.float32), "hs")
    nodes = [
        helper.make_node("Transpose", ["input_1"], ["nchw"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["nchw", "w"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["g"]),
        helper.make_node("Flatten", ["g"], ["f"]),
        helper.make_node("MatMul", ["f", "ha"], ["a"]),
        helper.make_node("Tanh", ["a"], ["angle"]),
        helper.make_node("MatMul", ["f", "hs"], ["s"]),
        helper.make_node("Sigmoid", ["s"], ["speed"]),
    ]
    graph = helper.make_graph(
        nodes, "nhwc_pilot", [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, [1, 16, 16, 3])],
        [helper.make_tensor_value_info("angle", TensorProto.FLOAT, [1, 1]),
         helper.make_tensor_value_info("speed", TensorProto.FLOAT, [1, 1])],
        initializer=[w, ha, hs],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def test_nhwc_onnx_converts_offline_and_matches_onnxruntime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import onnxruntime as ort
    import tensorflow as tf

    # Every HTTP(S) request of the child (onnx2tf uses requests) goes to a closed local port.
    for var in ("HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    src = _nhwc_onnx(tmp_path / "nhwc.onnx")
    (tmp_path / "work").mkdir()
    dest = saved_model_from_onnx(src, tmp_path / "work" / "saved_model")
    x = np.random.default_rng(1).random((1, 16, 16, 3), dtype=np.float32)
    want = dict(zip(["angle", "speed"], ort.InferenceSession(str(src)).run(["angle", "speed"], {"input_1": x}), strict=True))
    serve = tf.saved_model.load(str(dest)).signatures["serving_default"]
    got = {k: v.numpy() for k, v in serve(input_1=tf.constant(x)).items()}
    assert set(got) == {"angle", "speed"}
    for k in want:
        assert float(np.max(np.abs(got[k] - want[k]))) < 1e-5, k
    assert float(abs(want["angle"][0, 0])) > 1e-3  # the head really computes something
