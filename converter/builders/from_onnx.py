"""Builds for sources whose graph is ONNX (PyTorch, ONNX): the FP32 ONNX they export, and the
SavedModel that ``onnx2tf`` makes of it for the TFLite builders. Each is made once per conversion,
on first use, so asking for ``tflite-fp16`` alone still works."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from converter.builders.base import BuildContext, BuildError

OPSET_MIN_TORCH = 18  # torch.onnx.export (dynamo) writes opset 18 at least


def has_onnx_graph(source: Any) -> bool:
    """True for sources that hand out an ONNX graph instead of a SavedModel."""
    return source is not None and callable(getattr(source, "onnx_path", None))


def source_onnx(ctx: BuildContext) -> Path:
    """The source's FP32 ONNX (batch 1, names by logical name); BuildError naming the op otherwise."""
    from converter.errors import ConverterError
    from converter.sources.torch_source import ExportError

    opset = max(ctx.options.opset, OPSET_MIN_TORCH) if getattr(ctx.source, "flavor", "") == "pytorch" else ctx.options.opset
    try:
        return Path(ctx.source.onnx_path(opset))  # type: ignore[union-attr]
    except (ExportError, ConverterError) as e:
        raise BuildError(str(e)) from None


def source_saved_model(ctx: BuildContext) -> Path:
    """onnx2tf's SavedModel of the source's ONNX, in the source's work folder (made once)."""
    from converter.builders.onnx_tf import saved_model_from_onnx

    onnx_file = source_onnx(ctx)
    cached = getattr(ctx.source, "_tf_saved_model", None)
    if cached is not None:
        if isinstance(cached, BuildError):
            raise cached
        return Path(cached)
    try:
        out = saved_model_from_onnx(onnx_file, onnx_file.parent / "onnx2tf_saved_model")
    except BuildError as e:
        ctx.source._tf_saved_model = e  # type: ignore[union-attr]  # fail every TFLite format alike, once
        raise
    ctx.source._tf_saved_model = out  # type: ignore[union-attr]
    return out


def toolchain(ctx: BuildContext, tflite: bool = False) -> dict[str, str]:
    import importlib.metadata as md

    tc = dict(getattr(ctx.source, "toolchain", dict)())
    if tflite:
        tc["onnx2tf"] = md.version("onnx2tf")
    return tc
