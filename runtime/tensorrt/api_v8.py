"""TensorRT 8.6 (JetPack 6.0, x86): explicit-batch flag, precision flags, entropy calibrator,
and the bindings execution API (``execute_async_v2``).

TensorRT 8.5 (JetPack 5) is not driven: JetPack 5's Python 3.8 cannot run this package (3.10+).
Names used here were removed later (``EXPLICIT_BATCH`` and calibrators in 11, the bindings API in
10): they must stay on this path only (tests/runtime/tensorrt/test_api_names.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.tensorrt.shapes import EngineBuildError, IOTensor, with_batch

if TYPE_CHECKING:  # the binding's own classes when mypy has its stubs (tests/runtime/tensorrt/typed_check.py); Any otherwise
    from tensorrt import Builder, IBuilderConfig, ICudaEngine, IExecutionContext, INetworkDefinition

TRT_VERSIONS = ("8.6",)


def create_network(trt: Any, builder: Builder) -> INetworkDefinition:
    """A network with the ``EXPLICIT_BATCH`` flag (required for ONNX on 8.x;
    https://docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-861/api/python_api/infer/Core/Builder.html).
    """
    return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH))


def configure_precision(
    trt: Any,
    builder: Builder,
    config: IBuilderConfig,
    precision: str,
    calibrator: Any,
    input_shapes: dict[str, tuple[int, ...]],
    dynamic: set[str],
) -> None:
    """``BuilderFlag.FP16`` always; for int8 also ``BuilderFlag.INT8`` with ``calibrator`` (an entropy
    calibrator, :mod:`calibration.trt_calibrator`) and, for dynamic inputs, a calibration profile at
    the calibrator's batch. :class:`EngineBuildError` for int8 without a calibrator or a refused profile.
    """
    # FP16 stays on for INT8 builds: layers without an INT8 kernel fall back to FP16, not FP32.
    config.set_flag(trt.BuilderFlag.FP16)
    if precision != "int8":
        return
    if calibrator is None:
        raise EngineBuildError(
            "an INT8 engine on TensorRT 8.x needs calibration: give a calibration set "
            "(--calibration DIR) or a valid calibration cache"
        )
    config.set_flag(trt.BuilderFlag.INT8)
    # The calibrator sizes its batches to the network's (a fixed batch must be matched exactly)
    # and checks that it has data for every input.
    batch = int(calibrator.prepare(input_shapes, dynamic))
    config.int8_calibrator = calibrator
    if dynamic:
        # Calibration runs with the calibrator's batch, so it gets a profile of its own.
        profile = builder.create_optimization_profile()
        for name in sorted(dynamic):
            shape = with_batch(input_shapes[name], batch)
            profile.set_shape(name, shape, shape, shape)
        if not config.set_calibration_profile(profile):
            raise EngineBuildError(f"TensorRT refused the calibration profile (batch {batch} for {sorted(dynamic)})")


def io_tensors(trt: Any, engine: ICudaEngine) -> list[IOTensor]:
    """Every binding of ``engine`` (bindings API: name, direction, shape with -1 for dynamic dims, numpy
    dtype, index).
    """
    tensors = []
    for i in range(engine.num_bindings):
        tensors.append(
            IOTensor(
                name=engine.get_binding_name(i),
                is_input=bool(engine.binding_is_input(i)),
                shape=tuple(engine.get_binding_shape(i)),
                dtype=np.dtype(trt.nptype(engine.get_binding_dtype(i))),
                index=i,
            )
        )
    return tensors


def set_input_shapes(
    context: IExecutionContext, tensors: list[IOTensor], shapes: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Fix dynamic input shapes; return every tensor's resolved shape."""
    for t in tensors:
        if t.is_input and any(d < 0 for d in t.shape) and not context.set_binding_shape(t.index, shapes[t.name]):
            raise EngineBuildError(f"engine rejects input shape {shapes[t.name]} for {t.name}")
    return {t.name: tuple(context.get_binding_shape(t.index)) for t in tensors}


def bind(context: IExecutionContext, tensors: list[IOTensor], addresses: dict[str, int]) -> Callable[[int], bool]:
    """Bind the device buffers (``addresses``: tensor name -> device pointer) in binding order; returns
    ``execute(stream_handle) -> bool`` calling ``execute_async_v2``.
    """
    bindings = [0] * len(tensors)
    for t in tensors:
        bindings[t.index] = int(addresses[t.name])

    def execute(stream_handle: int) -> bool:
        return bool(context.execute_async_v2(bindings, stream_handle))

    return execute
