"""A tiny real bundle (a two-output ONNX model + manifest) for the TensorRT tests, and the GPU gate."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from runtime.manifest import (
    BuildEntry,
    InputSpec,
    Manifest,
    ModelInfo,
    OutputSpec,
    PreprocessSpec,
    TensorIO,
    sha256_file,
)

H, W = 12, 16


def make_onnx(path: Path, seed: int = 0) -> None:
    """(N, H, W, 3) -> steering = tanh(x·a), throttle = sigmoid(x·b): two named outputs, dynamic batch."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    n = H * W * 3
    a = (rng.standard_normal((n, 1)) / np.sqrt(n)).astype(np.float32)
    b = (rng.standard_normal((n, 1)) / np.sqrt(n)).astype(np.float32)
    nodes = [
        helper.make_node("Flatten", ["input_1"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "wa"], ["za"]),
        helper.make_node("Tanh", ["za"], ["out_steer"]),
        helper.make_node("MatMul", ["flat", "wb"], ["zb"]),
        helper.make_node("Sigmoid", ["zb"], ["out_throttle"]),
    ]
    graph = helper.make_graph(
        nodes, "tiny_pilot",
        [helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["N", H, W, 3])],
        # Output order deliberately differs from the manifest's: mapping must go by name.
        [helper.make_tensor_value_info("out_throttle", TensorProto.FLOAT, ["N", 1]),
         helper.make_tensor_value_info("out_steer", TensorProto.FLOAT, ["N", 1])],
        initializer=[numpy_helper.from_array(a, "wa"), numpy_helper.from_array(b, "wb")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def make_bundle(bundle: Path) -> Manifest:
    bundle.mkdir(parents=True)
    onnx_path = bundle / "model.onnx"
    make_onnx(onnx_path)
    io = {
        "image": TensorIO("input_1", "float32"),
        "steering": TensorIO("out_steer", "float32"),
        "throttle": TensorIO("out_throttle", "float32"),
    }
    manifest = Manifest(
        model=ModelInfo("tiny_pilot", "1", None, "test://tiny", "onnx"),
        inputs=[InputSpec("image", (-1, H, W, 3), "float32", "NHWC", PreprocessSpec(width=W, height=H))],
        outputs=[OutputSpec("steering", (-1, 1), "steering"), OutputSpec("throttle", (-1, 1), "throttle")],
        builds=[BuildEntry("onnx", "fp32", "model.onnx", sha256_file(onnx_path), onnx_path.stat().st_size, io)],
        created_at="2026-11-24T00:00:00Z",
        converter_version="test",
    )
    (bundle / "manifest.json").write_text(manifest.dumps())
    return manifest


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> tuple[Path, Manifest]:
    bundle = tmp_path / "builds" / "tiny_pilot" / "v1"
    return bundle, make_bundle(bundle)


def gpu_missing_reason() -> str | None:
    """Why the GPU tests cannot run here, or None when TensorRT, pycuda and a GPU are all present."""
    for mod in ("tensorrt", "pycuda"):
        if importlib.util.find_spec(mod) is None:
            return f"{mod} is not installed (TensorRT tests need a Jetson or a CUDA workstation)"
    try:
        from runtime.tensorrt.gpu import detect_gpu
        from runtime.tensorrt.version import installed_version

        installed_version()
        detect_gpu()
    except Exception as e:  # any failure to reach TensorRT or the GPU is the skip reason
        return f"{type(e).__name__}: {e}"
    return None
