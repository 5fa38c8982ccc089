"""The backend interface: preprocessed float inputs in, logical outputs out, both by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from runtime.manifest import BuildEntry, BundleError, Manifest, TensorIO
from runtime.preprocess import dequantize, quantize


class BackendUnavailable(RuntimeError):
    """The backend's library (or GPU) is not present on this machine."""


class Backend(ABC):
    """Runs one build, every input and output by its logical (manifest) name.

    ``infer`` takes ``{input name: float32 array}`` shaped as the manifest's inputs (batch 1; a
    bare array is accepted for a single-input model) and returns ``{logical output name: float32
    array}``. Integer builds are quantized and dequantized here with the scale and zero point the
    manifest records (TFLite's ``real = (q - zero_point) * scale``), so callers never care.
    Subclasses implement :meth:`_run` on the build's own tensor names.
    """

    name: ClassVar[str]

    def __init__(self, path: Path, build: BuildEntry, manifest: Manifest) -> None:
        self.path = path
        self.build = build
        self.manifest = manifest
        missing = [n for n in [i.name for i in manifest.inputs] + manifest.output_names() if n not in build.io]
        if missing:
            raise BundleError(f"{build.format}: the build's io has no entry for {missing}; re-run convert-model")
        self.input_io: dict[str, TensorIO] = {i.name: build.io[i.name] for i in manifest.inputs}
        self.output_io: dict[str, TensorIO] = {n: build.io[n] for n in manifest.output_names()}

    @abstractmethod
    def _run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """{build's own input tensor name: array in the build's dtype} -> {build's own output name: raw array}."""

    def infer(self, x: np.ndarray | Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """One inference (batch 1): float32 inputs by logical name, each shaped as its manifest entry
        (e.g. ``(1, H, W, 3) float32`` for an NHWC image), -> ``{logical output: float32 array}`` of
        the manifest's output shapes. ``KeyError`` names a missing input; ``ValueError`` when a bare
        array is passed to a model with several inputs."""
        if not isinstance(x, Mapping):
            if len(self.input_io) != 1:
                raise ValueError(f"the model takes {len(self.input_io)} inputs {list(self.input_io)}; pass a dict")
            x = {next(iter(self.input_io)): x}
        feeds: dict[str, np.ndarray] = {}
        for logical, io in self.input_io.items():
            try:
                v = x[logical]
            except KeyError:
                raise KeyError(f"input {logical!r} was not given (inputs: {list(self.input_io)})") from None
            if io.quantized:
                v = quantize(v, io.scale or 1.0, io.zero_point or 0, io.dtype)
            elif v.dtype != np.dtype(io.dtype):
                v = v.astype(io.dtype)
            feeds[io.name] = v
        raw = self._run(feeds)
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
        """``{backend, format, file}`` for logs and stats (subclasses add their own details)."""
        return {"backend": self.name, "format": self.build.format, "file": self.build.file}

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
