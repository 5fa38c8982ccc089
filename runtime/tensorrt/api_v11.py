"""TensorRT 11.x (JetPack 7): every network is strongly typed; there are no precision flags and no
calibrators. Precision lives in the ONNX: ``model_fp16.onnx`` for FP16 engines,
``model_int8.qdq.onnx`` (Q/DQ nodes) for INT8. Execution uses the tensor API (tensor_api.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from runtime.tensorrt.shapes import EngineBuildError

if TYPE_CHECKING:  # the binding's own classes when mypy has its stubs (tests/runtime/tensorrt/typed_check.py); Any otherwise
    from tensorrt import Builder, IBuilderConfig, INetworkDefinition

TRT_VERSIONS = ("11",)


def create_network(trt: Any, builder: Builder) -> INetworkDefinition:
    """A strongly typed network (``STRONGLY_TYPED``: always on and ignored in 11.x, kept to state the intent;
    https://docs.nvidia.com/deeplearning/tensorrt/11.0.0/_static/python-api/infer/Core/Builder.html).
    """
    # Strong typing is always on in 11.x; the flag is accepted and states the intent.
    return builder.create_network(1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED))


def configure_precision(
    trt: Any,
    builder: Builder,
    config: IBuilderConfig,
    precision: str,
    calibrator: Any,
    input_shapes: dict[str, tuple[int, ...]],
    dynamic: set[str],
) -> None:
    """Nothing to set: the ONNX chosen for the precision carries it. :class:`EngineBuildError` when given a
    calibrator (11.x has none).
    """
    if calibrator is not None:
        raise EngineBuildError("TensorRT 11 has no INT8 calibrators: INT8 comes from the Q/DQ ONNX")
    # Nothing to set: the ONNX chosen for this precision (runtime.tensorrt.api_paths) carries it.
