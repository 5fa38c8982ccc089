"""``tflite-fp32`` and ``tflite-fp16`` from the SavedModel export (LiteRT converter)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

from converter.builders.base import BuildContext, BuildError, BuildResult
from converter.builders.from_onnx import has_onnx_graph, source_saved_model
from converter.builders.from_onnx import toolchain as source_toolchain
from runtime.manifest import TensorIO

log = logging.getLogger(__name__)
SIGNATURE = "serving_default"
# LiteRT's MLIR error names unsupported ops as "'tf.Op' op is neither a custom op nor a flex op".
_OPS = re.compile(r"'tf\.(\w+)' op is neither a custom op nor a flex op")
# MLIR's locations name each op and the Keras layer's scope, e.g. for a recurrent layer (a While
# loop over a TensorList, which the builtin op set cannot lower)
# fused["TensorListReserve:", "functional_1/LSTM_fin_1/TensorArrayV2_1@__inference_..."], or
# fused["MaxPool3D:", "functional_1/pool3d_a_1/MaxPool3D@__inference___call___128"].
_OP_LOC = re.compile(r'fused\["(\w+):", "([^"@]+)')


def build_fp32(ctx: BuildContext) -> BuildResult:
    return _build(ctx, configure=lambda c: None)


def build_fp16(ctx: BuildContext) -> BuildResult:
    import tensorflow as tf

    def fp16(c: Any) -> None:
        c.optimizations = [tf.lite.Optimize.DEFAULT]
        c.target_spec.supported_types = [tf.float16]

    return _build(ctx, configure=fp16)


def converter_for(ctx: BuildContext) -> Any:
    import tensorflow as tf

    if has_onnx_graph(ctx.source):  # PyTorch / ONNX sources: onnx2tf's SavedModel of their ONNX
        return tf.lite.TFLiteConverter.from_saved_model(str(source_saved_model(ctx)), signature_keys=[SIGNATURE])
    if ctx.saved_model_dir is None:
        raise BuildError(f"{ctx.fmt.id} needs the source model (a SavedModel export); convert from the registry")
    return tf.lite.TFLiteConverter.from_saved_model(str(ctx.saved_model_dir), signature_keys=[SIGNATURE])


def convert(ctx: BuildContext, converter: Any) -> BuildResult:
    """Run a configured LiteRT converter, write the file, and record its signature I/O."""
    try:
        blob = converter.convert()
    except Exception as e:  # the TFLite converter raises ConverterError with the op list in its text
        text = str(e)
        ops = sorted(set(_OPS.findall(text)))
        if ops:
            raise BuildError(unsupported_ops_refusal(text, ops, ctx.source)) from None
        if "tensor list ops" in text:
            raise BuildError(recurrent_refusal(text, ctx.source)) from None
        lines = [ln for ln in text.strip().splitlines() if ln.strip()] or [type(e).__name__]
        raise BuildError(f"TFLite conversion failed: {lines[-1][:200]}") from None
    out = ctx.staging / ctx.fmt.file
    out.write_bytes(blob)
    return BuildResult(
        file=ctx.fmt.file, io=signature_io(out, ctx),
        toolchain={**_toolchain(), **(source_toolchain(ctx, tflite=True) if has_onnx_graph(ctx.source) else {})},
        extra={"signature": SIGNATURE},
    )


def _layers_at(text: str, ops: list[str], source: Any) -> list[str]:
    """The source's Keras layers at the MLIR locations of ``ops``."""
    scopes = {seg for op, path in _OP_LOC.findall(text) if op in ops for seg in path.split("/")}
    model = getattr(source, "model", None)
    known = [ly.name for ly in getattr(model, "layers", [])]
    return [n for n in known if any(s == n or re.fullmatch(re.escape(n) + r"_\d+", s) for s in scopes)]


def unsupported_ops_refusal(text: str, ops: list[str], source: Any) -> str:
    """One line for ops TFLite's builtin set lacks, naming the Keras layer(s) that hold them (from the
    converter's MLIR locations) and the fix; a 3D op (donkeycar's 3D-CNN pilot) gets its own hint."""
    names = _layers_at(text, ops, source)
    where = f" (in layer(s) {', '.join(names)})" if names else ""
    hint = ""
    if any(op.endswith("3D") for op in ops):
        hint = ("; for a 3D pooling over frames with depth 1, TimeDistributed(MaxPooling2D) is the same math and "
                "TFLite has it")
    return (f"TFLite (builtin ops) cannot express op(s) {', '.join(ops)}{where}; build onnx/onnx-fp16/trt-* for this "
            f"model (the car runs them with ONNX Runtime or TensorRT), or replace the layer(s) with ones TFLite has"
            f"{hint}")


def recurrent_refusal(text: str, source: Any) -> str:
    """One line for a model whose recurrent loop TFLite's builtin ops cannot run, naming the layer(s).

    The layer names come from the converter's MLIR locations, matched against the Keras model's own
    layer names when the source has one (Keras suffixes name scopes with ``_1``).
    """
    names = _layers_at(text, [op for op, _ in _OP_LOC.findall(text) if op.startswith("TensorList")], source)
    what = f"layer(s) {', '.join(names)}" if names else "a recurrent layer (LSTM/GRU/RNN)"
    return (
        f"TFLite (builtin ops) cannot run the loop of {what} (dynamic tensor-list ops); "
        "build onnx/onnx-fp16/trt-* for this model, or re-save it with the layer's unroll=True "
        "(a fixed sequence length) for TFLite"
    )


def _build(ctx: BuildContext, configure: Any) -> BuildResult:
    conv = converter_for(ctx)
    configure(conv)
    return convert(ctx, conv)


def signature_io(path: Path, ctx: BuildContext) -> dict[str, TensorIO]:
    """Logical name -> signature tensor (by name), with quantization params for integer tensors."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(path))
    runner = it.get_signature_runner(SIGNATURE)
    ins, outs = runner.get_input_details(), runner.get_output_details()
    io: dict[str, TensorIO] = {}
    pairs = [*((i.name, ins) for i in ctx.manifest.inputs), *((n, outs) for n in ctx.manifest.output_names())]
    for logical, table in pairs:
        if logical not in table:
            raise BuildError(f"{path.name}: signature has no tensor {logical!r} (it has {sorted(table)})")
        d = table[logical]
        dtype = d["dtype"].__name__ if hasattr(d["dtype"], "__name__") else str(d["dtype"])
        scale, zp = (d.get("quantization") or (0.0, 0))[:2]
        quant = dtype in ("int8", "uint8", "int16") and scale
        io[logical] = TensorIO(
            name=logical, dtype=dtype, scale=float(scale) if quant else None, zero_point=int(zp) if quant else None
        )
    return io


def _toolchain() -> dict[str, str]:
    import importlib.metadata as md

    import tensorflow as tf

    return {"tensorflow": tf.__version__, "ai-edge-litert": md.version("ai-edge-litert")}
