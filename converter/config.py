"""Typed converter config from TOML. Unknown keys are errors; CLI flags override the file.

Example (``rc-edge.toml``)::

    [model]
    name = "rc_pilot"
    tracking_uri = "http://mlflow.lan:5000"

    [convert]
    formats = ["onnx", "onnx-fp16", "tflite-fp32", "tflite-fp16", "trt-fp16"]
    output = "builds"
    opset = 17
    samples = 64
    score_threshold = 0.5   # detection models: the score a detection needs; NMS overlap limit
    iou_threshold = 0.45

    [tolerance]          # max abs error per format, overriding the formats table
    tflite-fp16 = 0.02

    [int8]               # what an INT8 build may cost on held-out frames (calibration.conversion.Int8Limits)
    max_steering_mae = 0.02

    [parity.fp16]        # perception builds: task figures vs the source (converter.task_parity.TaskGates)
    min_miou = 0.97
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from converter.errors import ConverterError
from runtime import formats
from runtime.tensorrt.engine_cache import DEFAULT_WORKSPACE_MB

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_CONFIG = Path("rc-edge.toml")


@dataclass
class RegisteredModelSection:
    name: str | None = None
    tracking_uri: str | None = None


@dataclass
class ConvertSection:
    formats: list[str] | None = None
    output: str = "builds"
    opset: int = 17
    samples: int = 64
    trt_workspace_mb: int = DEFAULT_WORKSPACE_MB
    score_threshold: float | None = None  # detections kept above this score (default 0.5)
    iou_threshold: float | None = None  # overlap above which NMS drops a box (default 0.45)


@dataclass
class Config:
    model: RegisteredModelSection = field(default_factory=RegisteredModelSection)
    convert: ConvertSection = field(default_factory=ConvertSection)
    tolerance: dict[str, float] = field(default_factory=dict)
    int8: dict[str, float] = field(default_factory=dict)
    parity: dict[str, Any] = field(default_factory=dict)  # checked by TaskGates.from_config


def _section(cls: type, data: dict[str, Any], where: str) -> Any:
    names = {f.name: f for f in fields(cls)}
    unknown = set(data) - set(names)
    if unknown:
        raise ConverterError(f"{where}: unknown key(s) {sorted(unknown)}; allowed: {sorted(names)}")
    return cls(**data)


def load_config(path: Path | None) -> Config:
    """Load ``path`` (or ./rc-edge.toml when present); defaults otherwise."""
    if path is None:
        if not DEFAULT_CONFIG.is_file():
            return Config()
        path = DEFAULT_CONFIG
    try:
        data = tomllib.loads(path.read_text())
    except FileNotFoundError:
        raise ConverterError(f"config {path} not found") from None
    except tomllib.TOMLDecodeError as e:
        raise ConverterError(f"config {path} is not valid TOML: {e}") from None
    unknown = set(data) - {"model", "convert", "tolerance", "int8", "parity"}
    if unknown:
        raise ConverterError(
            f"config {path}: unknown section(s) {sorted(unknown)}; allowed: model, convert, tolerance, int8, parity"
        )
    try:
        cfg = Config(
            model=_section(RegisteredModelSection, data.get("model", {}), f"{path} [model]"),
            convert=_section(ConvertSection, data.get("convert", {}), f"{path} [convert]"),
            tolerance={k: float(v) for k, v in data.get("tolerance", {}).items()},
            int8={k: float(v) for k, v in data.get("int8", {}).items()},
            parity=dict(data.get("parity", {})),
        )
        from converter.task_parity import TaskGates

        TaskGates.from_config(cfg.parity)  # unknown keys and bad values fail here, before any work
    except (TypeError, ValueError) as e:
        raise ConverterError(f"config {path}: {e}") from None
    for fmt in [*(cfg.convert.formats or []), *cfg.tolerance]:
        if fmt not in formats.BY_ID:
            raise ConverterError(f"config {path}: unknown format {fmt!r}; known: {', '.join(formats.BY_ID)}")
    return cfg
