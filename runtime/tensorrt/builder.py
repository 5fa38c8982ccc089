"""Build a TensorRT engine from an ONNX file, the way the installed TensorRT version wants it.

The version picks the API path (runtime.tensorrt.version.api_path); each path's version-specific
calls live in api_v8.py / api_v10.py / api_v11.py, the shared ones in api_common.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.atomic import atomic_write_bytes
from runtime.manifest import sha256_file
from runtime.tensorrt import api_common
from runtime.tensorrt.api_paths import PRECISIONS, build_module, needs_calibrator
from runtime.tensorrt.engine_cache import DEFAULT_WORKSPACE_MB
from runtime.tensorrt.gpu import GpuInfo, detect_gpu
from runtime.tensorrt.shapes import EngineBuildError
from runtime.tensorrt.version import api_path, import_tensorrt

if TYPE_CHECKING:  # the binding's own classes when mypy has its stubs (tests/runtime/tensorrt/typed_check.py); Any otherwise
    from tensorrt import Builder

TRT_VERSIONS = ("8.6", "10", "11")

log = logging.getLogger(__name__)


@dataclass
class EngineInfo:
    """What :func:`build_engine` made: the engine ``path``, TensorRT version and API path, precision, the
    GPU (compute capability, device), sha256 of the ONNX and the engine, ``bytes``, the static input
    shapes it was built for, ``build_seconds`` (s) and whether a saved timing cache was used.
    """

    path: Path
    tensorrt: str
    api_path: str
    precision: str
    compute_capability: str
    device: str
    onnx_sha256: str
    engine_sha256: str
    bytes: int
    input_shapes: dict[str, list[int]]
    build_seconds: float
    timing_cache_used: bool
    gpu: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The fields as JSON-able values (the engine cache's sidecar ``build`` entry)."""
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def build_engine(
    onnx_path: str | Path,
    precision: str,
    engine_path: str | Path,
    workspace_mb: int = DEFAULT_WORKSPACE_MB,
    timing_cache_path: str | Path | None = None,
    calibrator: Any = None,
    *,
    input_shapes: Mapping[str, Sequence[int]] | None = None,
    gpu: GpuInfo | None = None,
) -> EngineInfo:
    """Build ``onnx_path`` into a serialized engine at ``engine_path`` (written atomically).

    ``precision`` is ``"fp16"`` or ``"int8"``; the ONNX must be the one the installed version's
    path expects (see runtime.tensorrt.api_paths). ``calibrator`` is for INT8 on TensorRT 8.x only.
    ``input_shapes`` fixes dynamic input dimensions by input tensor name (default: batch 1). The
    timing cache at ``timing_cache_path`` is loaded when valid and saved after the build.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    tc_path = Path(timing_cache_path) if timing_cache_path is not None else None
    trt = import_tensorrt()
    version = str(trt.__version__)
    api = api_path(version)
    if calibrator is None and needs_calibrator(api, precision):
        raise EngineBuildError("INT8 on TensorRT 8.x needs an entropy calibrator (calibration.trt_calibrator)")
    gpu = gpu or detect_gpu()
    mod = build_module(api)
    log.info("building %s TensorRT %s engine from %s (API path %s, %s sm%s)", precision, version,
             onnx_path.name, api, gpu.device, gpu.compute_capability)

    t0 = time.perf_counter()
    builder: Builder = trt.Builder(api_common.get_logger(trt))
    network = mod.create_network(trt, builder)
    parser = api_common.parse_onnx(trt, network, onnx_path)
    config = api_common.create_config(trt, builder, workspace_mb)
    timing_used = api_common.attach_timing_cache(config, tc_path)
    shapes, dynamic = api_common.add_input_profile(builder, network, config, input_shapes)
    mod.configure_precision(trt, builder, config, precision, calibrator, shapes, dynamic)
    plan = api_common.build_plan(builder, network, config)
    if calibrator is not None:
        calibrator.verify()  # TensorRT swallows errors raised inside the calibrator's callbacks
    atomic_write_bytes(engine_path, plan)
    api_common.save_timing_cache(config, tc_path)
    seconds = time.perf_counter() - t0
    del parser  # held until here: it owns the network's weights during the build

    info = EngineInfo(
        path=engine_path, tensorrt=version, api_path=api, precision=precision,
        compute_capability=gpu.compute_capability, device=gpu.device, onnx_sha256=sha256_file(onnx_path),
        engine_sha256=sha256_file(engine_path), bytes=engine_path.stat().st_size,
        input_shapes={k: list(v) for k, v in shapes.items()}, build_seconds=round(seconds, 3),
        timing_cache_used=timing_used, gpu=gpu.to_dict(),
    )
    log.info("built %s in %.1f s (%d bytes, timing cache %s)", engine_path.name, seconds, info.bytes,
             "reused" if timing_used else "new")
    return info
