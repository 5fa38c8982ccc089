"""The converter's own build steps applied to one ONNX file, outside a bundle, and each result run
by its real runtime (ONNX Runtime, LiteRT), for the perception source tests: which builds the
perception fixtures' ops allow, and how far each lands from the FP32 ONNX.

Each helper calls the same code the format builders call (``onnxruntime.transformers.float16``
with float32 I/O as ``onnx-fp16``; ``converter.builders.onnx_int8._quantize`` as ``onnx-int8``;
``converter.builders.onnx_tf.saved_model_from_onnx`` then LiteRT's converter as the ``tflite-*``
builds), so a failure here is the failure a conversion would report.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

SIGNATURE = "serving_default"


def run_onnx(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """{input: (N, ...) float32} -> {output: (N, ...)}, one sample at a time (batch-1 graphs)."""
    import onnxruntime as ort

    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    n = len(next(iter(feeds.values())))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in names}
    for i in range(n):
        ys = sess.run(names, {k: v[i:i + 1] for k, v in feeds.items()})
        for k, y in zip(names, ys, strict=True):
            parts[k].append(np.asarray(y, np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def onnx_fp16(src: Path, dest: Path) -> Path:
    """FP16 weights and activations, float32 I/O (the ``onnx-fp16`` build)."""
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    onnx.save(convert_float_to_float16(onnx.load(str(src)), keep_io_types=True), str(dest))
    return dest


def onnx_int8(src: Path, dest: Path, feeds: dict[str, np.ndarray]) -> Path:
    """Q/DQ INT8 calibrated on ``feeds`` (the ``onnx-int8`` build's own quantizer and settings)."""
    from converter.builders.onnx_int8 import FrameReader, _quantize

    _quantize(src, dest, FrameReader(feeds))
    return dest


def tflite(src: Path, dest: Path, mode: str, feeds: dict[str, np.ndarray] | None = None) -> Path:
    """``mode`` fp32 | fp16 | int8 (full integer, int8 I/O, calibrated on ``feeds``) from onnx2tf's
    SavedModel of ``src``; raises the builders' ``BuildError`` naming the op onnx2tf cannot convert."""
    import tensorflow as tf

    from converter.builders.onnx_tf import saved_model_from_onnx
    from converter.builders.tflite_int8 import representative_dataset

    saved = saved_model_from_onnx(src, dest.parent / (src.stem + "_saved_model"))
    conv = tf.lite.TFLiteConverter.from_saved_model(str(saved), signature_keys=[SIGNATURE])
    if mode == "fp16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        assert feeds is not None
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative_dataset(feeds)
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dest.write_bytes(conv.convert())
    return dest


def run_tflite(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """LiteRT's interpreter on the file's ``serving_default`` signature, one sample at a time;
    int8 inputs quantized and outputs dequantized with the tensors' own scale and zero point."""
    from ai_edge_litert.interpreter import Interpreter

    runner = Interpreter(model_path=str(path)).get_signature_runner(SIGNATURE)
    ins, outs = runner.get_input_details(), runner.get_output_details()
    n = len(next(iter(feeds.values())))
    parts: dict[str, list[np.ndarray]] = {k: [] for k in outs}
    for i in range(n):
        args = {}
        for k, v in feeds.items():
            d = ins[k]
            x = v[i:i + 1]
            if d["dtype"] == np.int8:
                s, z = d["quantization"][:2]
                x = np.clip(np.round(x / s + z), -128, 127).astype(np.int8)
            args[k] = x
        ys = runner(**args)
        for k, y in ys.items():
            d = outs[k]
            if d["dtype"] == np.int8:
                s, z = d["quantization"][:2]
                y = (y.astype(np.float32) - z) * s
            parts[k].append(np.asarray(y, np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}


def max_abs(a: dict[str, np.ndarray], b: dict[str, np.ndarray]) -> dict[str, float]:
    """Per output name, the largest absolute difference (shapes must agree)."""
    return {k: float(np.max(np.abs(a[k] - b[k]))) for k in a}


def pixel_agreement(a: np.ndarray, b: np.ndarray, axis: int = 1) -> float:
    """Share of pixels whose argmax class agrees between two (N, K, H, W) score maps."""
    return float(np.mean(np.argmax(a, axis=axis) == np.argmax(b, axis=axis)))
