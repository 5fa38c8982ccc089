"""What machine and toolchain a benchmark ran on, and an id to tell machines apart.

Results are only comparable on the same hardware and TensorRT: the gate refuses to compare runs
whose ``machine.id`` differ (unless told to). The id hashes what decides speed — CPU model, core
count, architecture, GPU, compute capability, TensorRT version — not the host name, so identical
CI runners or identical cars compare, while a laptop and a Jetson never do silently.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import socket
import sys
from pathlib import Path
from typing import Any

from runtime.versions import distribution_versions

log = logging.getLogger(__name__)

# Distributions whose versions go with every result (missing ones are left out).
TOOLCHAIN_PACKAGES = (
    "rc-edge", "numpy", "onnxruntime", "onnxruntime-gpu", "ai-edge-litert", "tflite-runtime",
    "opencv-python-headless", "opencv-python", "tensorrt", "pycuda",
)
# Keys of the machine record that make up its id.
ID_KEYS = ("cpu_model", "logical_cores", "arch", "gpu", "compute_capability", "tensorrt")


def cpu_model(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU's marketing name (x86 ``model name``; ARM/Jetson: ``Hardware``/``CPU part``)."""
    try:
        text = cpuinfo.read_text(errors="replace")
    except OSError:
        return platform.processor() or platform.machine()
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    for key in ("model name", "Model", "Hardware", "cpu model"):
        if fields.get(key):
            return fields[key]
    if "CPU implementer" in fields:  # aarch64 without a name: implementer/part ids
        return f"ARM implementer {fields['CPU implementer']} part {fields.get('CPU part', '?')}"
    return platform.processor() or platform.machine()


def _gpu() -> dict[str, Any] | None:
    """CUDA GPU facts from the runtime's probe (pycuda, cuda-python or libcuda), or None."""
    try:
        from runtime.tensorrt.gpu import GpuUnavailable, detect_gpu
    except ImportError as e:  # pragma: no cover - part of this package
        log.debug("GPU probe not importable: %s", e)
        return None
    try:
        return detect_gpu(0).to_dict()
    except GpuUnavailable as e:
        log.debug("no GPU: %s", e)
        return None


def _tensorrt() -> str | None:
    from runtime.tensorrt.version import TensorRTUnavailable, installed_version

    try:
        return installed_version()
    except TensorRTUnavailable as e:
        log.debug("no TensorRT: %s", e)
        return None


def toolchain_versions() -> dict[str, str]:
    """Python and the runtime-side packages a benchmark ran with (missing ones left out)."""
    return {"python": platform.python_version(), **distribution_versions(TOOLCHAIN_PACKAGES)}


def memory_gb() -> float | None:
    try:
        import psutil

        return round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        return None


def physical_cores() -> int | None:
    try:
        import psutil

        n = psutil.cpu_count(logical=False)
        return int(n) if n else None
    except ImportError:
        return None


def machine_id(info: dict[str, Any]) -> str:
    key = {k: info.get(k) for k in ID_KEYS}
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]


def describe_machine() -> dict[str, Any]:
    """The machine record stored with every result (``id`` included)."""
    gpu = _gpu()
    info: dict[str, Any] = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "physical_cores": physical_cores(),
        "arch": platform.machine(),
        "memory_gb": memory_gb(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "gpu": gpu["device"] if gpu else None,
        "compute_capability": gpu["compute_capability"] if gpu else None,
        "jetson_model": gpu["jetson_model"] if gpu else None,
        "tensorrt": _tensorrt(),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
    }
    info["id"] = machine_id(info)
    return info


def same_machine(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return bool(a.get("id")) and a.get("id") == b.get("id")


def short(info: dict[str, Any]) -> str:
    """One line for messages: ``host (CPU, N cores, GPU, TensorRT x)``."""
    parts = [str(info.get("cpu_model")), f"{info.get('logical_cores')} cores"]
    if info.get("gpu"):
        parts.append(f"{info['gpu']} sm{info.get('compute_capability')}")
    if info.get("tensorrt"):
        parts.append(f"TensorRT {info['tensorrt']}")
    return f"{info.get('hostname')} ({', '.join(parts)}; id {info.get('id')})"
