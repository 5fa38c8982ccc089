"""The CUDA context that TensorRT and pycuda share (pycuda is imported only when used).

TensorRT works in the device's *primary* context (the CUDA runtime's default), so pycuda retains
that same context instead of creating its own (``pycuda.autoinit`` would). Contexts are current
per thread, and the runtime's inference loop is not the thread that opened the engine, so every
use pushes the context and pops it after.

Releasing is the delicate part. pycuda's ``Context.detach()`` on a primary context calls
``cuDevicePrimaryCtxRelease``, which (unlike ``cuCtxDetach``) never pops the context from the
thread's CUDA context stack: detaching a context that is not current pushes it first and leaves it
there, and from a thread other than the one that retained it pycuda skips the release altogether.
:meth:`CudaContext.release` therefore pushes the context, pops the CUDA driver's stack itself
(``cuCtxPopCurrent``, through ctypes: pycuda has no call that pops without pushing something back)
and then detaches while pycuda still sees it as current, so the release happens on any thread and
both stacks end as they began.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib
import logging
import threading
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)


class PycudaUnavailable(RuntimeError):
    """pycuda is missing (it is the car's dependency: jetson/install.sh installs it)."""


class CudaContextError(RuntimeError):
    """The CUDA context stack is not what this process left it as (a bug, or a foreign push)."""


def import_pycuda() -> ModuleType:
    """``pycuda.driver``; :class:`PycudaUnavailable` saying how to install it on the car."""
    try:
        return importlib.import_module("pycuda.driver")
    except ImportError as e:
        raise PycudaUnavailable(
            f"pycuda is not installed ({e}); on the car run jetson/install.sh (pip install pycuda needs the CUDA toolkit)"
        ) from e


def _driver_pop_current() -> int:
    """``cuCtxPopCurrent`` from the driver library: pops this thread's current context, returns its handle."""
    lib = ctypes.CDLL("libcuda.so.1")
    popped = ctypes.c_void_p()
    rc = lib.cuCtxPopCurrent_v2(ctypes.byref(popped))
    if rc != 0:
        raise CudaContextError(f"cuCtxPopCurrent failed with CUDA error {rc}")
    return int(popped.value or 0)


# Replaceable so that tests without a driver can route it to their stand-in driver.
driver_pop_current: Callable[[], int] = _driver_pop_current


class CudaContext:
    """The device's primary context, retained once; :meth:`active` makes it current for a block.

    Raises :class:`PycudaUnavailable` when pycuda is missing, and pycuda's own errors when there is
    no usable device.
    """

    def __init__(self, device_id: int = 0) -> None:
        self.cuda = import_pycuda()
        self.cuda.init()
        self.device = self.cuda.Device(device_id)
        self._ctx: Any = self.device.retain_primary_context()
        self._lock = threading.Lock()

    @property
    def released(self) -> bool:
        """True once :meth:`release` ran."""
        return self._ctx is None

    @contextlib.contextmanager
    def active(self) -> Iterator[Any]:
        """Make the context current on this thread for the block; yields ``pycuda.driver``."""
        ctx = self._ctx
        if ctx is None:
            raise RuntimeError("CUDA context already released")
        ctx.push()
        try:
            yield self.cuda
        finally:
            self.cuda.Context.pop()

    def release(self) -> None:
        """Give the retained primary context back, from any thread; idempotent.

        Everything allocated in the context must be freed before (TensorRT objects included):
        when this was the last reference, CUDA resets the primary context.
        """
        with self._lock:
            ctx, self._ctx = self._ctx, None
        if ctx is None:
            return
        ctx.push()  # pycuda's stack and the driver's: [.., ctx]
        popped = driver_pop_current()  # driver's stack back as it was; pycuda still sees ctx on top
        if popped != int(ctx.handle):
            log.error("CUDA context stack: popped %#x, expected the primary context %#x", popped, int(ctx.handle))
        # ctx is pycuda's current context, so detach releases it without pushing it again, drops it
        # from pycuda's stack and re-pushes whatever pycuda had current before (if anything).
        ctx.detach()
