"""What every format builder takes and returns. Builders are listed in ``runtime.formats.FORMATS``."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from runtime.formats import Format
from runtime.manifest import Manifest, TensorIO
from runtime.tensorrt.engine_cache import DEFAULT_WORKSPACE_MB


class BuildError(RuntimeError):
    """This format cannot be built from this model (the message names why, e.g. the op)."""


class BuildSkipped(RuntimeError):
    """This format cannot be built on this machine (e.g. no GPU/TensorRT); not a failure unless asked for."""


class SourceModel(Protocol):
    """The model being converted, loaded once (see converter.sources)."""

    input_name: str
    output_names: list[str]

    def predict(self, x: np.ndarray) -> dict[str, np.ndarray]:
        """(N, H, W, 3) float32 -> {logical output name: (N, ...) float32}."""
        ...


@dataclass
class BuildOptions:
    opset: int = 17
    trt_workspace_mb: int = DEFAULT_WORKSPACE_MB
    trt_cache_dir: Path | None = None  # timing cache + calibration caches (None: next to the bundle)


@dataclass
class BuildContext:
    fmt: Format
    staging: Path  # the bundle being written: put the build's file here
    manifest: Manifest  # input/outputs of the model; builds made so far are in manifest.builds
    source: SourceModel | None  # None when building from a bundle's ONNX alone (TensorRT on the car)
    saved_model_dir: Path | None  # SavedModel export shared by the ONNX and TFLite builders
    calibration: dict[str, np.ndarray] | None = None  # {input name: (N, ...) float32}, every model input
    calibration_id: str | None = None  # sha256 of the calibration set (cache keys)
    options: BuildOptions = field(default_factory=BuildOptions)


@dataclass
class BuildResult:
    file: str  # relative to the bundle
    io: dict[str, TensorIO]  # logical name -> this build's tensor
    toolchain: dict[str, str]
    target: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
