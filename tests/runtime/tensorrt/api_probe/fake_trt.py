"""The objects behind the checked TensorRT proxies (trt_checked.py): builder, network, parser,
profile, timing cache, config, runtime, engine and execution context, answering from a
:class:`~tests.runtime.tensorrt.api_probe.world.World`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tests.runtime.tensorrt import trt_checked as tc
from tests.runtime.tensorrt.trt_checked import Fake, fail

if TYPE_CHECKING:
    from tests.runtime.tensorrt.api_probe.world import Spec, World


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
