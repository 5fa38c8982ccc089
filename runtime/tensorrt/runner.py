"""Run a deserialized TensorRT engine with pycuda: pinned host buffers, one stream, async copies.

CUDA events around each stage give the GPU-side time of the host-to-device copy, the engine's
compute and the device-to-host copy separately (``last_timings_ms``), so benchmarks can tell
transfer cost from inference cost.

Teardown order matters (NVIDIA/TensorRT#1632, #2052, #4122: "context is destroyed" at exit): every
TensorRT object and every pycuda object must go while the primary context is current and before it
is released. :meth:`EngineRunner.close` (also run when opening fails half-way, and at interpreter
exit for runners nobody closed) waits for the stream, drops the execute closure (it holds the
execution context), then the execution context, engine and runtime in that order, frees device and
pinned host buffers, destroys events and stream, and only then releases the context.
"""

from __future__ import annotations

import atexit
import logging
import threading
import traceback
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from runtime.tensorrt import api_common
from runtime.tensorrt.api_paths import execution_module
from runtime.tensorrt.cuda_context import CudaContext
from runtime.tensorrt.shapes import IOTensor, resolve_shape
from runtime.tensorrt.version import import_tensorrt

TRT_VERSIONS = ("8.6", "10", "11")

log = logging.getLogger(__name__)

_OPEN: weakref.WeakSet[EngineRunner] = weakref.WeakSet()


@atexit.register
def _close_forgotten_runners() -> None:
    # atexit runs before pycuda's module state and TensorRT's libraries are torn down.
    for runner in list(_OPEN):
        runner.close()


class EngineRunner:
    """One engine, one execution context, its I/O buffers. Inputs and outputs go by tensor name.

    ``input_shapes`` fixes each dynamic input (default: batch 1). Raises ``EngineLoadError`` when
    TensorRT refuses the engine, ``EngineBuildError`` when it refuses a shape or an address,
    :class:`~runtime.tensorrt.cuda_context.PycudaUnavailable` without pycuda. Nothing stays
    allocated when the constructor raises.
    """

    def __init__(
        self,
        engine_bytes: bytes,
        api: str,
        input_shapes: Mapping[str, tuple[int, ...]] | None = None,
        device_id: int = 0,
    ) -> None:
        trt = import_tensorrt()
        self.last_timings_ms: dict[str, float] = {}
        self._closed = False
        self._lock = threading.Lock()
        # Everything _open makes, so that _teardown can free whatever exists at any point.
        self._execute: Callable[[int], bool] | None = None
        self._runtime: Any = None
        self._engine: Any = None
        self._context: Any = None
        self._host: dict[str, np.ndarray] = {}
        self._device: dict[str, Any] = {}
        self._stream: Any = None
        self._events: list[Any] = []
        self.tensors: list[IOTensor] = []
        self.shapes: dict[str, tuple[int, ...]] = {}
        self._cuda_ctx = CudaContext(device_id)
        try:
            self._open(trt, engine_bytes, api, dict(input_shapes or {}))
        except BaseException as e:
            # The traceback's frames hold TensorRT objects (a rejected execution context, say):
            # clear them so that those die in _teardown, while the context is current.
            traceback.clear_frames(e.__traceback__)
            self._closed = True
            self._teardown()
            raise
        _OPEN.add(self)
        log.debug("engine I/O: %s", {t.name: (self.shapes[t.name], str(t.dtype)) for t in self.tensors})

    @property
    def inputs(self) -> list[IOTensor]:
        """The engine's input tensors."""
        return [t for t in self.tensors if t.is_input]

    @property
    def outputs(self) -> list[IOTensor]:
        """The engine's output tensors."""
        return [t for t in self.tensors if not t.is_input]

    def _open(self, trt: Any, engine_bytes: bytes, api: str, input_shapes: dict[str, tuple[int, ...]]) -> None:
        exe = execution_module(api)
        with self._cuda_ctx.active() as cuda:
            # EngineLoadError from here means: wrong TensorRT version/GPU or a corrupt file.
            self._runtime, self._engine = api_common.deserialize(trt, engine_bytes)
            self._context = api_common.create_context(self._engine)
            self.tensors = exe.io_tensors(trt, self._engine)
            wanted = {t.name: resolve_shape(t.shape, input_shapes.get(t.name), t.name) for t in self.inputs}
            self.shapes = exe.set_input_shapes(self._context, self.tensors, wanted)
            for t in self.tensors:
                self._host[t.name] = cuda.pagelocked_empty(self.shapes[t.name], t.dtype)
                self._device[t.name] = cuda.mem_alloc(max(self._host[t.name].nbytes, 1))
            self._stream = cuda.Stream()
            self._events = [cuda.Event() for _ in range(4)]
            self._execute = exe.bind(self._context, self.tensors, {n: int(d) for n, d in self._device.items()})

    def dtype(self, name: str) -> np.dtype:
        """The numpy dtype of tensor ``name`` (its host buffer's); ``KeyError`` for an unknown name."""
        return self._host[name].dtype

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy ``feeds`` (every input, by tensor name) in, execute, copy every output out.

        Returns fresh arrays by tensor name. ``ValueError`` for a missing input or a wrong shape.
        """
        missing = [t.name for t in self.inputs if t.name not in feeds]
        if missing:
            raise ValueError(f"engine inputs {missing} were not fed (got {sorted(feeds)})")
        with self._lock:
            if self._closed or self._execute is None:
                raise RuntimeError("engine runner is closed")
            for t in self.inputs:
                x = np.asarray(feeds[t.name])
                host = self._host[t.name]
                if x.shape != host.shape:
                    raise ValueError(f"{t.name}: expected shape {host.shape}, got {x.shape}")
                np.copyto(host, x, casting="unsafe")  # also casts to the engine's dtype (e.g. fp16 I/O)
            ev = self._events
            stream = self._stream
            with self._cuda_ctx.active() as cuda:
                ev[0].record(stream)
                for t in self.inputs:
                    cuda.memcpy_htod_async(self._device[t.name], self._host[t.name], stream)
                ev[1].record(stream)
                if not self._execute(stream.handle):
                    raise RuntimeError("TensorRT failed to enqueue the engine")
                ev[2].record(stream)
                for t in self.outputs:
                    cuda.memcpy_dtoh_async(self._host[t.name], self._device[t.name], stream)
                ev[3].record(stream)
                ev[3].synchronize()
                self.last_timings_ms = {
                    "h2d": ev[0].time_till(ev[1]),
                    "compute": ev[1].time_till(ev[2]),
                    "d2h": ev[2].time_till(ev[3]),
                }
            return {t.name: self._host[t.name].copy() for t in self.outputs}

    def close(self) -> None:
        """Free everything (see the module docstring for the order); idempotent, any thread."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        _OPEN.discard(self)
        self._teardown()

    def _teardown(self) -> None:
        if self._cuda_ctx.released:
            return
        try:
            with self._cuda_ctx.active():
                if self._stream is not None:
                    self._stream.synchronize()  # nothing may still run on what is freed below
                # The execute closure holds the execution context: it goes first, then TensorRT's
                # objects in dependency order, each one dying now, while the context is current.
                self._execute = None
                self._context = None
                self._engine = None
                self._runtime = None
                for mem in self._device.values():
                    mem.free()
                self._device.clear()
                for host in self._host.values():
                    _free_pinned(host)
                self._host.clear()
                self._events.clear()  # pycuda destroys events and stream as their last reference goes
                self._stream = None
        finally:
            self._cuda_ctx.release()


def _free_pinned(host: np.ndarray) -> None:
    """pycuda's ``pagelocked_empty`` arrays keep their allocation as ``.base``; free it now."""
    base = host.base
    while base is not None and not hasattr(base, "free"):
        base = getattr(base, "base", None)
    if base is not None:
        base.free()
