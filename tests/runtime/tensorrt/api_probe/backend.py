"""Probes of the TensorRT backend from a bundle: the tiny bundle, and schema-2 model kinds
(image sequence, memory, IMU, behaviour inputs; bins and scalar outputs)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.runtime.tensorrt.api_probe import state
from tests.runtime.tensorrt.api_probe.runner import _check_clean
from tests.runtime.tensorrt.api_probe.state import TMP
from tests.runtime.tensorrt.api_probe.world import Spec, World, check, world
from tests.runtime.tensorrt.trt_checked import fail


def _tiny_bundle(api: str, name: str) -> tuple[Path, Any]:
    """The tests' tiny real bundle (conftest.make_bundle), plus the ONNX builds each path wants."""
    from runtime import formats
    from runtime.manifest import BuildEntry, sha256_file
    from tests.runtime.tensorrt.conftest import make_bundle

    bundle = TMP / name
    manifest = make_bundle(bundle)
    for fmt, file in (("onnx-fp16", "model_fp16.onnx"), ("onnx-int8", "model_int8.qdq.onnx")):
        path = bundle / file
        path.write_bytes((bundle / "model.onnx").read_bytes())  # the stand-in parser reads no ONNX
        manifest.builds.append(BuildEntry(fmt, formats.get(fmt).precision, file, sha256_file(path),
                                          path.stat().st_size, dict(manifest.build("onnx").io)))
    (bundle / "manifest.json").write_text(manifest.dumps())
    return bundle, manifest


def scenario_backend(api: str) -> None:
    """TensorRTBackend on an engine: manifest names -> engine tensors, outputs by name, teardown."""
    from runtime.backends.tensorrt_backend import TensorRTBackend
    from runtime.manifest import BuildEntry, BundleError, sha256_file
    from tests.runtime.tensorrt.conftest import H, W

    bundle, manifest = _tiny_bundle(api, "backend")
    engine = bundle / "model.engine"
    engine.write_bytes(b"ENGINE")
    entry = BuildEntry("trt-fp16", "fp16", engine.name, sha256_file(engine), engine.stat().st_size,
                       dict(manifest.build("onnx").io))
    outs = [Spec("out_steer", (-1, 1)), Spec("out_throttle", (-1, 1))]
    image = Spec("input_1", (-1, H, W, 3))
    with world([image], output_specs=outs) as w:
        depth = w.drv.stack_depths()
        x = np.random.default_rng(2).random((1, H, W, 3), dtype=np.float32)
        with TensorRTBackend(engine, entry, manifest) as backend:
            got = backend.infer(x)
        total = float(x.sum())
        check(np.allclose(got["steering"], [[total]]) and np.allclose(got["throttle"], [[2 * total]]),
              f"backend outputs {got} (steering is out_steer = {total}, throttle out_throttle = {2 * total})")
        _check_clean(w, depth, "backend close")
    with world([image, Spec("speed", (-1, 1))], output_specs=outs) as w:
        depth = w.drv.stack_depths()
        try:
            TensorRTBackend(engine, entry, manifest)
        except BundleError as e:
            check("speed" in str(e), f"an engine input the manifest does not feed is not named: {e}")
        else:
            raise fail("an engine with an input the manifest does not feed was accepted")
        _check_clean(w, depth, "backend refused")


def scenario_backend_model_kinds(api: str) -> None:
    """Schema 2 on TensorRT: a donkeycar-like model with an image sequence, memory, IMU and behaviour
    inputs and a bins + a scalar output, through from_bundle (engine built here, cached, keyed by
    every input's shape) and Backend.infer by logical names."""
    from runtime.backends import tensorrt_backend
    from runtime.manifest import (
        BuildEntry,
        InputSpec,
        Manifest,
        ModelInfo,
        OutputSpec,
        PreprocessSpec,
        TensorIO,
        load_manifest,
        sha256_file,
    )
    from tests.runtime.tensorrt.conftest import H, W

    tensorrt_backend.detect_gpu = lambda device_id=0: state.GPU  # no GPU to ask; the rest is real
    bundle = TMP / "kinds"
    bundle.mkdir()
    onnx = bundle / "model.onnx"
    onnx.write_bytes(b"onnx: the stand-in parser reads none")
    pre = PreprocessSpec(width=W, height=H)
    inputs = [
        InputSpec("img_in", (1, 3, H, W, 3), "float32", "NTHWC", pre, role="image_sequence", length=3),
        InputSpec("mem_in", (1, 4), "float32", "NC", role="memory", length=2),
        InputSpec("imu_in", (1, 6), "float32", "NC", role="imu"),
        InputSpec("behavior_in", (1, 2), "float32", "NC", role="behavior", labels=("left", "right")),
    ]
    outputs = [OutputSpec("angle_out", (1, 15), "steering", {"kind": "bins", "bins": 15, "range": [-1, 1],
                                                             "method": "argmax"}),
               OutputSpec("throttle_out", (1, 1), "throttle")]
    io = {n: TensorIO(f"{n}_t", "float32") for n in ("img_in", "mem_in", "imu_in", "behavior_in", "angle_out",
                                                     "throttle_out")}
    manifest = Manifest(model=ModelInfo("kinds", "1", None, "test://kinds", "onnx"), inputs=inputs, outputs=outputs,
                        builds=[BuildEntry("onnx", "fp32", onnx.name, sha256_file(onnx), onnx.stat().st_size, io)],
                        created_at="2026-11-30T00:00:00Z", converter_version="test")
    (bundle / "manifest.json").write_text(manifest.dumps())
    manifest = load_manifest(bundle)
    specs = [Spec(f"{i.name}_t", (-1, *i.shape[1:])) for i in inputs]
    outs = [Spec("angle_out_t", (-1, 15)), Spec("throttle_out_t", (-1, 1))]
    rng = np.random.default_rng(6)
    feeds = {i.name: rng.random(i.shape, dtype=np.float32) for i in inputs}
    want = World.reference({f"{k}_t": v for k, v in feeds.items()}, [s.name for s in specs], outs)
    cache = TMP / "kinds-engines"
    for attempt in ("built", "cached"):
        with world(specs, output_specs=outs) as w:
            depth = w.drv.stack_depths()
            fmt = "trt-fp16"
            if api == "11":  # 11.x builds FP16 from the FP16 ONNX: give it one
                manifest.builds.append(BuildEntry("onnx-fp16", "fp16", onnx.name, sha256_file(onnx),
                                                  onnx.stat().st_size, io))
            with tensorrt_backend.TensorRTBackend.from_bundle(bundle, manifest, fmt, cache_dir=cache) as backend:
                got = backend.infer(feeds)
                try:
                    backend.infer({k: v for k, v in feeds.items() if k != "imu_in"})
                except KeyError as e:
                    check("imu_in" in str(e), f"missing input not named: {e}")
                else:
                    raise fail("inference without the imu input accepted")
            if api == "11":
                manifest.builds.pop()
            check(set(got) == {"angle_out", "throttle_out"}, f"outputs {sorted(got)}")
            check(np.allclose(got["angle_out"], want["angle_out_t"]) and np.allclose(got["throttle_out"],
                                                                                   want["throttle_out_t"]),
                  f"{attempt}: outputs {got} are not the engine's by name ({want})")
            shapes = {k: v[0] for p in w.configs[-1].profiles for k, v in p.shapes.items()} if w.configs else {}
            if attempt == "built":
                check(shapes == {s.name: (1, *s.shape[1:]) for s in specs}, f"engine built with profile {shapes}")
            else:
                check(not w.configs, "the cached engine was rebuilt")
            _check_clean(w, depth, f"backend ({attempt})")
    engines = sorted(cache.glob("*.engine"))
    check(len(engines) == 1, f"engine cache holds {engines}")
    if api == "8":  # INT8 by entropy calibration: every input fed its own samples, by name
        from converter.builders import tensorrt as conv
        from converter.builders.base import BuildContext
        from runtime import formats

        conv.detect_gpu = lambda device_id=0: state.GPU
        calib = {i.name: rng.random((12, *i.shape[1:]), dtype=np.float32) for i in inputs}
        with world(specs, output_specs=outs) as w:
            ctx = BuildContext(fmt=formats.get("trt-int8"), staging=bundle, manifest=manifest, source=None,
                               saved_model_dir=None, calibration=calib, calibration_id="f" * 64)
            conv.build_int8(ctx)
            fed = w.calibration.get("fed", [])
            check(w.calibration.get("batch") == 8 and len(fed) == 1, f"calibration {w.calibration.get('batch')} x {len(fed)}")
            for i in inputs:
                check(np.array_equal(fed[0][f"{i.name}_t"], calib[i.name][:8]), f"calibration fed {i.name} wrongly")
            check(not w.drv.live and w.drv.retain_count == 0, f"INT8 build leaked {w.drv.live}")
