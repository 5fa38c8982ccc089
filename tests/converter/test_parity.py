from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper

from converter.parity import compare, run_build
from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
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


def test_within_and_over_tolerance() -> None:
    want = {"steering": np.array([[0.1], [0.2]]), "throttle": np.array([[0.5], [0.6]])}
    ok = compare({k: v + 1e-5 for k, v in want.items()}, want, 1e-4)
    assert ok.ok and ok.max_abs < 2e-5 and ok.samples == 2
    bad = compare({"steering": want["steering"] + 0.3, "throttle": want["throttle"]}, want, 1e-2)
    assert not bad.ok and "'steering'" in bad.failure() and bad.swapped is None


def test_swapped_outputs_are_named() -> None:
    want = {"steering": np.array([[-0.4], [0.2]]), "throttle": np.array([[0.5], [0.6]])}
    got = {"steering": want["throttle"], "throttle": want["steering"]}
    result = compare(got, want, 1e-3)
    assert not result.ok
    assert result.swapped == {"steering": "throttle", "throttle": "steering"}
    assert "swapped" in result.failure()


def test_nan_never_passes_on_any_output() -> None:
    want = {"steering": np.array([[0.1]]), "throttle": np.array([[0.5]])}
    assert not compare({"steering": np.array([[np.nan]]), "throttle": want["throttle"]}, want, 1.0).ok
    result = compare({"steering": want["steering"], "throttle": np.array([[np.nan]])}, want, 1.0)
    assert not result.ok and "'throttle' is not finite" in result.failure()


def test_swap_within_tolerance_exactly_is_found() -> None:
    # Each build output carries the other source output, one of them off by exactly the tolerance.
    want = {"steering": np.array([[1.0]]), "throttle": np.array([[0.0]])}
    got = {"steering": np.array([[0.125]]), "throttle": np.array([[1.0]])}
    result = compare(got, want, 0.125)
    assert result.swapped == {"steering": "throttle", "throttle": "steering"}
    assert result.failure() == ("outputs are swapped (steering carries throttle, throttle carries steering): "
                                "the build maps outputs by position, not name")


def test_outputs_are_compared_sample_by_sample_whatever_their_shape() -> None:
    # A build may return (N,) or (N, 1, 1) where the source gave (N, 1): same values, no error.
    want = {"steering": np.array([[0.0], [1.0]], np.float32)}
    result = compare({"steering": np.array([0.0, 1.0], np.float32)}, want, 1e-6)
    assert result.ok and result.max_abs == 0.0 and result.samples == 2
    assert result.decoded is None and result.swapped is None
    assert compare({}, {}, 1e-3).samples == 0  # nothing compared: no samples, nothing failed


def test_to_dict() -> None:
    want = {"steering": np.array([[0.0], [1.0]]), "throttle": np.array([[0.5], [0.5]])}
    result = compare({"steering": np.array([[0.25], [1.0]]), "throttle": np.array([[0.5], [0.5]])}, want, 0.5)
    assert result.to_dict() == {
        "max_abs": 0.25, "mean_abs": 0.0625, "samples": 2, "tolerance": 0.5,
        "per_output": {"steering": {"max_abs": 0.25, "mean_abs": 0.125}, "throttle": {"max_abs": 0.0, "mean_abs": 0.0}},
    }


def _onnx_bundle(tmp: Path, with_memory: bool) -> tuple[Path, BuildEntry, Manifest]:
    """A real ONNX graph with a fixed batch of 1 (no training): y = 2 * image, flattened with the memory
    input appended when there is one; z = the sum of y."""
    img = helper.make_tensor_value_info("img_in", TensorProto.FLOAT, [1, 2, 2, 1])
    nodes = [helper.make_node("Constant", [], ["two"], value=helper.make_tensor("c", TensorProto.FLOAT, [], [2.0])),
             helper.make_node("Mul", ["img_in", "two"], ["img2"]),
             helper.make_node("Flatten", ["img2"], ["flat"])]
    graph_inputs = [img]
    if with_memory:
        graph_inputs.append(helper.make_tensor_value_info("mem_in", TensorProto.FLOAT, [1, 2]))
        nodes.append(helper.make_node("Concat", ["flat", "mem_in"], ["y"], axis=1))
    else:
        nodes.append(helper.make_node("Identity", ["flat"], ["y"]))
    nodes.append(helper.make_node("ReduceSum", ["y"], ["z"], keepdims=1))
    width = 6 if with_memory else 4
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, width]),
               helper.make_tensor_value_info("z", TensorProto.FLOAT, [1, 1])]
    model = helper.make_model(helper.make_graph(nodes, "tiny", graph_inputs, outputs),
                              opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    path = tmp / "model.onnx"
    onnx.save(model, str(path))
    pre = PreprocessSpec(2, 2, color="GRAY")
    inputs = [InputSpec("img_in", (1, 2, 2, 1), "float32", "NHWC", pre)]
    if with_memory:
        inputs.append(InputSpec("mem_in", (1, 2), "float32", "NC", role="memory", length=1))
    m = Manifest(ModelInfo("tiny", "1", None, "models:/tiny", "onnx"), inputs,
                 [OutputSpec("y", (1, width), "other"), OutputSpec("z", (1, 1), "steering")], [], "", "0")
    io = {n: TensorIO(n, "float32") for n in [*(i.name for i in inputs), "y", "z"]}
    build = BuildEntry("onnx", "fp32", path.name, sha256_file(path), path.stat().st_size, io)
    return path, build, m


def test_run_build_feeds_one_sample_at_a_time_through_onnxruntime(tmp_path: Path) -> None:
    path, build, m = _onnx_bundle(tmp_path, with_memory=False)
    x = np.arange(5 * 4, dtype=np.float32).reshape(5, 2, 2, 1)  # 5 samples, more than any other dimension
    with OnnxRuntimeBackend(path, build, m) as backend:
        out = run_build(backend, x)
    assert sorted(out) == ["y", "z"]
    np.testing.assert_array_equal(out["y"], 2 * x.reshape(5, 4))  # sample i in row i, flattened
    np.testing.assert_array_equal(out["z"], 2 * x.reshape(5, 4).sum(axis=1, keepdims=True))
    assert out["y"].dtype == np.float32


def test_run_build_with_named_inputs(tmp_path: Path) -> None:
    path, build, m = _onnx_bundle(tmp_path, with_memory=True)
    img = np.arange(3 * 4, dtype=np.float32).reshape(3, 2, 2, 1)
    mem = -np.arange(3 * 2, dtype=np.float32).reshape(3, 2)
    with OnnxRuntimeBackend(path, build, m) as backend:
        out = run_build(backend, {"img_in": img, "mem_in": mem})
    np.testing.assert_array_equal(out["y"], np.concatenate([2 * img.reshape(3, 4), mem], axis=1))
    assert out["z"].shape == (3, 1)
