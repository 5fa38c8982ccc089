"""Which ONNX each TensorRT API path builds an engine from, and which modules drive it (pure Python).

| API path | fp16 engine from            | int8 engine from                         |
|----------|-----------------------------|------------------------------------------|
| 8        | model.onnx + FP16 flag      | model.onnx + INT8 flag + entropy calibrator |
| 10       | model.onnx + FP16 flag      | model_int8.qdq.onnx + INT8/FP16 flags    |
| 11       | model_fp16.onnx (strongly typed) | model_int8.qdq.onnx (strongly typed) |
"""

from __future__ import annotations

import importlib
from types import ModuleType

from runtime.manifest import BuildEntry, BundleError, Manifest

SOURCE_FORMAT: dict[tuple[str, str], str] = {
    ("8", "fp16"): "onnx",
    ("8", "int8"): "onnx",
    ("10", "fp16"): "onnx",
    ("10", "int8"): "onnx-int8",
    ("11", "fp16"): "onnx-fp16",
    ("11", "int8"): "onnx-int8",
}
PRECISIONS = ("fp16", "int8")


def source_format(api: str, precision: str) -> str:
    """The bundle format id an engine of ``precision`` is built from on API path ``api`` (the table above);
    ``ValueError`` otherwise.
    """
    try:
        return SOURCE_FORMAT[(api, precision)]
    except KeyError:
        raise ValueError(f"no TensorRT source for API path {api!r} and precision {precision!r}") from None


def needs_calibrator(api: str, precision: str) -> bool:
    """Only TensorRT 8.x calibrates; 10/11 read the scales from the Q/DQ ONNX."""
    return api == "8" and precision == "int8"


def select_source(manifest: Manifest, precision: str, api: str) -> BuildEntry:
    """The bundle's ONNX build this API path needs, or a :class:`BundleError` naming the fix."""
    fmt = source_format(api, precision)
    for b in manifest.builds:
        if b.format == fmt:
            return b
    raise BundleError(
        f"TensorRT {api}.x builds {precision} engines from the {fmt!r} build, which this bundle lacks; "
        f"re-convert with --formats {fmt}"
    )


def build_module(api: str) -> ModuleType:
    """runtime.tensorrt.api_v8 / api_v10 / api_v11."""
    if api not in ("8", "10", "11"):
        raise ValueError(f"unknown TensorRT API path {api!r}")
    return importlib.import_module(f"runtime.tensorrt.api_v{api}")


def execution_module(api: str) -> ModuleType:
    """The 8.x bindings API, or the tensor API of 10.x/11.x."""
    if api == "8":
        return importlib.import_module("runtime.tensorrt.api_v8")
    if api in ("10", "11"):
        return importlib.import_module("runtime.tensorrt.tensor_api")
    raise ValueError(f"unknown TensorRT API path {api!r}")
