"""Probes of engine builds: FP16 with a timing cache, parse errors and several inputs, and INT8
with calibration (8.x) for fixed and dynamic batch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.api_probe import state
from tests.runtime.tensorrt.api_probe.state import TMP
from tests.runtime.tensorrt.api_probe.world import IMG, IMU, MEM, Spec, World, check, world
from tests.runtime.tensorrt.trt_checked import fail


def _build(w: World, precision: str, inputs: dict[str, tuple[int, ...]] | None, calibrator: Any = None,
           tc_path: Path | None = None) -> Any:
    from runtime.tensorrt.builder import build_engine

    onnx = TMP / "model.onnx"
    onnx.write_bytes(b"onnx")
    return build_engine(onnx, precision, TMP / f"model_{precision}.engine", 64, tc_path, calibrator,
                        input_shapes=inputs, gpu=state.GPU)


def _expect_flags(api: str, precision: str, w: World, workspace_mb: int = 64) -> None:
    trt_flags = w.configs[-1].flags
    want = {"8": {"FP16"} | ({"INT8"} if precision == "int8" else set()),
            "10": {"FP16"} | ({"INT8"} if precision == "int8" else set()), "11": set()}[api]
    check(trt_flags == want, f"{precision} build on API path {api} set flags {sorted(trt_flags)}, expected {sorted(want)}")
    net = tc.REAL.NetworkDefinitionCreationFlag
    if api == "8":
        check(w.network_flags & (1 << int(net.EXPLICIT_BATCH)) != 0, "8.x network without EXPLICIT_BATCH")
    if api == "11":
        check(w.network_flags == 1 << int(net.STRONGLY_TYPED), f"11.x network flags {w.network_flags}: not strongly typed")
    check(w.configs[-1].pool.get("WORKSPACE") == workspace_mb << 20, f"workspace pool {w.configs[-1].pool}")


def scenario_build_fp16(api: str) -> None:
    with world([IMG]) as w:
        tcp = TMP / "timing.cache"
        tcp.unlink(missing_ok=True)
        info = _build(w, "fp16", {"img": (1, 6, 8, 3)}, tc_path=tcp)
        _expect_flags(api, "fp16", w)
        prof = w.configs[-1].profiles
        check(len(prof) == 1 and prof[0].shapes == {"img": ((1, 6, 8, 3),) * 3}, "dynamic input not pinned to batch 1")
        check(info.input_shapes == {"img": [1, 6, 8, 3]} and not info.timing_cache_used, f"info {info}")
        check(tcp.read_bytes().startswith(b"TIMING"), "timing cache not saved")
        again = _build(w, "fp16", None, tc_path=tcp)
        check(again.timing_cache_used and w.configs[-1].timing_cache_from == tcp.read_bytes(), "timing cache not reused")


def scenario_build_errors(api: str) -> None:
    from runtime.tensorrt.shapes import EngineBuildError

    with world([IMG], parse_ok=False) as w:
        try:
            _build(w, "fp16", None)
        except EngineBuildError as e:
            check("unsupported" in str(e), f"parse error lost: {e}")
        else:
            raise fail("a failed parse built an engine")
    with world([IMG, IMU]) as w:
        try:
            _build(w, "fp16", {"img": (1, 6, 8, 3), "speed": (1, 1)})
        except EngineBuildError as e:
            check("speed" in str(e), f"unknown input not named: {e}")
        else:
            raise fail("a shape for an input the ONNX lacks was accepted")


def _calibrate(api: str, inputs: list[Spec], n: int, want_batch: int) -> None:
    from calibration.trt_calibrator import (
        CalibrationCacheKey,
        cache_paths,
        check_calibration_cache,
        make_entropy_calibrator,
    )

    shapes = {s.name: (1, *s.shape[1:]) for s in inputs}
    rng = np.random.default_rng(0)
    data = {s.name: rng.random((n, *s.shape[1:]), dtype=np.float32) for s in inputs}
    key = CalibrationCacheKey(tc.VERSION, "c" * 64, "d" * 64, shapes)
    cache, _ = cache_paths(TMP / f"calib-{len(inputs)}-{n}-{want_batch}", key.onnx_sha256)
    with world(inputs) as w:
        depth = w.drv.stack_depths()
        cal = make_entropy_calibrator(data, cache, key)
        try:
            _build(w, "int8", shapes, cal)
        finally:
            cal.release()
        _expect_flags(api, "int8", w)
        fed = w.calibration.get("fed", [])
        check(w.calibration.get("batch") == want_batch, f"calibration batch {w.calibration.get('batch')}, want {want_batch}")
        check(len(fed) == n // want_batch, f"{len(fed)} calibration batches fed, want {n // want_batch}")
        for i, batch in enumerate(fed):
            for s in inputs:
                got = batch[s.name]
                check(np.array_equal(got, data[s.name][i * want_batch:(i + 1) * want_batch]), f"batch {i} of {s.name} wrong")
        check(check_calibration_cache(cache, key).usable, "calibration cache not written/valid")
        check(not w.drv.live and w.drv.retain_count == 0 and w.drv.stack_depths() == depth and not w.drv.errors,
              f"calibrator leaked: live {w.drv.live}, retained {w.drv.retain_count}, errors {w.drv.errors}")
        cal2 = make_entropy_calibrator(None, cache, key)  # replays the cache
        try:
            _build(w, "int8", shapes, cal2)
        finally:
            cal2.release()
        check("cache_read" in w.calibration, "valid calibration cache not replayed")


def scenario_build_int8(api: str) -> None:
    if api != "8":
        for inputs in ([IMG], [IMG, IMU]):
            with world(inputs) as w:
                _build(w, "int8", None)
                _expect_flags(api, "int8", w)
        return
    fixed = [Spec(s.name, (1, *s.shape[1:])) for s in (IMG, IMU, MEM)]
    _calibrate(api, fixed, 5, 1)  # a batch-1 ONNX calibrates with batch 1, every input fed
    _calibrate(api, [IMG, IMU], 20, 8)  # dynamic batch: batches of 8, 2 of them, own profile
