"""Probes of the engine runner: I/O tensors by name, 20 open/close cycles, close from another
thread, and failures while opening (teardown order checked)."""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.api_probe.fake_trt import EngineImpl
from tests.runtime.tensorrt.api_probe.world import IMG, IMU, World, check, world
from tests.runtime.tensorrt.trt_checked import Fake, fail


def _runner(api: str, w: World, shapes: dict[str, tuple[int, ...]] | None = None) -> Any:
    from runtime.tensorrt.runner import EngineRunner

    return EngineRunner(b"ENGINE", api, shapes if shapes is not None else {"img": (1, 6, 8, 3), "imu": (1, 6)}, 0)


def _check_clean(w: World, depth: tuple[int, int], what: str) -> None:
    d = w.drv
    order = [c for c, _ in d.destroyed_trt]
    check(not d.errors, f"{what}: {d.errors}")
    check(not d.live, f"{what}: still allocated {sorted(d.live.values())}")
    check(d.retain_count == 0, f"{what}: primary context retained {d.retain_count} times")
    check(d.stack_depths() == depth, f"{what}: context stacks {d.stack_depths()}, were {depth}")
    for a, b in (("IExecutionContext", "ICudaEngine"), ("ICudaEngine", "Runtime")):
        if a in order and b in order:
            check(order.index(a) < order.index(b), f"{what}: TensorRT objects destroyed in the order {order}")


def scenario_io_tensors(api: str) -> None:
    """The engine's I/O as the execution path reads it: names, direction, shape, dtype, by index."""
    from runtime.tensorrt.api_paths import execution_module

    trt = sys.modules["tensorrt"]
    with world([IMG, IMU]) as w:
        engine = Fake(tc.REAL.ICudaEngine, EngineImpl(w))
        got = [(t.name, t.is_input, t.shape, str(t.dtype), t.index) for t in execution_module(api).io_tensors(trt, engine)]
        want = [(s.name, is_in, s.shape, "float32", i) for i, (s, is_in) in enumerate(w.tensors)]
        check(got == want, f"io_tensors read the engine as {got}, it is {want}")


def scenario_runner(api: str) -> None:
    with world([IMG, IMU]) as w:
        depth = w.drv.stack_depths()
        rng = np.random.default_rng(1)
        for i in range(20):
            runner = _runner(api, w)
            check([t.name for t in runner.inputs] == ["img", "imu"], f"inputs {runner.inputs}")
            check(runner.shapes == {"img": (1, 6, 8, 3), "imu": (1, 6), "out_sum": (1, 1), "out_vec": (1, 2)},
                  f"shapes {runner.shapes}")
            feeds = {"imu": rng.random((1, 6), dtype=np.float32), "img": rng.random((1, 6, 8, 3), dtype=np.float32)}
            out = runner.run(feeds)
            want = World.reference(feeds, ["img", "imu"])
            for k in want:
                check(np.allclose(out[k], want[k]), f"{k}: got {out[k]}, want {want[k]} (inputs bound by name?)")
            check(set(runner.last_timings_ms) == {"h2d", "compute", "d2h"}, "timings")
            try:
                runner.run({"img": feeds["img"]})
            except ValueError as e:
                check("imu" in str(e), f"missing input not named: {e}")
            else:
                raise fail("run without every input accepted")
            runner.close()
            runner.close()
            if i == 0:
                got = [c for c, ok in w.drv.destroyed_trt]
                check(got == ["IExecutionContext", "ICudaEngine", "Runtime"], f"close destroyed {got}")
            _check_clean(w, depth, f"open/run/close #{i + 1}")
        runner = _runner(api, w)
        runner.run({"img": np.zeros((1, 6, 8, 3), np.float32), "imu": np.zeros((1, 6), np.float32)})
        t = threading.Thread(target=runner.close)  # the runtime's loop thread is not the opener
        t.start()
        t.join()
        _check_clean(w, depth, "close from another thread")


def scenario_runner_failures(api: str) -> None:
    from runtime.tensorrt.engine_cache import EngineLoadError
    from runtime.tensorrt.shapes import EngineBuildError

    cases: list[tuple[dict[str, Any], type[Exception]]] = [
        ({"refuse_engine": True}, EngineLoadError), ({"refuse_shape": "imu"}, EngineBuildError)]
    if api != "8":
        cases.append(({"refuse_address": "out_vec"}, EngineBuildError))
    for kw, exc in cases:
        with world([IMG, IMU], **kw) as w:
            depth = w.drv.stack_depths()
            try:
                _runner(api, w)
            except exc:
                pass
            else:
                raise fail(f"EngineRunner opened although {kw}")
            _check_clean(w, depth, f"failed open ({kw})")
