"""``trt-fp16`` / ``trt-int8``: a TensorRT engine for this machine's TensorRT version and GPU.

Built from the bundle's ONNX alone (never TensorFlow), so the car can make its own engine with
``convert-model --bundle DIR --formats trt-fp16``. Which ONNX depends on the TensorRT version
(runtime.tensorrt.api_paths): FP32 ONNX + precision flags on 8.x/10.x, the FP16 or Q/DQ ONNX on 11.x,
the Q/DQ ONNX for INT8 on 10.x, and an entropy calibrator with a cache on 8.x. The timing cache and
calibration caches live in ``options.trt_cache_dir``, by default ``trt-cache/`` next to the bundle.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from converter.builders.base import BuildContext, BuildError, BuildResult, BuildSkipped
from runtime.manifest import BuildEntry, BundleError, verified_path
from runtime.tensorrt.api_paths import needs_calibrator, select_source
from runtime.tensorrt.builder import build_engine
from runtime.tensorrt.engine_cache import timing_cache_name
from runtime.tensorrt.gpu import GpuInfo, GpuUnavailable, detect_gpu
from runtime.tensorrt.shapes import EngineBuildError, engine_input_shapes
from runtime.tensorrt.version import TensorRTUnavailable, UnsupportedTensorRT, api_path, installed_version

log = logging.getLogger(__name__)


def build_fp16(ctx: BuildContext) -> BuildResult:
    return _build(ctx, "fp16")


def build_int8(ctx: BuildContext) -> BuildResult:
    return _build(ctx, "int8")


def trt_cache_dir(ctx: BuildContext) -> Path:
    """Timing and calibration caches: ``--trt-cache-dir``, else ``trt-cache/`` beside the bundle
    (the staging directory sits beside the bundle's final place, so they share a parent)."""
    return Path(ctx.options.trt_cache_dir) if ctx.options.trt_cache_dir else ctx.staging.parent / "trt-cache"


def _environment() -> tuple[str, str, GpuInfo]:
    try:
        version = installed_version()
        api = api_path(version)
        gpu = detect_gpu()
    except (TensorRTUnavailable, UnsupportedTensorRT, GpuUnavailable) as e:
        raise BuildSkipped(str(e)) from e
    return version, api, gpu


def _build(ctx: BuildContext, precision: str) -> BuildResult:
    version, api, gpu = _environment()
    try:
        src = select_source(ctx.manifest, precision, api)
        onnx_path = verified_path(ctx.staging, src)
        input_shapes = engine_input_shapes(ctx.manifest, src.io)
    except (BundleError, ValueError) as e:
        raise BuildError(str(e)) from e
    cache_dir = trt_cache_dir(ctx)
    engine_name = ctx.fmt.engine_file(version, gpu.compute_capability)
    calibrator: Any = None
    extra: dict[str, Any] = {}
    if needs_calibrator(api, precision):
        calibrator, extra = _calibrator(ctx, version, src, cache_dir, input_shapes)
    try:
        info = build_engine(
            onnx_path, precision, ctx.staging / engine_name, ctx.options.trt_workspace_mb,
            cache_dir / timing_cache_name(version, gpu.compute_capability), calibrator,
            input_shapes=input_shapes, gpu=gpu,
        )
    except EngineBuildError as e:
        raise BuildError(str(e)) from e
    finally:
        if calibrator is not None:
            calibrator.release()
    return BuildResult(
        file=engine_name,
        io=dict(src.io),  # TensorRT keeps the ONNX's tensor names
        toolchain={"tensorrt": version},
        target={"tensorrt": version, "compute_capability": gpu.compute_capability, "device": gpu.device},
        extra={
            "api_path": api, "source_build": src.format, "source_sha256": src.sha256,
            "build_seconds": info.build_seconds, "timing_cache_used": info.timing_cache_used, **extra,
        },
    )


def _calibrator(
    ctx: BuildContext, version: str, src: BuildEntry, cache_dir: Path, input_shapes: dict[str, tuple[int, ...]]
) -> tuple[Any, dict[str, Any]]:
    """TensorRT 8.x INT8: an entropy calibrator on the calibration set, with a validated cache.

    ``ctx.calibration`` is ``{logical input name: (N, ...) float32}`` for every model input; the
    calibrator gets it keyed by the ONNX's own tensor names.
    """
    from calibration.trt_calibrator import CalibrationCacheKey, cache_paths, make_entropy_calibrator

    if ctx.calibration is None or not ctx.calibration_id:
        raise BuildError(f"{ctx.fmt.id} on TensorRT {version} calibrates on real frames: pass --calibration DIR")
    key = CalibrationCacheKey(version, ctx.calibration_id, src.sha256, input_shapes)
    cache_path, _ = cache_paths(cache_dir, src.sha256)
    # Every model input's samples, by logical name -> by this ONNX's tensor names.
    unknown = sorted(set(ctx.calibration) - set(src.io))
    if unknown:
        raise BuildError(f"calibration data for {unknown}, which the {src.format} build does not name")
    data = {src.io[k].name: v for k, v in ctx.calibration.items()}
    try:
        calibrator = make_entropy_calibrator(data, cache_path, key)
    except ValueError as e:
        raise BuildError(str(e)) from e
    n = len(next(iter(data.values()))) if data else 0
    return calibrator, {"calibration_cache": str(cache_path), "calibration_sha256": ctx.calibration_id,
                        "calibration_frames": n}
