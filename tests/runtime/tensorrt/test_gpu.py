"""Real TensorRT on a real GPU: build engines from a small ONNX, run them, compare with ONNX Runtime.

Skipped with the reason wherever TensorRT, pycuda or a CUDA GPU is missing (every CI machine here).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from converter.builders.base import BuildContext
from runtime import formats
from runtime.backends import Backend, open_backend
from runtime.backends.tensorrt_backend import TensorRTBackend
from runtime.manifest import BuildEntry, Manifest, TensorIO, sha256_file
from runtime.tensorrt.atomic import atomic_write_bytes
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
                       saved_model_dir=None, calibration={manifest.input.name: _frames(64)},
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

        key = CalibrationCacheKey(result.toolchain["tensorrt"], "9" * 64, manifest.build("onnx").sha256, (1, H, W, 3))
        assert check_calibration_cache(cache, key).usable
