"""The one table of build formats. Converter, runtime, calibration and benchmarks all read it.

Format ids are a contract (``convert-model --formats``). ``builder`` is a dotted path resolved
lazily by the converter, so reading this table never imports TensorFlow or TensorRT.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Format:
    """One build format: its id (``convert-model --formats``), precision, the runtime backend that
    runs it (``runner``), its file name in the bundle (empty for TensorRT engines: see
    :meth:`engine_file`), the converter function that builds it, and ``tolerance``, the largest
    absolute output error against the source model the converter's parity check accepts.
    """

    id: str
    precision: str  # fp32 | fp16 | int8
    runner: str  # backend that executes it: onnxruntime | litert | tensorrt
    file: str  # file name in the bundle; engines add TensorRT version + compute capability
    builder: str  # "module:function" in the converter
    tolerance: float  # max abs error vs the source model accepted by the converter's parity check
    needs_calibration: bool = False
    needs_gpu: bool = False
    default: bool = True  # built when --formats is not given
    needs_source: bool = False  # built from the source model (TensorFlow), not from the bundle's ONNX

    def engine_file(self, trt_version: str, compute_capability: str) -> str:
        """Engines are tied to the TensorRT version and the GPU: both are in the name."""
        return f"model_{self.precision}.trt{trt_version}.sm{compute_capability.replace('.', '')}.engine"


FORMATS: tuple[Format, ...] = (
    Format("onnx", "fp32", "onnxruntime", "model.onnx", "converter.builders.onnx_export:build", 1e-4, needs_source=True),
    Format("onnx-fp16", "fp16", "onnxruntime", "model_fp16.onnx", "converter.builders.onnx_fp16:build", 1e-2),
    Format("tflite-fp32", "fp32", "litert", "model_fp32.tflite", "converter.builders.tflite:build_fp32", 1e-4,
           needs_source=True),
    Format("tflite-fp16", "fp16", "litert", "model_fp16.tflite", "converter.builders.tflite:build_fp16", 1e-2,
           needs_source=True),
    Format("trt-fp16", "fp16", "tensorrt", "", "converter.builders.tensorrt:build_fp16", 1e-2, needs_gpu=True),
    # INT8 accuracy is judged on held-out calibration frames (calibration.accuracy), not by this tolerance.
    Format(
        "tflite-int8", "int8", "litert", "model_int8.tflite", "converter.builders.tflite_int8:build", 0.25,
        needs_calibration=True, default=False, needs_source=True,
    ),
    Format(
        "onnx-int8", "int8", "onnxruntime", "model_int8.qdq.onnx", "converter.builders.onnx_int8:build", 0.25,
        needs_calibration=True, default=False,
    ),
    Format(
        "trt-int8", "int8", "tensorrt", "", "converter.builders.tensorrt:build_int8", 0.25,
        needs_calibration=True, needs_gpu=True, default=False,
    ),
)

BY_ID: dict[str, Format] = {f.id: f for f in FORMATS}
DEFAULT_IDS: tuple[str, ...] = tuple(f.id for f in FORMATS if f.default)


def get(fmt_id: str) -> Format:
    """The :class:`Format` with id ``fmt_id``; ``ValueError`` listing the known ids otherwise."""
    try:
        return BY_ID[fmt_id]
    except KeyError:
        raise ValueError(f"unknown format {fmt_id!r}; known: {', '.join(BY_ID)}") from None


def parse_list(text: str) -> list[str]:
    """``"onnx,tflite-fp16"`` -> validated ids in table order (``all`` = every format).

    Raises ``ValueError`` for an unknown id or an empty list.
    """
    ids = [t.strip() for t in text.split(",") if t.strip()]
    if ids == ["all"]:
        return [f.id for f in FORMATS]
    for i in ids:
        get(i)
    if not ids:
        raise ValueError("--formats is empty; known: " + ", ".join(BY_ID))
    return [f.id for f in FORMATS if f.id in ids]
