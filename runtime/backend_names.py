"""Backend names, and the old names still accepted for them.

``tflite`` was the LiteRT backend's name before LiteRT was called LiteRT; configs, scripts and
command lines written then keep working, with one deprecation line logged per use.
The file format ids (``tflite-fp32`` ...) and ``.tflite`` files keep their names: they name the
file format, not the backend.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

BACKEND_NAMES: tuple[str, ...] = ("tensorrt", "onnxruntime", "litert")
# old name -> current name
DEPRECATED_BACKEND_NAMES: dict[str, str] = {"tflite": "litert"}


def canonical_backend(name: str) -> str:
    """The current name for a backend name (``"tflite"`` -> ``"litert"``, logged as deprecated).

    Unknown names are returned unchanged: the caller's own check reports them with its choices.
    """
    new = DEPRECATED_BACKEND_NAMES.get(name)
    if new is None:
        return name
    log.warning("backend %r is deprecated: it is now called %r; write %r instead", name, new, new)
    return new
