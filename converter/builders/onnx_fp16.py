"""``onnx-fp16``: explicit-precision FP16 ONNX (for strongly typed TensorRT 11, and FP16 on ORT).

I/O stays float32 (``keep_io_types``) so the runtime feeds the same array to every build.
"""

from __future__ import annotations

from converter.builders.base import BuildContext, BuildError, BuildResult
from converter.builders.onnx_io import onnx_io, onnx_toolchain


def build(ctx: BuildContext) -> BuildResult:
    import onnx
    import onnxruntime
    from onnxruntime.transformers.float16 import convert_float_to_float16

    if not ctx.manifest.has("onnx"):
        raise BuildError("onnx-fp16 is made from the FP32 ONNX: add 'onnx' to --formats")
    src_entry = ctx.manifest.build("onnx")
    src = ctx.staging / src_entry.file
    model16 = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    out = ctx.staging / ctx.fmt.file
    onnx.save(model16, str(out))
    tc = onnx_toolchain(out)
    tc["onnxruntime"] = onnxruntime.__version__
    return BuildResult(file=ctx.fmt.file, io=onnx_io(out, ctx.manifest), toolchain=tc,
                       extra={"source_build": "onnx", "source_sha256": src_entry.sha256})  # what it derives from
