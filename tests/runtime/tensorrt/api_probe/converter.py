"""Probe of the converter's TensorRT builder path for every TensorRT format."""

from __future__ import annotations

import numpy as np

from tests.runtime.tensorrt.api_probe import state
from tests.runtime.tensorrt.api_probe.backend import _tiny_bundle
from tests.runtime.tensorrt.api_probe.build import _expect_flags
from tests.runtime.tensorrt.api_probe.world import Spec, check, world


def scenario_converter_builder(api: str) -> None:
    """converter/builders/tensorrt.py: the ONNX each path builds from, INT8 calibration on 8.x."""
    from converter.builders import tensorrt as conv
    from converter.builders.base import BuildContext
    from runtime import formats
    from tests.runtime.tensorrt.conftest import H, W

    conv.detect_gpu = lambda device_id=0: state.GPU  # no GPU to ask; everything after this is real
    bundle, manifest = _tiny_bundle(api, "convert")
    image = Spec("input_1", (-1, H, W, 3))
    outs = [Spec("out_steer", (-1, 1)), Spec("out_throttle", (-1, 1))]
    calib = np.random.default_rng(4).random((12, H, W, 3), dtype=np.float32)
    for fmt, precision in (("trt-fp16", "fp16"), ("trt-int8", "int8")):
        with world([image], output_specs=outs) as w:
            ctx = BuildContext(fmt=formats.get(fmt), staging=bundle, manifest=manifest, source=None,
                               saved_model_dir=None, calibration={"image": calib}, calibration_id="e" * 64)
            fn = conv.build_fp16 if precision == "fp16" else conv.build_int8
            result = fn(ctx)
            want_src = {("8", "fp16"): "onnx", ("8", "int8"): "onnx", ("10", "fp16"): "onnx",
                        ("10", "int8"): "onnx-int8", ("11", "fp16"): "onnx-fp16", ("11", "int8"): "onnx-int8"}
            check(result.extra["source_build"] == want_src[(api, precision)], f"{fmt} built from {result.extra}")
            check((bundle / result.file).read_bytes().startswith(b"ENGINE"), f"{fmt}: no engine written")
            _expect_flags(api, precision, w, ctx.options.trt_workspace_mb)
            if api == "8" and precision == "int8":
                check(w.calibration.get("batch") == 8 and len(w.calibration.get("fed", [])) == 1,
                      f"calibration {w.calibration.get('batch')} x {len(w.calibration.get('fed', []))}")
                check(result.extra.get("calibration_frames") == 12, f"extra {result.extra}")
            check(not w.drv.live and w.drv.retain_count == 0, f"{fmt}: leaked {w.drv.live}")
