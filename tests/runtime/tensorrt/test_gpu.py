"""Real TensorRT on a real GPU: build engines from a small ONNX, run them, compare with ONNX Runtime.

Skipped with the reason wherever TensorRT, pycuda or a CUDA GPU is missing (every CI machine here).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.builders.base import BuildContext
from runtime import formats
from runtime.atomic import atomic_write_bytes
from runtime.backends import Backend, open_backend
from runtime.backends.tensorrt_backend import TensorRTBackend
from runtime.manifest import BuildEntry, Manifest, TensorIO, sha256_file
from tests.runtime.tensorrt.conftest import H, W, gpu_missing_reason

REASON = gpu_missing_reason()
pytestmark = [pytest.mark.gpu, pytest.mark.skipif(REASON is not None, reason=f"GPU test: {REASON}")]


def _api() -> str:
    from runtime.tensorrt.version import api_path, installed_version

    return api_path(installed_version())


def _frames(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).random((n, H, W, 3), dtype=np.float32)


def _add_build(bundle: Path, manifest: Manifest, fmt: str, path: Path, io: dict[str, TensorIO]) -> None:
    manifest.builds.append(BuildEntry(fmt, formats.get(fmt).precision, path.name, sha256_file(path),
                                      path.stat().st_size, io))
    (bundle / "manifest.json").write_text(manifest.dumps())


def _add_fp16_onnx(bundle: Path, manifest: Manifest) -> None:
    """TensorRT 11 builds FP16 from an explicit FP16 ONNX (I/O kept float32)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    out = bundle / "model_fp16.onnx"
    onnx.save(convert_float_to_float16(onnx.load(str(bundle / "model.onnx")), keep_io_types=True), str(out))
    _add_build(bundle, manifest, "onnx-fp16", out, dict(manifest.build("onnx").io))


def _add_qdq_onnx(bundle: Path, manifest: Manifest) -> None:
    """TensorRT 10/11 build INT8 from Q/DQ nodes: symmetric signed INT8, as TensorRT requires."""
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Frames(CalibrationDataReader):
        def __init__(self) -> None:
            self.it = iter({"input_1": f[None]} for f in _frames(32))

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.it, None)

    out = bundle / "model_int8.qdq.onnx"
    quantize_static(str(bundle / "model.onnx"), str(out), Frames(), quant_format=QuantFormat.QDQ,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8,
                    extra_options={"ActivationSymmetric": True, "WeightSymmetric": True})
    _add_build(bundle, manifest, "onnx-int8", out, dict(manifest.build("onnx").io))


def _compare(bundle: Path, backend: Backend, tol: float) -> None:
    with open_backend(bundle, "onnxruntime", "onnx") as ref:
        for x in _frames(8):
            got, want = backend.infer(x[None]), ref.infer(x[None])
            for name in ("steering", "throttle"):
                assert np.max(np.abs(got[name] - want[name])) <= tol, name
    assert isinstance(backend, TensorRTBackend)
    assert set(backend.last_timings_ms) == {"h2d", "compute", "d2h"}
    assert all(v >= 0 for v in backend.last_timings_ms.values())


def test_fp16_engine_is_built_cached_and_matches_onnxruntime(tiny_bundle: tuple[Path, Manifest], tmp_path: Path) -> None:
    bundle, manifest = tiny_bundle
    if _api() == "11":
        _add_fp16_onnx(bundle, manifest)
    cache = tmp_path / "engines"
    with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=cache) as backend:
        _compare(bundle, backend, 1e-2)
    engines = sorted(cache.glob("*.engine"))
    assert len(engines) == 1 and engines[0].with_suffix(".json").is_file()
    assert list(cache.glob("*.timing.cache"))
    stamp = engines[0].stat().st_mtime_ns
    with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=cache) as again:
        assert again.path == engines[0]
    assert engines[0].stat().st_mtime_ns == stamp  # served from the cache, not rebuilt


def test_engine_the_runtime_refuses_is_rebuilt(tiny_bundle: tuple[Path, Manifest], tmp_path: Path) -> None:
    bundle, manifest = tiny_bundle
    if _api() == "11":
        _add_fp16_onnx(bundle, manifest)
    cache_dir = tmp_path / "engines"
    with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=cache_dir) as backend:
        path = backend.path
    key_json = path.with_suffix(".json").read_text()
    bad = hashlib.sha256(b"not an engine").digest() * 64
    atomic_write_bytes(path, bad)
    # keep the sidecar consistent with the bad bytes: only TensorRT's deserializer can object now
    path.with_suffix(".json").write_text(key_json.replace(
        key_json.split('"engine_sha256": "')[1].split('"')[0], sha256_file(path)))
    with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=cache_dir) as rebuilt:
        _compare(bundle, rebuilt, 1e-2)
    assert path.read_bytes() != bad  # rebuilt in place


def test_converter_builds_an_engine_into_the_bundle(tiny_bundle: tuple[Path, Manifest]) -> None:
    from converter.builders.tensorrt import build_fp16

    bundle, manifest = tiny_bundle
    if _api() == "11":
        _add_fp16_onnx(bundle, manifest)
    fmt = formats.get("trt-fp16")
    result = build_fp16(BuildContext(fmt=fmt, staging=bundle, manifest=manifest, source=None, saved_model_dir=None))
    path = bundle / result.file
    assert path.is_file() and result.target and result.target["tensorrt"] in result.file
    entry = BuildEntry("trt-fp16", "fp16", result.file, sha256_file(path), path.stat().st_size, result.io,
                       toolchain=result.toolchain, target=result.target)
    with TensorRTBackend(path, entry, manifest) as backend:
        _compare(bundle, backend, 1e-2)
    assert (bundle.parent / "trt-cache").is_dir()  # timing cache next to the bundle


def test_int8_engine(tiny_bundle: tuple[Path, Manifest]) -> None:
    from calibration.trt_calibrator import cache_paths, check_calibration_cache
    from converter.builders.tensorrt import build_int8, trt_cache_dir

    bundle, manifest = tiny_bundle
    api = _api()
    if api != "8":
        _add_qdq_onnx(bundle, manifest)
    ctx = BuildContext(fmt=formats.get("trt-int8"), staging=bundle, manifest=manifest, source=None,
                       saved_model_dir=None, calibration={manifest.camera_input.name: _frames(64)},
                       calibration_id="9" * 64)
    result = build_int8(ctx)
    path = bundle / result.file
    entry = BuildEntry("trt-int8", "int8", result.file, sha256_file(path), path.stat().st_size, result.io,
                       toolchain=result.toolchain, target=result.target)
    with TensorRTBackend(path, entry, manifest) as backend:
        _compare(bundle, backend, 0.1)
    if api == "8":
        cache, _ = cache_paths(trt_cache_dir(ctx), manifest.build("onnx").sha256)
        assert cache.read_bytes().startswith(b"TRT-8")
        from calibration.trt_calibrator import CalibrationCacheKey

        key = CalibrationCacheKey(result.toolchain["tensorrt"], "9" * 64, manifest.build("onnx").sha256,
                                  {"input_1": (1, H, W, 3)})
        assert check_calibration_cache(cache, key).usable


# ---- teardown, several inputs, INT8 with a fixed batch (issue 13)

BAD_STDERR = ("PyCUDA WARNING", "PyCUDA ERROR", "context is destroyed", "[TRT] [E]", "Error Code", "cudaError",
              "invalid resource handle", "CUDA_ERROR")


def _no_errors(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Nothing on stderr from pycuda/CUDA, and no error TensorRT logged (through our logger bridge)."""
    err = capfd.readouterr().err
    assert not [line for line in err.splitlines() if any(b in line for b in BAD_STDERR)], err
    trt_errors = [r.getMessage() for r in caplog.records if r.name == "tensorrt" and r.levelno >= logging.ERROR]
    assert not trt_errors, trt_errors


def _current_context() -> int:
    """The driver's current context on this thread (0 when none): a context left pushed shows here."""
    import ctypes

    lib = ctypes.CDLL("libcuda.so.1")
    ctx = ctypes.c_void_p()
    assert lib.cuCtxGetCurrent(ctypes.byref(ctx)) == 0
    return int(ctx.value or 0)


def test_open_infer_close_20_times_frees_everything(tiny_bundle: tuple[Path, Manifest], tmp_path: Path,
                                                    capfd: pytest.CaptureFixture[str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    from runtime.tensorrt.cuda_context import CudaContext

    bundle, manifest = tiny_bundle
    if _api() == "11":
        _add_fp16_onnx(bundle, manifest)
    cache = tmp_path / "engines"
    x = _frames(1)
    with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=cache) as backend:  # builds; loads TensorRT's libs
        backend.infer(x)
    before = _current_context()
    # Held across the loop so the primary context is never reset between cycles: free memory is then
    # comparable, and what a cycle leaves allocated stays counted.
    probe = CudaContext()
    try:
        with probe.active() as cuda:
            baseline = cuda.mem_get_info()[0]
        for _ in range(20):
            with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=cache) as backend:
                backend.infer(x)
            assert _current_context() == before, "a CUDA context was left on this thread's stack"
        with probe.active() as cuda:
            after = cuda.mem_get_info()[0]
    finally:
        probe.release()
    assert _current_context() == before
    assert baseline - after < 8 << 20, f"{(baseline - after) >> 20} MiB not given back after 20 open/close cycles"
    _no_errors(capfd, caplog)


def test_close_from_another_thread(tiny_bundle: tuple[Path, Manifest], tmp_path: Path,
                                   capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    import threading

    bundle, manifest = tiny_bundle
    if _api() == "11":
        _add_fp16_onnx(bundle, manifest)
    before = _current_context()
    backend = open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=tmp_path / "engines")
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(y=backend.infer(_frames(1))))  # the loop's thread
    worker.start()
    worker.join()
    assert set(result["y"]) == {"steering", "throttle"}
    closer = threading.Thread(target=backend.close)
    closer.start()
    closer.join()
    assert _current_context() == before
    _no_errors(capfd, caplog)


def _two_input_onnx(path: Path, batch: int | str) -> None:
    """img (B,H,W,3) and imu (B,6) -> out_a (B,1) = tanh(img·a + imu·c), out_b (B,2) = imu[:, :2] * 2."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(3)
    n = H * W * 3
    a = (rng.standard_normal((n, 1)) / np.sqrt(n)).astype(np.float32)
    c = rng.standard_normal((6, 1)).astype(np.float32)
    sel = np.zeros((6, 2), np.float32)
    sel[0, 0] = sel[1, 1] = 2.0
    nodes = [
        helper.make_node("Flatten", ["img"], ["flat"], axis=1),
        helper.make_node("MatMul", ["flat", "wa"], ["za"]),
        helper.make_node("MatMul", ["imu", "wc"], ["zc"]),
        helper.make_node("Add", ["za", "zc"], ["z"]),
        helper.make_node("Tanh", ["z"], ["out_a"]),
        helper.make_node("MatMul", ["imu", "sel"], ["out_b"]),
    ]
    graph = helper.make_graph(
        nodes, "two_inputs",
        [helper.make_tensor_value_info("img", TensorProto.FLOAT, [batch, H, W, 3]),
         helper.make_tensor_value_info("imu", TensorProto.FLOAT, [batch, 6])],
        [helper.make_tensor_value_info("out_b", TensorProto.FLOAT, [batch, 2]),
         helper.make_tensor_value_info("out_a", TensorProto.FLOAT, [batch, 1])],
        initializer=[numpy_helper.from_array(a, "wa"), numpy_helper.from_array(c, "wc"),
                     numpy_helper.from_array(sel, "sel")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


def _run_engine_against_onnxruntime(onnx_path: Path, engine_path: Path, tol: float) -> None:
    import onnxruntime as ort

    from runtime.tensorrt.runner import EngineRunner

    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(5)
    runner = EngineRunner(engine_path.read_bytes(), _api(), {"img": (1, H, W, 3), "imu": (1, 6)})
    try:
        assert sorted(t.name for t in runner.inputs) == ["img", "imu"]
        assert sorted(t.name for t in runner.outputs) == ["out_a", "out_b"]
        for _ in range(5):
            feeds = {"imu": rng.standard_normal((1, 6)).astype(np.float32),
                     "img": rng.random((1, H, W, 3), dtype=np.float32)}
            got = runner.run(feeds)
            want = dict(zip(["out_b", "out_a"], sess.run(["out_b", "out_a"], feeds), strict=True))
            for name in want:
                assert np.max(np.abs(got[name] - want[name])) <= tol, name
    finally:
        runner.close()


@pytest.mark.parametrize("batch", ["N", 1], ids=["dynamic-batch", "fixed-batch-1"])
def test_two_inputs_two_outputs_by_name(tmp_path: Path, batch: int | str) -> None:
    from runtime.tensorrt.builder import build_engine

    onnx_path = tmp_path / "two.onnx"
    _two_input_onnx(onnx_path, batch)
    engine = tmp_path / "two.engine"
    info = build_engine(onnx_path, "fp16", engine, input_shapes={"img": (1, H, W, 3), "imu": (1, 6)})
    assert info.input_shapes == {"img": [1, H, W, 3], "imu": [1, 6]}
    _run_engine_against_onnxruntime(onnx_path, engine, 2e-2)


def test_int8_on_8x_calibrates_a_fixed_batch_onnx_with_every_input(tmp_path: Path) -> None:
    if _api() != "8":
        pytest.skip("entropy calibration is the TensorRT 8.x path")
    from calibration.trt_calibrator import (
        CalibrationCacheKey,
        cache_paths,
        check_calibration_cache,
        make_entropy_calibrator,
    )
    from runtime.tensorrt.builder import build_engine
    from runtime.tensorrt.version import installed_version

    onnx_path = tmp_path / "two.onnx"
    _two_input_onnx(onnx_path, 1)
    shapes = {"img": (1, H, W, 3), "imu": (1, 6)}
    rng = np.random.default_rng(9)
    data = {"img": rng.random((24, H, W, 3), dtype=np.float32), "imu": rng.standard_normal((24, 6)).astype(np.float32)}
    key = CalibrationCacheKey(installed_version(), "a" * 64, sha256_file(onnx_path), shapes)
    cache, _ = cache_paths(tmp_path, key.onnx_sha256)
    cal = make_entropy_calibrator(data, cache, key)
    try:
        build_engine(onnx_path, "int8", tmp_path / "two.int8.engine", calibrator=cal, input_shapes=shapes)
        assert cal.batch == 1 and cal.batches_fed == 24
    finally:
        cal.release()
    assert check_calibration_cache(cache, key).usable
    _run_engine_against_onnxruntime(onnx_path, tmp_path / "two.int8.engine", 0.15)


def test_schema2_bundle_with_image_and_imu_inputs_matches_onnxruntime(tmp_path: Path) -> None:
    """The whole path for a multi-input bundle: from_bundle builds and caches the engine, infer by
    logical input names, outputs by name (a scalar and a component output), against ONNX Runtime."""
    from runtime.manifest import InputSpec, ModelInfo, OutputSpec, PreprocessSpec

    bundle = tmp_path / "two"
    bundle.mkdir()
    onnx_path = bundle / "model.onnx"
    _two_input_onnx(onnx_path, "N")
    io = {n: TensorIO(n, "float32") for n in ("img", "imu", "out_a", "out_b")}
    manifest = Manifest(
        model=ModelInfo("two", "1", None, "test://two", "onnx"),
        inputs=[InputSpec("img", (1, H, W, 3), "float32", "NHWC", PreprocessSpec(width=W, height=H)),
                InputSpec("imu", (1, 6), "float32", "NC", role="imu")],
        outputs=[OutputSpec("out_a", (1, 1), "steering"),
                 OutputSpec("out_b", (1, 2), "throttle", {"kind": "component", "index": 0})],
        builds=[BuildEntry("onnx", "fp32", "model.onnx", sha256_file(onnx_path), onnx_path.stat().st_size, io)],
        created_at="2026-11-30T00:00:00Z", converter_version="test")
    (bundle / "manifest.json").write_text(manifest.dumps())
    if _api() == "11":
        _add_fp16_onnx(bundle, manifest)
    rng = np.random.default_rng(8)
    with open_backend(bundle, "tensorrt", "trt-fp16", cache_dir=tmp_path / "engines") as trt_backend, \
            open_backend(bundle, "onnxruntime", "onnx") as ref:
        for _ in range(4):
            feeds = {"img": rng.random((1, H, W, 3), dtype=np.float32), "imu": rng.standard_normal((1, 6)).astype(np.float32)}
            got, want = trt_backend.infer(feeds), ref.infer(feeds)
            for name in ("out_a", "out_b"):
                assert np.max(np.abs(got[name] - want[name])) <= 2e-2, name
