"""``onnx-int8``: Q/DQ ONNX from the bundle's FP32 ``model.onnx``, by ONNX Runtime's static quantization.

This is the explicit-precision INT8 model TensorRT 10 and 11 build their INT8 engines from, so
it follows TensorRT's rules: signed INT8 and **symmetric** scales (zero point 0) for activations
and weights, Q/DQ format (not QOperator), per-channel weight scales. I/O stays float32.
ONNX Runtime's CPU provider runs the same file (fusing Q/DQ into integer kernels), which is how
the converter verifies it here and measures what it costs.

Why onnxruntime and not NVIDIA ModelOpt: ModelOpt's ONNX PTQ runs on ONNX Runtime's static
quantization itself, and its ``[onnx]`` extra pins onnx ~1.21, onnxruntime-gpu ~1.24, torch
>= 2.8 and cupy-cuda12x, which conflict with this toolchain (onnx 1.23, CPU onnxruntime 1.32)
and add gigabytes for no gain on a CNN this size (see docs/calibration.md).
"""

from __future__ import annotations

import importlib.metadata as md
import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from converter.builders.base import BuildContext, BuildError, BuildResult
from converter.builders.onnx_io import onnx_io, onnx_toolchain
from runtime.manifest import BundleError, verified_path

log = logging.getLogger(__name__)

SOURCE_FORMAT = "onnx"
CALIBRATE_METHOD = "MinMax"
EXTRA_OPTIONS = {"ActivationSymmetric": True, "WeightSymmetric": True}


class FrameReader:
    """onnxruntime.quantization's CalibrationDataReader over the calibration data, batch 1.

    ``feeds`` maps the ONNX's own input tensor names to (N, ...) float32 arrays, every input."""

    def __init__(self, feeds: dict[str, np.ndarray]) -> None:
        self.feeds, self.i = feeds, 0
        self.n = len(next(iter(feeds.values())))

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.i >= self.n:
            return None
        x = {k: np.ascontiguousarray(v[self.i : self.i + 1], np.float32) for k, v in self.feeds.items()}
        self.i += 1
        return x

    def rewind(self) -> None:
        self.i = 0


def build(ctx: BuildContext) -> BuildResult:
    feeds = ctx.calibration
    if not feeds or len(next(iter(feeds.values()))) == 0:
        raise BuildError("onnx-int8 calibrates on real frames: pass --calibration DIR (make one with rc-calibrate)")
    try:
        src_entry = ctx.manifest.build(SOURCE_FORMAT)
        src = verified_path(ctx.staging, src_entry)
    except BundleError as e:
        raise BuildError(f"onnx-int8 quantizes the FP32 onnx build: {e}") from None
    for spec in ctx.manifest.inputs:
        if tuple(feeds[spec.name].shape[1:]) != tuple(spec.shape[1:]):
            raise BuildError(f"calibration data for {spec.name} is {tuple(feeds[spec.name].shape[1:])}, "
                             f"the model takes {tuple(spec.shape[1:])}")
    out = ctx.staging / ctx.fmt.file
    by_tensor = {src_entry.io[name].name: v for name, v in feeds.items()}
    try:
        kept_float = _quantize(src, out, FrameReader(by_tensor))
    except BuildError:
        out.unlink(missing_ok=True)
        raise
    except Exception as e:  # onnxruntime.quantization raises plain exceptions on graphs it cannot handle
        out.unlink(missing_ok=True)
        log.debug("quantize_static failed", exc_info=True)
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise BuildError(f"onnxruntime static quantization failed: {first}") from None
    io = onnx_io(out, ctx.manifest)
    not_float = {k: v.dtype for k, v in io.items() if v.dtype != "float32"}
    if not_float:
        out.unlink(missing_ok=True)
        raise BuildError(f"onnx-int8 must keep float32 I/O, got {not_float}")
    return BuildResult(
        file=ctx.fmt.file,
        io=io,
        toolchain={**onnx_toolchain(out), "onnxruntime": md.version("onnxruntime")},
        extra={
            "quantization": {
                "tool": "onnxruntime.quantization.quantize_static", "format": "QDQ",
                "activations": "int8 symmetric per-tensor", "weights": "int8 symmetric per-channel",
                "calibrate_method": CALIBRATE_METHOD, "source": SOURCE_FORMAT, "source_sha256": src_entry.sha256,
            },
            "calibration_frames": len(next(iter(feeds.values()))),
            "calibration_sha256": ctx.calibration_id,
            **({"float_nodes": len(kept_float)} if kept_float else {}),
        },
    )


# Ops that only move or join values: walking back from a graph output through these finds the
# tensors an output is assembled from (a YOLO head's boxes and scores, concatenated).
_ASSEMBLY_OPS = frozenset({"Concat", "Reshape", "Transpose", "Flatten", "Squeeze", "Unsqueeze", "Identity"})


def float_tail(model: Any) -> list[str]:
    """Names of the nodes the quantizer must leave in float, for detection graphs:

    - every node downstream of a ``NonZero`` (a detector's post-processing: score threshold, top-k,
      NMS, padding; tensors of data-dependent length). ONNX Runtime 1.32 crashes the whole process
      (segfault) running a Q/DQ graph whose quantized post-processing meets zero detections;
    - the ``Concat``/reshaping nodes that assemble a graph output (a YOLO head's (1, 4 + K, N) joins
      boxes in pixels with scores in 0..1: one per-tensor int8 scale of ~1 px would leave the
      scores nothing but 0 and 1); their inputs are still quantized, each on its own scale.

    Unnamed nodes are named (``float_tail_<i>``) in ``model`` so they can be excluded."""
    for i, node in enumerate(model.graph.node):
        if not node.name:
            node.name = f"float_tail_{i}"
    consumers: dict[str, list[Any]] = {}
    producer: dict[str, Any] = {}
    for node in model.graph.node:
        for t in node.input:
            consumers.setdefault(t, []).append(node)
        for t in node.output:
            producer[t] = node
    keep: dict[str, None] = {}
    stack = [n for n in model.graph.node if n.op_type == "NonZero"]
    while stack:
        node = stack.pop()
        if node.name in keep:
            continue
        keep[node.name] = None
        stack.extend(c for t in node.output for c in consumers.get(t, []))
    for out in model.graph.output:
        chain: dict[str, str] = {}
        back = [producer[out.name]] if out.name in producer else []
        while back:
            node = back.pop()
            if node.op_type not in _ASSEMBLY_OPS or node.name in chain:
                continue
            chain[node.name] = node.op_type
            back.extend(producer[t] for t in node.input if t in producer)
        if "Concat" in chain.values():  # a plain Reshape before an output quantizes fine: leave pilots as they were
            keep.update(dict.fromkeys(chain))
    return list(keep)


def _quantize(src: Path, out: Path, reader: Any) -> list[str]:
    """Quantize ``src`` into ``out`` (Q/DQ, see the module); returns the nodes left in float
    (:func:`float_tail`)."""
    import onnx
    from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    with tempfile.TemporaryDirectory(prefix="onnx-int8-") as tmp:
        pre = Path(tmp) / "pre.onnx"
        # Shape inference + graph optimisation first, as onnxruntime recommends: the quantizer
        # needs every tensor's shape to place Q/DQ pairs and per-channel axes. ONNX's own shape
        # inference is enough for a fixed-size image model (the symbolic one needs sympy).
        try:
            quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        except Exception as e:  # optional step: quantize the graph as it is
            log.info("onnx-int8: pre-processing skipped (%s)", e)
            pre = src
        model = onnx.load(str(pre))
        floats = float_tail(model)
        named = Path(tmp) / "named.onnx"
        onnx.save(model, str(named))
        if floats:
            log.info("onnx-int8: %d nodes stay float (detection post-processing, output assembly)", len(floats))
        quantize_static(
            str(named), str(out), reader,
            nodes_to_exclude=floats,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=getattr(CalibrationMethod, CALIBRATE_METHOD),
            extra_options=dict(EXTRA_OPTIONS),
            calibration_providers=["CPUExecutionProvider"],
        )
    if not out.is_file():
        raise BuildError("onnxruntime static quantization wrote no model")
    return floats
