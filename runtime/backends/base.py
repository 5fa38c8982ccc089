"""The backend interface: one preprocessed float input in, logical outputs out, by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from runtime.manifest import BuildEntry, Manifest, TensorIO
from runtime.preprocess import dequantize, quantize


class BackendUnavailable(RuntimeError):
    """The backend's library (or GPU) is not present on this machine."""


class Backend(ABC):
    """Runs one build. ``infer`` takes the (1, H, W, 3) float32 array the :class:`Preprocessor`
    makes and returns ``{logical output name: float32 array}``; integer builds are quantized and
    dequantized here with the scale and zero point the manifest records, so callers never care."""

    name: ClassVar[str]

    def __init__(self, path: Path, build: BuildEntry, manifest: Manifest) -> None:
        self.path = path
        self.build = build
        self.manifest = manifest
        self.input_io: TensorIO = build.io[manifest.input.name]
        self.output_io: dict[str, TensorIO] = {o.name: build.io[o.name] for o in manifest.outputs}

    @abstractmethod
    def _run(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """Native input (already in the build's dtype) -> {build's own output name: raw array}."""

    def infer(self, x: np.ndarray) -> dict[str, np.ndarray]:
        io = self.input_io
        if io.quantized:
            x = quantize(x, io.scale or 1.0, io.zero_point or 0, io.dtype)
        elif x.dtype != np.dtype(io.dtype):
            x = x.astype(io.dtype)
        raw = self._run(x)
        out: dict[str, np.ndarray] = {}
        for logical, oio in self.output_io.items():
            y = raw[oio.name]
            if oio.quantized:
                y = dequantize(y, oio.scale or 1.0, oio.zero_point or 0)
            elif y.dtype != np.float32:
                y = y.astype(np.float32)
            out[logical] = y
        return out

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release native resources."""

    def describe(self) -> dict[str, Any]:
        return {"backend": self.name, "format": self.build.format, "file": self.build.file}

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
