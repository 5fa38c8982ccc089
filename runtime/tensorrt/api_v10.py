"""TensorRT 10.x (JetPack 6): explicit batch is implied, precision by builder flags.

FP16 engines come from the FP32 ONNX with ``BuilderFlag.FP16``; INT8 engines come from the Q/DQ
ONNX (explicit quantization: the scales are in the graph, so no calibrator). A weakly typed Q/DQ
network still needs the INT8 flag, and FP16 lets the layers left unquantized run in half precision.
Execution uses the tensor API (runtime/tensorrt/tensor_api.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.tensorrt.shapes import EngineBuildError

if TYPE_CHECKING:  # the binding's own classes when mypy has its stubs (tests/runtime/tensorrt/typed_check.py); Any otherwise
    from tensorrt import Builder, IBuilderConfig, INetworkDefinition

TRT_VERSIONS = ("10",)


def create_network(trt: Any, builder: Builder) -> INetworkDefinition:
    """An explicit-batch network (flags 0: ``EXPLICIT_BATCH`` is deprecated and ignored from 10.0;
    https://docs.nvidia.com/deeplearning/tensorrt/11.4.1/api/migration/tensorrt-8x-to-10x-python-api-patterns.html).
    """
    return builder.create_network(0)  # EXPLICIT_BATCH is deprecated and ignored from 10.0


def configure_precision(
    trt: Any,
    builder: Builder,
    config: IBuilderConfig,
    precision: str,
    calibrator: Any,
    input_shapes: dict[str, tuple[int, ...]],
    dynamic: set[str],
) -> None:
    """``BuilderFlag.FP16``, plus ``BuilderFlag.INT8`` for int8 (the Q/DQ ONNX carries the scales).
    :class:`EngineBuildError` when given a calibrator: 10.x builds INT8 from ``model_int8.qdq.onnx``.
    """
    if calibrator is not None:
        raise EngineBuildError(
            "TensorRT 10 builds INT8 engines from the Q/DQ ONNX (model_int8.qdq.onnx), not with a calibrator"
        )
    config.set_flag(trt.BuilderFlag.FP16)
    if precision == "int8":
        config.set_flag(trt.BuilderFlag.INT8)
