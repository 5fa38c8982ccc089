"""Write a file so that readers see the old bytes or the new ones, never half of them.

The one helper for atomic writes in the project: the runtime's stats and recordings, TensorRT
engines and their sidecars, calibration caches and benchmark results all go through it.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | Path, data: bytes | bytearray | memoryview) -> Path:
    """Write to a temporary file in the same directory, fsync, then rename over ``path``.

    Creates missing parent directories. On any error (the rename failing included) the temporary
    file is removed, ``path`` keeps its old bytes, and the error is raised. Returns ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_json(path: str | Path, obj: Any, sort_keys: bool = False) -> Path:
    """``obj`` as JSON (indent 2, a final newline, UTF-8), written with :func:`atomic_write_bytes`.

    ``sort_keys``: for files compared or hashed by content (engine sidecars, calibration caches).
    Raises TypeError for an object JSON cannot hold, before anything is written.
    """
    return atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=sort_keys) + "\n").encode())
