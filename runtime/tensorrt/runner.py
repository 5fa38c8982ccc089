"""Run a deserialized TensorRT engine with pycuda: pinned host buffers, one stream, async copies.

CUDA events around each stage give the GPU-side time of the host-to-device copy, the engine's
compute and the device-to-host copy separately (``last_timings_ms``), so benchmarks can tell
transfer cost from inference cost.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from runtime.tensorrt import api_common
from runtime.tensorrt.cuda_context import CudaContext
from runtime.tensorrt.shapes import IOTensor, resolve_shape
from runtime.tensorrt.sources import execution_module
from runtime.tensorrt.version import import_tensorrt

TRT_VERSIONS = ("8.5", "8.6", "10", "11")

log = logging.getLogger(__name__)


class EngineRunner:
    def __init__(
        self,
        engine_bytes: bytes,
        api: str,
        input_shapes: dict[str, tuple[int, ...]] | None = None,
        device_id: int = 0,
    ) -> None:
        trt = import_tensorrt()
        self._cuda_ctx = CudaContext(device_id)
        self.last_timings_ms: dict[str, float] = {}
        self._closed = False
        try:
            self._open(trt, engine_bytes, api, input_shapes)
        except BaseException:
            self._cuda_ctx.release()
            raise
        log.debug("engine I/O: %s", {t.name: (self.shapes[t.name], str(t.dtype)) for t in self.tensors})

    def _open(self, trt: Any, engine_bytes: bytes, api: str, input_shapes: dict[str, tuple[int, ...]] | None) -> None:
        exe = execution_module(api)
        with self._cuda_ctx.active() as cuda:
            # EngineLoadError from here means: wrong TensorRT version/GPU or a corrupt file.
            self._runtime, self._engine = api_common.deserialize(trt, engine_bytes)
            self._context = api_common.create_context(self._engine)
            self.tensors: list[IOTensor] = exe.io_tensors(trt, self._engine)
            wanted = {
                t.name: resolve_shape(t.shape, (input_shapes or {}).get(t.name), t.name)
                for t in self.tensors
                if t.is_input
            }
            self.shapes = exe.set_input_shapes(self._context, self.tensors, wanted)
            self.inputs = [t for t in self.tensors if t.is_input]
            self.outputs = [t for t in self.tensors if not t.is_input]
            self._host: dict[str, np.ndarray] = {
                t.name: cuda.pagelocked_empty(self.shapes[t.name], t.dtype) for t in self.tensors
            }
            self._device: dict[str, Any] = {
                name: cuda.mem_alloc(max(host.nbytes, 1)) for name, host in self._host.items()
            }
            self._execute = exe.bind(self._context, self.tensors, {n: int(d) for n, d in self._device.items()})
            self._stream = cuda.Stream()
            self._events = [cuda.Event() for _ in range(4)]

    def dtype(self, name: str) -> np.dtype:
        return self._host[name].dtype

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Copy ``feeds`` in, execute, copy every output out; returns fresh arrays by tensor name."""
        if self._closed:
            raise RuntimeError("engine runner is closed")
        for t in self.inputs:
            x = feeds[t.name]
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
        if self._closed:
            return
        self._closed = True
        with self._cuda_ctx.active():
            for mem in self._device.values():
                mem.free()
            self._device.clear()
            # TensorRT objects must go before the context they live in: context, engine, runtime.
            del self._context, self._engine, self._runtime
        self._cuda_ctx.release()
