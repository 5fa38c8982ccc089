"""``tflite-int8``: full-integer TFLite (every op int8) calibrated on the calibration set.

I/O is **int8** (signed), not uint8: the quantized graph works in int8 inside, so int8 I/O adds
no quantize/dequantize ops at the edges, and XNNPACK's signed int8 kernels are its fastest on
ARM. The input's scale and zero point are recorded in the manifest (``io``), and the runtime's
backends quantize the float frame with them (``runtime.backends.base``). With the usual
``scale = 1/255`` preprocessing, calibration finds an input range of about [0, 1], so the int8
input (scale ~1/255, zero point -128) carries the camera's 256 levels without loss.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from converter.builders.base import BuildContext, BuildError, BuildResult
from converter.builders.tflite import convert, converter_for

log = logging.getLogger(__name__)

IO_DTYPE = "int8"


def representative_dataset(feeds: dict[str, np.ndarray]) -> Any:
    """LiteRT's calibration feed: one sample at a time (batch 1, as the car runs), every input by name."""
    n = len(next(iter(feeds.values())))

    def gen() -> Iterator[dict[str, np.ndarray]]:
        for i in range(n):
            yield {k: np.ascontiguousarray(v[i : i + 1], np.float32) for k, v in feeds.items()}

    return gen


def build(ctx: BuildContext) -> BuildResult:
    import tensorflow as tf

    feeds = ctx.calibration
    if not feeds or len(next(iter(feeds.values()))) == 0:
        raise BuildError("tflite-int8 calibrates on real frames: pass --calibration DIR (make one with rc-calibrate)")
    for spec in ctx.manifest.inputs:
        if tuple(feeds[spec.name].shape[1:]) != tuple(spec.shape[1:]):
            raise BuildError(f"calibration data for {spec.name} is {tuple(feeds[spec.name].shape[1:])}, "
                             f"the model takes {tuple(spec.shape[1:])}")
    frames = feeds[ctx.manifest.camera_input.name]
    conv = converter_for(ctx)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = representative_dataset(feeds)
    # Full integer: an op without an int8 kernel fails the build instead of silently staying float.
    conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    conv.inference_input_type = tf.int8
    conv.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # LiteRT's converter calibrates through the deprecated tf.lite.Interpreter internally.
        warnings.filterwarnings("ignore", message=".*tf.lite.Interpreter is deprecated", category=UserWarning)
        result = convert(ctx, conv)
    bad = {k: io.dtype for k, io in result.io.items() if io.dtype != IO_DTYPE or not io.quantized}
    if bad:
        (ctx.staging / result.file).unlink(missing_ok=True)
        raise BuildError(f"tflite-int8: tensors {bad} are not quantized {IO_DTYPE}; the converter left them float")
    result.extra.update({
        "io_dtype": IO_DTYPE,
        "quantization": "full integer (TFLITE_BUILTINS_INT8), per-channel weights, LiteRT converter",
        "calibration_frames": len(frames),
        "calibration_sha256": ctx.calibration_id,
    })
    return result
