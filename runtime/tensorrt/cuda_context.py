"""The CUDA context that TensorRT and pycuda share (pycuda is imported only when used).

TensorRT works in the device's *primary* context (the CUDA runtime's default), so pycuda retains
that same context instead of creating its own (``pycuda.autoinit`` would). Contexts are current
per thread, and the runtime's inference loop is not the thread that opened the engine, so every
use pushes the context and pops it after.
"""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Iterator
from types import ModuleType
from typing import Any


class PycudaUnavailable(RuntimeError):
    """pycuda is missing (it is the car's dependency: jetson/install.sh installs it)."""


def import_pycuda() -> ModuleType:
    try:
        return importlib.import_module("pycuda.driver")
    except ImportError as e:
        raise PycudaUnavailable(
            f"pycuda is not installed ({e}); on the car run jetson/install.sh (pip install pycuda needs the CUDA toolkit)"
        ) from e


class CudaContext:
    def __init__(self, device_id: int = 0) -> None:
        self.cuda = import_pycuda()
        self.cuda.init()
        self.device = self.cuda.Device(device_id)
        self._ctx: Any = self.device.retain_primary_context()

    @contextlib.contextmanager
    def active(self) -> Iterator[Any]:
        """Make the context current on this thread for the block; yields ``pycuda.driver``."""
        if self._ctx is None:
            raise RuntimeError("CUDA context already released")
        self._ctx.push()
        try:
            yield self.cuda
        finally:
            self.cuda.Context.pop()

    def release(self) -> None:
        if self._ctx is not None:
            self._ctx.detach()
            self._ctx = None
