"""A stand-in for ``pycuda.driver`` with a simulated CUDA driver behind it (no GPU can run here).

It reproduces what matters for teardown, taken from pycuda's own context code (src/cpp/cuda.hpp):
pycuda's context stack above the driver's per-thread context stack, ``push`` / ``Context.pop``,
``Context.detach`` on a primary context (``cuDevicePrimaryCtxRelease``, which never pops; a context
that is not current is pushed first; from another thread the release is skipped), the primary
context's retain count (at zero CUDA resets it and every allocation in it is gone), and pycuda's
clean-up of device/pinned memory, streams and events, which needs a live context. Everything that
would fail or leak on a real driver is recorded in ``errors``; TensorRT stand-ins report their
destruction through :meth:`FakeDriver.trt_destroyed`.
"""

from __future__ import annotations

import ctypes
import itertools
import sys
import threading
import types
from typing import Any

import numpy as np

PRIMARY = 0x7A000000  # the primary context's handle


class CudaError(RuntimeError):
    pass


class FakeDriver:
    def __init__(self) -> None:
        self.errors: list[str] = []
        self.retain_count = 0
        self.alive = False  # the primary context exists (retain count > 0 since its last reset)
        self._local = threading.local()
        self._addr = itertools.count(0x10000000, 0x100000)
        self.memory: dict[int, bytearray] = {}  # device address -> bytes
        self.live: dict[int, str] = {}  # id -> what (device/pinned memory, stream, event)
        self.destroyed_trt: list[tuple[str, bool]] = []  # (class, context current and alive)

    # -- per-thread stacks
    @property
    def driver_stack(self) -> list[int]:
        if not hasattr(self._local, "driver"):
            self._local.driver = []
        return self._local.driver

    @property
    def pycuda_stack(self) -> list[FakeContext]:
        if not hasattr(self._local, "pycuda"):
            self._local.pycuda = []
        return self._local.pycuda

    def cu_push(self, handle: int) -> None:
        self.driver_stack.append(handle)

    def cu_pop(self) -> int:
        if not self.driver_stack:
            raise CudaError("cuCtxPopCurrent: CUDA_ERROR_INVALID_CONTEXT (empty stack)")
        return self.driver_stack.pop()

    def current_ok(self) -> bool:
        return bool(self.driver_stack) and self.driver_stack[-1] == PRIMARY and self.alive

    def need_current(self, what: str) -> None:
        if not self.current_ok():
            self.errors.append(f"{what} without the primary context current and alive")

    # -- what TensorRT stand-ins call
    def trt_destroyed(self, cls: str) -> None:
        ok = self.current_ok()
        self.destroyed_trt.append((cls, ok))
        if not ok:
            self.errors.append(f"TensorRT {cls} destroyed without its CUDA context current and alive")

    def read(self, address: int, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        self.need_current("device read by TensorRT")
        nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
        return np.frombuffer(bytes(self.memory[address][:nbytes]), dtype).reshape(shape).copy()

    def write(self, address: int, value: np.ndarray) -> None:
        self.need_current("device write by TensorRT")
        raw = np.ascontiguousarray(value).tobytes()
        self.memory[address][: len(raw)] = raw

    def reset_primary(self) -> None:
        self.alive = False
        if self.live:
            self.errors.append(f"primary context reset with live allocations: {sorted(self.live.values())}")

    def stack_depths(self) -> tuple[int, int]:
        return len(self.driver_stack), len(self.pycuda_stack)

    # -- the pycuda.driver module
    def module(self) -> types.ModuleType:
        drv = self
        mod = types.ModuleType("pycuda.driver")

        def init(flags: int = 0) -> None:
            return None

        class Device:
            def __init__(self, ordinal: int) -> None:
                if ordinal != 0:
                    raise CudaError(f"cuDeviceGet: invalid device {ordinal}")

            def retain_primary_context(self) -> FakeContext:
                drv.retain_count += 1
                drv.alive = True
                return FakeContext(drv)

        class Context:
            @staticmethod
            def pop() -> None:
                FakeContext.prepare_context_switch(drv)
                if not drv.pycuda_stack:
                    raise CudaError("context::pop: cannot pop non-current context")
                cur = FakeContext.current_context(drv)
                if cur is not None:
                    cur.use_count -= 1
                drv.pycuda_stack.pop()
                cur = FakeContext.current_context(drv)
                if cur is not None:
                    drv.cu_push(cur.handle)

        def mem_alloc(nbytes: int) -> DeviceAllocation:
            return DeviceAllocation(drv, int(nbytes))

        def pagelocked_empty(shape: Any, dtype: Any) -> np.ndarray:
            dims = tuple(int(d) for d in np.atleast_1d(shape)) if shape != () else ()
            if any(d < 0 for d in dims):
                raise CudaError(f"pagelocked_empty{dims}: a dimension is still unresolved (-1)")
            return np.asarray(HostAllocation(drv, dims, np.dtype(dtype)))

        def memcpy_htod(dest: DeviceAllocation, src: np.ndarray) -> None:
            drv.need_current("memcpy_htod")
            raw = np.ascontiguousarray(src).tobytes()
            if len(raw) > dest.nbytes:
                drv.errors.append(f"memcpy_htod of {len(raw)} bytes into {dest.nbytes}")
            drv.memory[int(dest)][: len(raw)] = raw

        def memcpy_htod_async(dest: DeviceAllocation, src: np.ndarray, stream: Any = None) -> None:
            memcpy_htod(dest, src)

        def memcpy_dtoh_async(dest: np.ndarray, src: DeviceAllocation, stream: Any = None) -> None:
            drv.need_current("memcpy_dtoh_async")
            dest[...] = np.frombuffer(bytes(drv.memory[int(src)][: dest.nbytes]), dest.dtype).reshape(dest.shape)

        mod.__dict__.update(init=init, Device=Device, Context=Context, mem_alloc=mem_alloc,
                            pagelocked_empty=pagelocked_empty, memcpy_htod=memcpy_htod,
                            memcpy_htod_async=memcpy_htod_async, memcpy_dtoh_async=memcpy_dtoh_async,
                            Stream=lambda flags=0: Stream(drv), Event=lambda flags=0: Event(drv))
        return mod

    def install(self) -> types.ModuleType:
        """Make ``import pycuda.driver`` give this driver, and route the runtime's raw
        ``cuCtxPopCurrent`` (ctypes on a real machine) to it."""
        mod = self.module()
        pkg = types.ModuleType("pycuda")
        pkg.driver = mod  # type: ignore[attr-defined]
        pkg.__path__ = []
        sys.modules["pycuda"] = pkg
        sys.modules["pycuda.driver"] = mod
        from runtime.tensorrt import cuda_context

        cuda_context.driver_pop_current = self.cu_pop
        return mod


class FakeContext:
    """pycuda's ``context`` / ``primary_context`` logic, line for line where it matters."""

    def __init__(self, drv: FakeDriver) -> None:
        self.drv = drv
        self.handle = PRIMARY
        self.valid = True
        self.use_count = 1
        self.thread = threading.get_ident()

    @staticmethod
    def prepare_context_switch(drv: FakeDriver) -> None:
        if drv.pycuda_stack:
            drv.cu_pop()

    @staticmethod
    def current_context(drv: FakeDriver, except_: FakeContext | None = None) -> FakeContext | None:
        while drv.pycuda_stack:
            top = drv.pycuda_stack[-1]
            if top is not except_ and top.valid:
                return top
            drv.pycuda_stack.pop()
        return None

    def push(self) -> None:
        FakeContext.prepare_context_switch(self.drv)
        self.drv.cu_push(self.handle)
        self.drv.pycuda_stack.append(self)
        self.use_count += 1

    def _release(self) -> None:  # cuDevicePrimaryCtxRelease: never pops
        self.drv.retain_count -= 1
        if self.drv.retain_count == 0:
            self.drv.reset_primary()

    def detach(self) -> None:
        if not self.valid:
            raise CudaError("context::detach: cannot detach from invalid context")
        active = FakeContext.current_context(self.drv) is self
        if active:
            self._release()
        elif self.thread == threading.get_ident():
            self.drv.cu_push(self.handle)
            self._release()  # "pop is implicit in detach": not for a primary context
        else:
            self.drv.errors.append("primary context detached from another thread: pycuda skips the release (leak)")
        self.valid = False
        if active:
            new = FakeContext.current_context(self.drv, self)
            if new is not None:
                self.drv.cu_push(new.handle)


class _ContextDependent:
    """pycuda objects that free themselves in their context (scoped_context_activation)."""

    kind = "object"

    def __init__(self, drv: FakeDriver) -> None:
        self.drv = drv
        drv.need_current(f"{self.kind} created")
        self.freed = False
        drv.live[id(self)] = self.kind

    def _cleanup(self, explicit: bool) -> None:
        if self.freed:
            return
        self.freed = True
        self.drv.live.pop(id(self), None)
        if not self.drv.alive:
            self.drv.errors.append(f"PyCUDA WARNING: a clean-up operation failed (dead context maybe?): {self.kind}")
        elif not self.drv.current_ok() and explicit:
            self.drv.errors.append(f"{self.kind} freed without its context current")

    def __del__(self) -> None:
        self._cleanup(explicit=False)


class DeviceAllocation(_ContextDependent):
    kind = "device memory"

    def __init__(self, drv: FakeDriver, nbytes: int) -> None:
        super().__init__(drv)
        self.nbytes = nbytes
        self.address = next(drv._addr)
        drv.memory[self.address] = bytearray(nbytes)

    def __int__(self) -> int:
        return self.address

    def __index__(self) -> int:
        return self.address

    def free(self) -> None:
        if self.freed:
            self.drv.errors.append("device memory freed twice")
        self._cleanup(explicit=True)


class HostAllocation(_ContextDependent):
    """Pinned host memory; ``np.asarray`` of it is the array pycuda returns (its ``.base``)."""

    kind = "pinned host memory"

    def __init__(self, drv: FakeDriver, shape: tuple[int, ...], dtype: np.dtype) -> None:
        super().__init__(drv)
        nbytes = max(int(np.prod(shape)) * dtype.itemsize, 1)
        self._buf = (ctypes.c_char * nbytes)()
        self.__array_interface__ = {"shape": shape, "typestr": dtype.str, "version": 3,
                                    "data": (ctypes.addressof(self._buf), False)}

    def free(self) -> None:
        self._cleanup(explicit=True)


class Stream(_ContextDependent):
    kind = "stream"

    def __init__(self, drv: FakeDriver) -> None:
        super().__init__(drv)
        self.handle = next(drv._addr)

    def synchronize(self) -> None:
        self.drv.need_current("stream synchronize")


class Event(_ContextDependent):
    kind = "event"

    def __init__(self, drv: FakeDriver) -> None:
        super().__init__(drv)
        self.t = 0.0

    def record(self, stream: Stream | None = None) -> Event:
        self.drv.need_current("event record")
        return self

    def synchronize(self) -> Event:
        return self

    def time_till(self, other: Event) -> float:
        return 0.0
