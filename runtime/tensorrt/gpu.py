"""Which CUDA GPU this is: compute capability (``"8.7"``), name, and the Jetson model when on one.

Engines are tied to the GPU, so these feed the engine cache key and the engine's file name. The
information comes from whichever CUDA binding is present — pycuda (the car's dependency),
cuda-python, or the driver library itself through ctypes — so detection works before pycuda is
installed. Nothing here is imported at module load.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

JETSON_MODEL_PATH = Path("/proc/device-tree/model")


class GpuUnavailable(RuntimeError):
    """No usable CUDA GPU (or no way to ask the driver about it)."""


@dataclass(frozen=True)
class GpuInfo:
    """One CUDA GPU: ``compute_capability`` (``"8.7"``), ``cuda_name`` (CUDA's device name),
    ``jetson_model`` (the board model from the device tree, None off a Jetson) and ``via`` (the
    binding that answered: pycuda, cuda-python or libcuda).
    """

    compute_capability: str  # "8.7"
    cuda_name: str  # what CUDA calls it: "Orin", "NVIDIA GeForce RTX 4090"
    jetson_model: str | None  # "NVIDIA Jetson Orin Nano Developer Kit", or None off a Jetson
    via: str  # pycuda | cuda-python | libcuda

    @property
    def device(self) -> str:
        """The name engines are keyed by: on a Jetson the board model (CUDA says "Orin" for every
        Orin module, but an AGX Orin engine is tuned for more SMs than a Nano has)."""
        return self.jetson_model or self.cuda_name

    def to_dict(self) -> dict[str, Any]:
        """The fields plus :attr:`device`, for logs and :attr:`EngineInfo.gpu <runtime.tensorrt.builder.EngineInfo>`."""
        d = asdict(self)
        d["device"] = self.device
        return d


def format_cc(major: int, minor: int) -> str:
    """``(8, 7)`` -> ``'8.7'`` (compute capability as text)."""
    return f"{int(major)}.{int(minor)}"


def jetson_model(path: Path = JETSON_MODEL_PATH) -> str | None:
    """The board model from the device tree (NUL-terminated there), or None when not on a Jetson."""
    try:
        raw = path.read_bytes()
    except OSError:
        return None
    text = raw.replace(b"\x00", b"").decode("utf-8", "replace").strip()
    return text if "jetson" in text.lower() else None


def _via_pycuda(device_id: int) -> tuple[str, str]:
    cuda = importlib.import_module("pycuda.driver")
    cuda.init()
    dev = cuda.Device(device_id)
    major, minor = dev.compute_capability()
    return format_cc(major, minor), str(dev.name())


def _via_cuda_python(device_id: int) -> tuple[str, str]:
    try:  # cuda-python >= 12.6 moved the driver module
        drv = importlib.import_module("cuda.bindings.driver")
    except ImportError:
        drv = importlib.import_module("cuda.cuda")

    def ok(result: Any) -> Any:
        err, *rest = result if isinstance(result, tuple) else (result,)
        if int(err) != 0:
            raise GpuUnavailable(f"CUDA driver error {int(err)}")
        return rest[0] if len(rest) == 1 else rest

    ok(drv.cuInit(0))
    dev = ok(drv.cuDeviceGet(device_id))
    attr = drv.CUdevice_attribute
    major = ok(drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, dev))
    minor = ok(drv.cuDeviceGetAttribute(attr.CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, dev))
    name = ok(drv.cuDeviceGetName(256, dev))
    return format_cc(major, minor), bytes(name).split(b"\x00")[0].decode()


# CUdevice_attribute values from cuda.h (stable since CUDA 6).
_CC_MAJOR, _CC_MINOR = 75, 76


def _via_libcuda(device_id: int) -> tuple[str, str]:
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        raise GpuUnavailable(f"the NVIDIA driver library is not here ({e})") from None

    def check(rc: int, what: str) -> None:
        if rc != 0:
            raise GpuUnavailable(f"{what} failed with CUDA error {rc}")

    check(lib.cuInit(0), "cuInit")
    dev = ctypes.c_int()
    check(lib.cuDeviceGet(ctypes.byref(dev), device_id), "cuDeviceGet")
    major, minor = ctypes.c_int(), ctypes.c_int()
    check(lib.cuDeviceGetAttribute(ctypes.byref(major), _CC_MAJOR, dev), "cuDeviceGetAttribute")
    check(lib.cuDeviceGetAttribute(ctypes.byref(minor), _CC_MINOR, dev), "cuDeviceGetAttribute")
    buf = ctypes.create_string_buffer(256)
    check(lib.cuDeviceGetName(buf, 256, dev), "cuDeviceGetName")
    return format_cc(major.value, minor.value), buf.value.decode()


_PROBES: tuple[tuple[str, Callable[[int], tuple[str, str]]], ...] = (
    ("pycuda", _via_pycuda),
    ("cuda-python", _via_cuda_python),
    ("libcuda", _via_libcuda),
)


def detect_gpu(device_id: int = 0) -> GpuInfo:
    """Ask the first CUDA binding that works; :class:`GpuUnavailable` listing why each failed."""
    reasons = []
    for via, probe in _PROBES:
        try:
            cc, name = probe(device_id)
        except ImportError as e:
            reasons.append(f"{via}: not installed ({e.name or e})")
            continue
        except Exception as e:  # driver errors surface as each binding's own exception type
            reasons.append(f"{via}: {type(e).__name__}: {e}")
            continue
        info = GpuInfo(compute_capability=cc, cuda_name=name, jetson_model=jetson_model(), via=via)
        log.debug("GPU %d: %s", device_id, info)
        return info
    raise GpuUnavailable("no CUDA GPU found (" + "; ".join(reasons) + ")")
