"""TensorRT calls that are the same on every API path we support (8.6, 10.x, 11.x).

Only names present in every one of those versions' bindings may appear here
(tests/runtime/tensorrt/test_api_names.py checks it against the real binding modules).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runtime.atomic import atomic_write_bytes
from runtime.tensorrt.engine_cache import EngineLoadError
from runtime.tensorrt.shapes import EngineBuildError, resolve_shape

if TYPE_CHECKING:  # the binding's own classes when mypy has its stubs (tests/runtime/tensorrt/typed_check.py); Any otherwise
    from tensorrt import (
        Builder,
        IBuilderConfig,
        ICudaEngine,
        IExecutionContext,
        INetworkDefinition,
        OnnxParser,
        Runtime,
    )

TRT_VERSIONS = ("8.6", "10", "11")

log = logging.getLogger(__name__)
trt_log = logging.getLogger("tensorrt")

_LOGGER: Any = None  # one per process: TensorRT keeps a pointer to it in every builder/runtime


def get_logger(trt: Any) -> Any:
    """A TensorRT logger that forwards to Python ``logging`` (logger name ``tensorrt``)."""
    global _LOGGER
    if _LOGGER is None:
        severity = trt.ILogger.Severity
        levels = {
            severity.INTERNAL_ERROR: logging.CRITICAL,
            severity.ERROR: logging.ERROR,
            severity.WARNING: logging.WARNING,
            severity.INFO: logging.DEBUG,  # TensorRT's INFO is chatty: build progress lines
            severity.VERBOSE: 5,
        }

        class _LoggingBridge(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, sev: Any, msg: str) -> None:
                level = levels.get(sev, logging.INFO)
                if trt_log.isEnabledFor(level):
                    trt_log.log(level, "%s", msg)

        _LOGGER = _LoggingBridge()
    return _LOGGER


def parse_onnx(trt: Any, network: INetworkDefinition, onnx_path: Path) -> OnnxParser:
    """Parse the ONNX into ``network``. Keep the returned parser alive until the build ends:
    it owns the weights the network points to."""
    parser = trt.OnnxParser(network, get_logger(trt))
    if not parser.parse_from_file(str(onnx_path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineBuildError(f"TensorRT cannot parse {onnx_path.name}: " + "; ".join(errors or ["no detail"]))
    return parser


def create_config(trt: Any, builder: Builder, workspace_mb: int) -> IBuilderConfig:
    """A builder config with the workspace memory pool limited to ``workspace_mb`` MiB
    (``set_memory_pool_limit``).
    """
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_mb) << 20)
    return config


def attach_timing_cache(config: IBuilderConfig, path: Path | None) -> bool:
    """Load the timing cache at ``path`` into ``config`` (an empty one when absent or rejected).

    Returns whether a saved cache was used. ``ignore_mismatch=False``: a cache from another
    TensorRT version or GPU is refused by TensorRT, and then we start a fresh one.
    """
    data = path.read_bytes() if path is not None and path.is_file() else b""
    if data:
        cache = config.create_timing_cache(data)
        if cache is not None and config.set_timing_cache(cache, False):
            return True
        log.warning("timing cache %s was rejected (other TensorRT version or GPU); starting a new one", path)
    config.set_timing_cache(config.create_timing_cache(b""), False)
    return False


def save_timing_cache(config: IBuilderConfig, path: Path | None) -> None:
    """Write the config's timing cache to ``path`` atomically (nothing when ``path`` is None)."""
    if path is None:
        return
    cache = config.get_timing_cache()
    if cache is not None:
        atomic_write_bytes(path, memoryview(cache.serialize()))


def add_input_profile(
    builder: Builder, network: INetworkDefinition, config: IBuilderConfig, input_shapes: Mapping[str, Sequence[int]] | None
) -> tuple[dict[str, tuple[int, ...]], set[str]]:
    """Pin every dynamic network input to its shape in ``input_shapes`` (by tensor name; a dynamic
    batch without one becomes 1) with an optimization profile.

    Returns the static shape of each input and the names of those that were dynamic.
    ``EngineBuildError`` when ``input_shapes`` names a tensor the network lacks, or a shape
    contradicts the ONNX.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    dynamic: set[str] = set()
    wanted = dict(input_shapes or {})
    profile = builder.create_optimization_profile()
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        name = str(tensor.name)
        dims = tuple(tensor.shape)
        shape = resolve_shape(dims, wanted.pop(name, None), name)
        if any(d < 0 for d in dims):
            profile.set_shape(name, shape, shape, shape)
            dynamic.add(name)
        shapes[name] = shape
    if wanted:
        raise EngineBuildError(f"the bundle gives shapes for inputs {sorted(wanted)} that the ONNX lacks "
                               f"(its inputs: {sorted(shapes)})")
    if dynamic:
        config.add_optimization_profile(profile)
    return shapes, dynamic


def build_plan(builder: Builder, network: INetworkDefinition, config: IBuilderConfig) -> memoryview:
    """The serialized engine (``build_serialized_network``); :class:`EngineBuildError` when TensorRT
    returns None (its log, logger ``tensorrt``, says why).
    """
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineBuildError("TensorRT failed to build the engine (its log, logger 'tensorrt', says why)")
    return memoryview(plan)


def deserialize(trt: Any, data: bytes) -> tuple[Runtime, ICudaEngine]:
    """(runtime, engine). Keep the runtime referenced as long as the engine lives."""
    runtime = trt.Runtime(get_logger(trt))
    try:
        engine = runtime.deserialize_cuda_engine(data)
    except Exception as e:  # some versions raise instead of returning None
        del runtime  # dies here, while the caller's CUDA context is current, not with the traceback
        raise EngineLoadError(f"TensorRT refused the engine: {e}") from e
    if engine is None:
        del runtime
        raise EngineLoadError("TensorRT refused the engine (built by another TensorRT version or GPU, or corrupt)")
    return runtime, engine


def create_context(engine: ICudaEngine) -> IExecutionContext:
    """A new execution context; :class:`EngineLoadError` when TensorRT returns None (likely out of GPU
    memory).
    """
    context = engine.create_execution_context()
    if context is None:
        raise EngineLoadError("TensorRT could not create an execution context (out of GPU memory?)")
    return context
