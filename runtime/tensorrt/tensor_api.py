"""Execution with the name-based tensor API of TensorRT 10.x and 11.x (``execute_async_v3``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.tensorrt.shapes import EngineBuildError, IOTensor

if TYPE_CHECKING:  # the binding's own classes when mypy has its stubs (tests/runtime/tensorrt/typed_check.py); Any otherwise
    from tensorrt import ICudaEngine, IExecutionContext

TRT_VERSIONS = ("10", "11")


def io_tensors(trt: Any, engine: ICudaEngine) -> list[IOTensor]:
    """Every I/O tensor of ``engine`` by the name-based tensor API (``num_io_tensors``, ``get_tensor_*``;
    https://docs.nvidia.com/deeplearning/tensorrt/11.4.1/api/migration/tensorrt-8x-to-10x-python-api-patterns.html).
    """
    tensors = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        tensors.append(
            IOTensor(
                name=name,
                is_input=engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                shape=tuple(engine.get_tensor_shape(name)),
                dtype=np.dtype(trt.nptype(engine.get_tensor_dtype(name))),
                index=i,
            )
        )
    return tensors


def set_input_shapes(
    context: IExecutionContext, tensors: list[IOTensor], shapes: dict[str, tuple[int, ...]]
) -> dict[str, tuple[int, ...]]:
    """Fix dynamic input shapes; return every tensor's resolved shape."""
    for t in tensors:
        if t.is_input and any(d < 0 for d in t.shape) and not context.set_input_shape(t.name, shapes[t.name]):
            raise EngineBuildError(f"engine rejects input shape {shapes[t.name]} for {t.name}")
    return {t.name: tuple(context.get_tensor_shape(t.name)) for t in tensors}


def bind(context: IExecutionContext, tensors: list[IOTensor], addresses: dict[str, int]) -> Callable[[int], bool]:
    """Set each tensor's device address (``addresses``: tensor name -> device pointer) on ``context``;
    returns ``execute(stream_handle) -> bool`` calling ``execute_async_v3``. :class:`EngineBuildError`
    when TensorRT refuses an address.
    """
    for t in tensors:
        if not context.set_tensor_address(t.name, int(addresses[t.name])):
            raise EngineBuildError(f"TensorRT refused the device address for {t.name}")

    def execute(stream_handle: int) -> bool:
        return bool(context.execute_async_v3(stream_handle))

    return execute
