"""State the probe's modules share: a scratch directory, the simulated GPU (set by ``main``)
and the current :class:`~tests.runtime.tensorrt.api_probe.world.World` the fake constructors answer from."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

TMP = Path(tempfile.mkdtemp(prefix="trt-probe-"))
GPU: Any = None  # a runtime.tensorrt.gpu.GpuInfo once main() runs; read as state.GPU (rebound there)
CURRENT: list[Any] = [None]  # the World that trt.Builder / trt.Runtime / trt.OnnxParser answer from
