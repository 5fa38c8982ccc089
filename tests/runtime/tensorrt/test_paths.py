"""Version-path selection, the ONNX each path builds from, shape resolution and GPU facts — and what
happens on a machine without TensorRT (this one): skipped builds, an unavailable backend."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from converter.builders.base import BuildContext, BuildSkipped
from runtime import formats
from runtime.backends import BackendUnavailable, open_backend
from runtime.backends.tensorrt_backend import target_matches
from runtime.manifest import BundleError, Manifest
from runtime.tensorrt import api_v8, api_v10, api_v11, tensor_api
from runtime.tensorrt.api_paths import (
    build_module,
    execution_module,
    needs_calibrator,
    select_source,
    source_format,
)
from runtime.tensorrt.gpu import GpuUnavailable, detect_gpu, format_cc, jetson_model
from runtime.tensorrt.shapes import EngineBuildError, engine_input_shape, resolve_shape
from runtime.tensorrt.version import (
    TensorRTUnavailable,
    UnsupportedTensorRT,
    api_path,
    import_tensorrt,
    parse_version,
)
from tests.conftest import checkout_env

HAVE_TRT = importlib.util.find_spec("tensorrt") is not None


@pytest.mark.parametrize(
    "version,path",
    [("8.6.1", "8"), ("8.6.2.3", "8"), ("10.0.1", "10"), ("10.3.0.30", "10"),
     ("10.2.0.post1", "10"), ("10.16.1.11", "10"), ("11.0.0.114", "11"), ("11.4.0.106", "11")],
)
def test_versions_pick_their_api_path(version: str, path: str) -> None:
    assert api_path(version) == path


@pytest.mark.parametrize("version", ["8.4.1", "8.2.5", "7.1.3", "9.2.0", "12.0.0", "abc"])
def test_unsupported_versions_are_refused_with_the_supported_list(version: str) -> None:
    with pytest.raises(UnsupportedTensorRT, match="TensorRT"):
        api_path(version)


def test_jetpack_5_tensorrt_is_refused_saying_why() -> None:
    with pytest.raises(UnsupportedTensorRT, match=r"JetPack 5 has Python 3\.8.*upgrade the Jetson to JetPack 6"):
        api_path("8.5.2.2")


def test_parse_version() -> None:
    assert parse_version("10.13.3.9.post1") == (10, 13, 3, 9)
    assert parse_version("8.6.1") == (8, 6, 1)


def test_each_path_builds_from_the_right_onnx() -> None:
    assert [source_format(a, "fp16") for a in ("8", "10", "11")] == ["onnx", "onnx", "onnx-fp16"]
    assert [source_format(a, "int8") for a in ("8", "10", "11")] == ["onnx", "onnx-int8", "onnx-int8"]
    assert needs_calibrator("8", "int8") and not needs_calibrator("10", "int8") and not needs_calibrator("8", "fp16")
    assert build_module("8") is api_v8 and build_module("10") is api_v10 and build_module("11") is api_v11
    assert execution_module("8") is api_v8 and execution_module("10") is tensor_api is execution_module("11")
    assert formats.get(source_format("11", "int8")).file == "model_int8.qdq.onnx"


def test_missing_source_onnx_names_the_fix(tiny_bundle: tuple[Path, Manifest]) -> None:
    _, manifest = tiny_bundle
    assert select_source(manifest, "fp16", "10").file == "model.onnx"
    with pytest.raises(BundleError, match="--formats onnx-fp16"):
        select_source(manifest, "fp16", "11")
    with pytest.raises(BundleError, match="--formats onnx-int8"):
        select_source(manifest, "int8", "10")


def test_engine_shapes() -> None:
    assert engine_input_shape((-1, 120, 160, 3)) == (1, 120, 160, 3)
    assert engine_input_shape((1, 120, 160, 3)) == (1, 120, 160, 3)
    with pytest.raises(ValueError, match="dynamic"):
        engine_input_shape((-1, -1, 160, 3))
    assert resolve_shape((-1, 120, 160, 3), (1, 120, 160, 3)) == (1, 120, 160, 3)
    assert resolve_shape((-1, 120, 160, 3), None) == (1, 120, 160, 3)
    assert resolve_shape((1, 120, 160, 3), (1, 120, 160, 3)) == (1, 120, 160, 3)
    with pytest.raises(EngineBuildError, match="dimension 1 is 120"):
        resolve_shape((-1, 120, 160, 3), (1, 96, 160, 3), "input_1")
    with pytest.raises(EngineBuildError, match="rank"):
        resolve_shape((-1, 120, 160), (1, 120, 160, 3))
    with pytest.raises(EngineBuildError, match="dynamic"):
        resolve_shape((-1, -1, 160, 3), None)


def test_engine_file_names_carry_version_and_gpu() -> None:
    assert formats.get("trt-fp16").engine_file("10.3.0.30", "8.7") == "model_fp16.trt10.3.0.30.sm87.engine"


def test_target_matching() -> None:
    here = {"tensorrt": "10.3.0.30", "compute_capability": "8.7", "device": "NVIDIA Jetson AGX Orin"}
    assert target_matches(dict(here), here)
    assert not target_matches({**here, "tensorrt": "10.3.0.26"}, here)
    assert not target_matches({**here, "compute_capability": "8.6"}, here)
    assert not target_matches({**here, "device": "NVIDIA Jetson Orin Nano Developer Kit"}, here)
    assert not target_matches(None, here)


def test_jetson_model(tmp_path: Path) -> None:
    model = tmp_path / "model"
    model.write_bytes(b"NVIDIA Jetson Orin Nano Developer Kit\x00")
    assert jetson_model(model) == "NVIDIA Jetson Orin Nano Developer Kit"
    model.write_bytes(b"Raspberry Pi 5 Model B Rev 1.0\x00")
    assert jetson_model(model) is None
    assert jetson_model(tmp_path / "absent") is None
    assert format_cc(8, 7) == "8.7"


@pytest.mark.skipif(HAVE_TRT, reason="TensorRT is installed here")
def test_without_tensorrt_everything_says_why(tiny_bundle: tuple[Path, Manifest]) -> None:
    bundle, manifest = tiny_bundle
    with pytest.raises(TensorRTUnavailable, match="python3-libnvinfer"):
        import_tensorrt()
    with pytest.raises(BackendUnavailable, match="TensorRT is not installed"):
        open_backend(bundle, "tensorrt", "trt-fp16")
    from converter.builders.tensorrt import build_fp16, build_int8

    for fid, fn in (("trt-fp16", build_fp16), ("trt-int8", build_int8)):
        ctx = BuildContext(fmt=formats.get(fid), staging=bundle, manifest=manifest, source=None, saved_model_dir=None)
        with pytest.raises(BuildSkipped, match="TensorRT is not installed"):
            fn(ctx)
    # auto falls back to a CPU backend instead of failing
    with open_backend(bundle, "auto") as backend:
        assert backend.name == "onnxruntime"


def test_gpu_detection_reports_every_probe() -> None:
    try:
        info = detect_gpu()
    except GpuUnavailable as e:
        assert "pycuda" in str(e) and "libcuda" in str(e)
    else:
        assert info.compute_capability.count(".") == 1


def test_engine_building_imports_no_tensorflow() -> None:
    """The car builds engines from a bundle's ONNX alone: no TensorFlow, keras or MLflow on that path."""
    code = (
        "import sys, converter.builders.tensorrt, runtime.backends.tensorrt_backend, calibration.trt_calibrator\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'mlflow', 'tensorrt'))\n"
        "print(bad)\n"
        "sys.exit(1 if bad else 0)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=checkout_env())
    assert r.returncode == 0, r.stdout + r.stderr
