"""Which TensorRT is installed, and which of our API paths drives it.

TensorRT's Python API changed twice in ways that matter here (see DESIGN.md):

* ``"8"``  — 8.6 (JetPack 6.0, x86 workstations): explicit-batch flag, builder precision flags, INT8
  calibrators,
  the bindings execution API.
* ``"10"`` — 10.x (JetPack 6): explicit batch implied, tensor API, ``execute_async_v3``; INT8 from a
  Q/DQ ONNX.
* ``"11"`` — 11.x (JetPack 7): no precision flags, no calibrators; every network is strongly typed,
  so precision comes from the ONNX itself (``model_fp16.onnx`` / ``model_int8.qdq.onnx``).

``tensorrt`` is imported only when asked for: the module must import anywhere.
"""

from __future__ import annotations

import importlib
import re
from types import ModuleType

TRT_VERSIONS = ("8.6", "10", "11")  # what this module may touch (test_api_names.py)
API_PATHS = ("8", "10", "11")
SUPPORTED_TEXT = "TensorRT 8.6 (JetPack 6.0, x86), 10.x (JetPack 6.1/6.2) or 11.x (JetPack 7)"


class TensorRTUnavailable(RuntimeError):
    """The ``tensorrt`` Python package cannot be imported here."""


class UnsupportedTensorRT(RuntimeError):
    """A TensorRT version none of our API paths drives."""


def import_tensorrt() -> ModuleType:
    """``import tensorrt``, or :class:`TensorRTUnavailable` saying how to get it."""
    try:
        return importlib.import_module("tensorrt")
    except ImportError as e:
        raise TensorRTUnavailable(
            f"TensorRT is not installed ({e}); on a Jetson install JetPack's python3-libnvinfer and use a "
            "venv made with --system-site-packages (jetson/install.sh does both)"
        ) from e
    except OSError as e:  # the binding is there but libnvinfer is not (pip's bindings-only wheel)
        raise TensorRTUnavailable(f"TensorRT's libraries cannot be loaded: {e}") from e


def parse_version(version: str) -> tuple[int, ...]:
    """``"10.3.0.30"`` -> ``(10, 3, 0, 30)``; suffixes such as ``.post1`` or ``rc1`` are dropped."""
    parts: list[int] = []
    for piece in version.strip().split("."):
        m = re.match(r"\d+", piece)
        if not m:
            break
        parts.append(int(m.group()))
    if not parts:
        raise UnsupportedTensorRT(f"cannot read a TensorRT version from {version!r}")
    return tuple(parts)


def api_path(version: str) -> str:
    """Map a TensorRT version to the API path that drives it: ``"8"``, ``"10"`` or ``"11"``."""
    v = parse_version(version)
    major, minor = v[0], (v[1] if len(v) > 1 else 0)
    if major == 8 and minor == 6:
        return "8"
    if major == 8 and minor == 5:
        # 8.5 is JetPack 5's TensorRT, and JetPack 5's Python is 3.8: this runtime needs 3.10+.
        raise UnsupportedTensorRT(
            f"TensorRT {version} (JetPack 5) is not supported: JetPack 5 has Python 3.8 and this runtime needs "
            f"3.10+; upgrade the Jetson to JetPack 6 (TensorRT 8.6 or 10.x). This runtime drives {SUPPORTED_TEXT}"
        )
    if major == 10:
        return "10"
    if major == 11:
        return "11"
    raise UnsupportedTensorRT(f"TensorRT {version} is not supported; this runtime drives {SUPPORTED_TEXT}")


def installed_version() -> str:
    """The installed TensorRT's version string (imports tensorrt)."""
    return str(import_tensorrt().__version__)
