"""Drive our TensorRT code against one real TensorRT binding (run by test_trt_real_api.py).

    python -m tests.runtime.tensorrt.api_probe REPORT.json

must run where ``import tensorrt`` finds a real binding module (real_trt.py arranges that with a
stub libnvinfer). It stands checked proxies in for TensorRT (trt_checked.py) and a simulated CUDA
driver in for pycuda (fake_cuda.py), then runs every path of our code that the version's API path
uses: the logger bridge through TensorRT's own C++ trampoline, engine builds (FP16/INT8, one input
and several, fixed and dynamic batch, parse errors, timing caches), INT8 calibration on 8.x, the
engine runner (several inputs and outputs by name, 20 open/close cycles, close from another thread,
failures while opening) and the teardown order. The report lists every failure (API misuse or a
wrong result), the (class, member) pairs touched, and the types no check understood.
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import tempfile
import threading
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.fake_cuda import FakeDriver
from tests.runtime.tensorrt.trt_checked import Fake, fail

TMP = Path(tempfile.mkdtemp(prefix="trt-probe-"))
GPU: Any = None


@dataclass
class Spec:
    name: str
    shape: tuple[int, ...]  # -1: dynamic


@dataclass
class World:
    """What the fake TensorRT objects answer: one network/engine and what the code did to it."""

    drv: FakeDriver
    inputs: list[Spec]
    parse_ok: bool = True
    refuse_engine: bool = False
    refuse_shape: str | None = None
    refuse_address: str | None = None
    output_specs: list[Spec] | None = None  # default: out_sum (B, 1) and out_vec (B, n inputs)
    network_flags: int = -1
    configs: list[ConfigImpl] = field(default_factory=list)
    calibration: dict[str, Any] = field(default_factory=dict)

    @property
    def outputs(self) -> list[Spec]:
        if self.output_specs is not None:
            return self.output_specs
        return [Spec("out_sum", (-1, 1)), Spec("out_vec", (-1, len(self.inputs)))]

    @property
    def tensors(self) -> list[tuple[Spec, bool]]:
        return [(s, True) for s in self.inputs] + [(s, False) for s in self.outputs]

    def spec(self, name: str) -> Spec:
        for s, _ in self.tensors:
            if s.name == name:
                return s
        raise KeyError(name)

    def compute(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return World.reference(feeds, [s.name for s in self.inputs], self.output_specs)

    @staticmethod
    def reference(feeds: dict[str, np.ndarray], order: list[str], outputs: list[Spec] | None = None) -> dict[str, np.ndarray]:
        """out_sum: all inputs summed per sample; out_vec: each input's sum, in input order.
        Other outputs: output k (of width m) is (k + 1) x the sum over inputs i of (i + 1) x input
        i's sum, m times (so inputs fed to the wrong tensor show)."""
        per = [feeds[n].reshape(len(feeds[n]), -1).sum(axis=1) for n in order]
        vec = np.stack(per, axis=1).astype(np.float32)
        if outputs is None:
            return {"out_sum": vec.sum(axis=1, keepdims=True), "out_vec": vec}
        weighted = (vec * np.arange(1, len(order) + 1, dtype=np.float32)).sum(axis=1, keepdims=True)
        return {o.name: np.repeat(weighted * (k + 1), o.shape[1], axis=1) for k, o in enumerate(outputs)}

    # -- constructors for trt.Builder / trt.Runtime / trt.OnnxParser
    def builder(self, logger: Any) -> Fake:
        return Fake(tc.REAL.Builder, BuilderImpl(self))

    def runtime(self, logger: Any) -> Fake:
        return Fake(tc.REAL.Runtime, RuntimeImpl(self), self.drv.trt_destroyed)

    def parser(self, network: Any, logger: Any) -> Fake:
        return Fake(tc.REAL.OnnxParser, ParserImpl(self))


class BuilderImpl:
    def __init__(self, w: World) -> None:
        self.w = w

    def create_network(self, flags: int = 0) -> Fake:
        self.w.network_flags = int(flags)
        return Fake(tc.REAL.INetworkDefinition, NetworkImpl(self.w))

    def create_builder_config(self) -> Fake:
        c = ConfigImpl()
        self.w.configs.append(c)
        return Fake(tc.REAL.IBuilderConfig, c)

    def create_optimization_profile(self) -> Fake:
        return Fake(tc.REAL.IOptimizationProfile, ProfileImpl())

    def build_serialized_network(self, network: Any, config: Any) -> bytes:
        c = self.w.configs[-1]
        calibrator = c.int8_calibrator
        if calibrator is not None:
            self._calibrate(calibrator, c)
        return b"ENGINE" + bytes(16)

    def _calibrate(self, cal: Any, c: ConfigImpl) -> None:
        """What TensorRT 8.x does with the calibrator during the build."""
        w, base = self.w, tc.REAL.IInt8EntropyCalibrator2
        for m in ("get_batch_size", "get_batch", "read_calibration_cache", "write_calibration_cache"):
            tc.check_override(base, type(cal), m)
        batch = int(base.get_batch_size(cal))  # through TensorRT's C++ trampoline
        fixed = {s.shape[0] for s in w.inputs if s.shape[0] > 0}
        if fixed and batch not in fixed:
            raise fail(f"calibration batch {batch} does not match the network's fixed batch {sorted(fixed)}")
        if not fixed:
            prof = c.calibration_profile
            if prof is None:
                raise fail("dynamic network calibrated without a calibration profile")
            for s in w.inputs:
                want = (batch, *s.shape[1:])
                if prof.shapes.get(s.name) != (want, want, want):
                    raise fail(f"calibration profile for {s.name} is {prof.shapes.get(s.name)}, batch {batch} needs {want}")
        cache = cal.read_calibration_cache()
        if cache:
            w.calibration["cache_read"] = bytes(cache)
            return
        names = [s.name for s in w.inputs]
        ret_sigs = tc.parse_signatures(base.get_batch.__doc__)
        fed: list[dict[str, np.ndarray]] = []
        while True:
            ptrs = cal.get_batch(names)
            if ptrs is None:
                break
            if ret_sigs and tc.conforms(ptrs, ret_sigs[0].returns) is False:
                raise fail(f"get_batch returned {ptrs!r}, TensorRT wants {ret_sigs[0].returns}")
            if len(ptrs) != len(names):
                raise fail(f"get_batch returned {len(ptrs)} pointers for inputs {names}")
            fed.append({n: np.frombuffer(bytes(w.drv.memory[p][: batch * int(np.prod(s.shape[1:])) * 4]), np.float32)
                        .reshape((batch, *w.spec(n).shape[1:])) for n, p, s in zip(names, ptrs, w.inputs, strict=True)})
        w.calibration.update(batch=batch, fed=fed)
        from calibration.trt_calibrator import header_code

        cal.write_calibration_cache(memoryview(f"TRT-{header_code(tc.VERSION)}-EntropyCalibration2\nx: 3c010a14\n".encode()))


class NetworkImpl:
    def __init__(self, w: World) -> None:
        self.w = w

    @property
    def num_inputs(self) -> int:
        return len(self.w.inputs)

    def get_input(self, index: int) -> Fake:
        return Fake(tc.REAL.ITensor, TensorImpl(self.w.inputs[index]))


class TensorImpl:
    def __init__(self, spec: Spec) -> None:
        self.name = spec.name
        self.shape = tc.REAL.Dims(spec.shape)


class ParserImpl:
    def __init__(self, w: World) -> None:
        self.w = w
        self.num_errors = 0 if w.parse_ok else 1

    def parse_from_file(self, path: str) -> bool:
        return self.w.parse_ok

    def get_error(self, index: int) -> str:
        return "In node 3 (Conv): unsupported"


class ProfileImpl:
    def __init__(self) -> None:
        self.shapes: dict[str, tuple[tuple[int, ...], ...]] = {}

    def set_shape(self, input: str, min: Any, opt: Any, max: Any) -> None:
        self.shapes[input] = (tuple(min), tuple(opt), tuple(max))


class TimingCacheImpl:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def serialize(self) -> bytes:
        return b"TIMING" + self.data[:0]


class ConfigImpl:
    def __init__(self) -> None:
        self.flags: set[str] = set()
        self.pool: dict[str, int] = {}
        self.profiles: list[ProfileImpl] = []
        self.calibration_profile: ProfileImpl | None = None
        self.int8_calibrator: Any = None
        self.timing_cache: Any = None
        self.timing_cache_from: bytes | None = None

    def set_flag(self, flag: Any) -> None:
        self.flags.add(flag.name)

    def set_memory_pool_limit(self, pool: Any, pool_size: int) -> None:
        self.pool[pool.name] = int(pool_size)

    def create_timing_cache(self, serialized_timing_cache: Any) -> Fake:
        self.timing_cache_from = bytes(serialized_timing_cache)
        return Fake(tc.REAL.ITimingCache, TimingCacheImpl(bytes(serialized_timing_cache)))

    def set_timing_cache(self, cache: Any, ignore_mismatch: bool) -> bool:
        self.timing_cache = cache
        return True

    def get_timing_cache(self) -> Any:
        return self.timing_cache

    def add_optimization_profile(self, profile: Any) -> int:
        self.profiles.append(profile._f_impl)
        return len(self.profiles) - 1

    def set_calibration_profile(self, profile: Any) -> bool:
        self.calibration_profile = profile._f_impl
        return True


class RuntimeImpl:
    def __init__(self, w: World) -> None:
        self.w = w

    def deserialize_cuda_engine(self, serialized_engine: Any) -> Fake | None:
        if self.w.refuse_engine:
            return None
        return Fake(tc.REAL.ICudaEngine, EngineImpl(self.w), self.w.drv.trt_destroyed)


class EngineImpl:
    def __init__(self, w: World) -> None:
        self.w = w
        self.names = [s.name for s, _ in w.tensors]
        self.num_io_tensors = self.num_bindings = len(self.names)

    def _spec(self, key: Any) -> tuple[Spec, bool]:
        return self.w.tensors[key] if isinstance(key, int) else self.w.tensors[self.names.index(key)]

    def get_tensor_name(self, index: int) -> str:
        return self.names[index]

    get_binding_name = get_tensor_name

    def get_tensor_mode(self, name: str) -> Any:
        mode = tc.REAL.TensorIOMode
        return mode.INPUT if self._spec(name)[1] else mode.OUTPUT

    def binding_is_input(self, index: Any) -> bool:
        return self._spec(index)[1]

    def get_tensor_shape(self, name: Any) -> Any:
        return tc.REAL.Dims(self._spec(name)[0].shape)

    get_binding_shape = get_tensor_shape

    def get_tensor_dtype(self, name: Any) -> Any:
        return tc.REAL.DataType.FLOAT

    get_binding_dtype = get_tensor_dtype

    def create_execution_context(self) -> Fake:
        return Fake(tc.REAL.IExecutionContext, ContextImpl(self.w, self.names), self.w.drv.trt_destroyed)


class ContextImpl:
    def __init__(self, w: World, names: list[str]) -> None:
        self.w, self.names = w, names
        self.shapes: dict[str, tuple[int, ...]] = {s.name: s.shape for s, _ in w.tensors}
        self.addresses: dict[str, int] = {}

    def _name(self, key: Any) -> str:
        return self.names[key] if isinstance(key, int) else str(key)

    def set_input_shape(self, name: Any, shape: Any) -> bool:
        name = self._name(name)
        if name == self.w.refuse_shape or name not in [s.name for s in self.w.inputs]:
            return False
        spec = self.w.spec(name)
        shape = tuple(shape)
        if len(shape) != len(spec.shape) or any(a != b for a, b in zip(spec.shape, shape, strict=True) if a >= 0):
            return False
        self.shapes[name] = shape
        return True

    set_binding_shape = set_input_shape

    def get_tensor_shape(self, name: Any) -> Any:
        name = self._name(name)
        batch = {self.shapes[s.name][0] for s in self.w.inputs}
        b = batch.pop() if len(batch) == 1 else -1
        return tc.REAL.Dims(tuple(b if d < 0 else d for d in self.shapes[name]))

    get_binding_shape = get_tensor_shape

    def set_tensor_address(self, name: str, memory: int) -> bool:
        if name == self.w.refuse_address or name not in self.names:
            return False
        self.addresses[name] = int(memory)
        return True

    def _execute(self) -> bool:
        drv = self.w.drv
        missing = [n for n in self.names if n not in self.addresses]
        if missing:
            raise fail(f"executed without addresses for {missing}")
        feeds = {s.name: drv.read(self.addresses[s.name], tuple(self.get_tensor_shape(s.name)), np.dtype(np.float32))
                 for s in self.w.inputs}
        for name, value in self.w.compute(feeds).items():
            drv.write(self.addresses[name], value)
        return True

    def execute_async_v3(self, stream_handle: int) -> bool:
        return self._execute()

    def execute_async_v2(self, bindings: list[int], stream_handle: int, input_consumed: Any = None) -> bool:
        self.addresses = {n: int(b) for n, b in zip(self.names, bindings, strict=True)}
        return self._execute()


# ---------------------------------------------------------------- scenarios

IMG = Spec("img", (-1, 6, 8, 3))
IMU = Spec("imu", (-1, 6))
MEM = Spec("mem", (-1, 4))


def check(cond: bool, message: str) -> None:
    if not cond:
        raise fail(message)


@contextlib.contextmanager
def world(inputs: list[Spec], **kw: Any) -> Iterator[World]:
    drv = FakeDriver()
    drv.install()
    w = World(drv, inputs, **kw)
    CURRENT[0] = w
    yield w


CURRENT: list[Any] = [None]


def scenario_logger(api: str) -> None:
    from runtime.tensorrt import api_common

    trt = sys.modules["tensorrt"]
    logger = api_common.get_logger(trt)
    tc.check_override(tc.REAL.ILogger, type(logger), "log")
    records: list[tuple[int, str]] = []

    class Catch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append((record.levelno, record.getMessage()))

    log = logging.getLogger("tensorrt")
    handler = Catch(level=1)
    log.addHandler(handler)
    log.setLevel(1)
    try:
        sev = tc.REAL.ILogger.Severity
        want = [(sev.INTERNAL_ERROR, logging.CRITICAL), (sev.ERROR, logging.ERROR), (sev.WARNING, logging.WARNING),
                (sev.INFO, logging.DEBUG), (sev.VERBOSE, 5)]
        for s, _ in want:
            tc.REAL.ILogger.log(logger, s, f"message {s.name}")  # TensorRT's C++ calls our override
    finally:
        log.removeHandler(handler)
    check(records == [(lvl, f"message {s.name}") for s, lvl in want], f"logger bridge forwarded {records}")


def _build(w: World, precision: str, inputs: dict[str, tuple[int, ...]] | None, calibrator: Any = None,
           tc_path: Path | None = None) -> Any:
    from runtime.tensorrt.builder import build_engine

    onnx = TMP / "model.onnx"
    onnx.write_bytes(b"onnx")
    return build_engine(onnx, precision, TMP / f"model_{precision}.engine", 64, tc_path, calibrator,
                        input_shapes=inputs, gpu=GPU)


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
    from runtime.tensorrt.sources import execution_module

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

    tensorrt_backend.detect_gpu = lambda device_id=0: GPU  # no GPU to ask; the rest is real
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

        conv.detect_gpu = lambda device_id=0: GPU
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


def scenario_converter_builder(api: str) -> None:
    """converter/builders/tensorrt.py: the ONNX each path builds from, INT8 calibration on 8.x."""
    from converter.builders import tensorrt as conv
    from converter.builders.base import BuildContext
    from runtime import formats
    from tests.runtime.tensorrt.conftest import H, W

    conv.detect_gpu = lambda device_id=0: GPU  # no GPU to ask; everything after this is real
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


SCENARIOS: dict[str, Callable[[str], None]] = {
    "logger": scenario_logger,
    "build_fp16": scenario_build_fp16,
    "build_errors": scenario_build_errors,
    "build_int8": scenario_build_int8,
    "io_tensors": scenario_io_tensors,
    "runner": scenario_runner,
    "runner_failures": scenario_runner_failures,
    "backend": scenario_backend,
    "backend_model_kinds": scenario_backend_model_kinds,
    "converter_builder": scenario_converter_builder,
}


def main(report_path: str) -> int:
    global GPU
    from runtime.tensorrt.gpu import GpuInfo
    from runtime.tensorrt.version import api_path

    GPU = GpuInfo("8.7", "Orin", "NVIDIA Jetson Orin Nano Developer Kit", "test")
    constructors = {
        "Builder": lambda *a, **k: CURRENT[0].builder(*a, **k),
        "Runtime": lambda *a, **k: CURRENT[0].runtime(*a, **k),
        "OnnxParser": lambda *a, **k: CURRENT[0].parser(*a, **k),
    }
    tc.install(constructors)
    api = api_path(tc.VERSION)
    ran = []
    for name, fn in SCENARIOS.items():
        before = len(tc.FAILURES)
        try:
            fn(api)
        except Exception as e:
            if not isinstance(e, tc.ApiMisuse):
                tc.FAILURES.append(f"TensorRT {tc.VERSION}: {type(e).__name__}: {e}")
            tc.FAILURES.append(f"  (scenario {name} stopped: {traceback.format_exc(limit=-3).strip().splitlines()[-3:]})")
        ran.append({"scenario": name, "failures": tc.FAILURES[before:]})
    Path(report_path).write_text(json.dumps({
        "version": tc.VERSION, "api": api, "failures": tc.FAILURES, "scenarios": ran,
        "observed": sorted(tc.OBSERVED), "unchecked_types": sorted(tc.UNCHECKED_TYPES),
    }, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
