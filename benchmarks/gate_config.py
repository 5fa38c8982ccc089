"""The release gate's thresholds: TOML, validated, unknown keys are errors.

Defaults ship in ``benchmarks/gate.toml`` (package data); ``--gate-config FILE`` replaces them, and
every key a file leaves out keeps the built-in default below.
"""

from __future__ import annotations

import math
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from runtime import formats

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

DEFAULT_FILE = "gate.toml"


class GateConfigError(ValueError):
    """A bad gate config; the message names the file, section and key."""


@dataclass(frozen=True)
class GateConfig:
    max_p99_regression_pct: float = 10.0
    min_p99_regression_ms: float = 0.2
    max_loop_p99_regression_pct: float = 15.0
    min_loop_p99_regression_ms: float = 0.5
    accuracy: dict[str, float] = field(default_factory=dict)  # format -> max abs error
    required: tuple[str, ...] = ("onnx", "tflite-fp32", "tflite-fp16")
    baseline_builds_required: bool = True
    source: str = "built-in defaults"

    def accuracy_limit(self, fmt: str) -> float:
        return self.accuracy.get(fmt, formats.get(fmt).tolerance)


_LATENCY_KEYS = ("max_p99_regression_pct", "min_p99_regression_ms", "max_loop_p99_regression_pct",
                 "min_loop_p99_regression_ms")
_BUILDS_KEYS = ("required", "baseline_builds_required")


def _number(where: str, v: Any) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
        raise GateConfigError(f"{where} = {v!r} must be a finite number")
    if v < 0:
        raise GateConfigError(f"{where} = {v} must be >= 0")
    return float(v)


def _check_keys(where: str, got: dict[str, Any], allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(got) - set(allowed))
    if unknown:
        raise GateConfigError(f"{where}: unknown key(s) {unknown}; allowed: {', '.join(allowed)}")


def _format_id(where: str, fmt: Any) -> str:
    if not isinstance(fmt, str) or fmt not in formats.BY_ID:
        raise GateConfigError(f"{where}: unknown format {fmt!r}; known: {', '.join(formats.BY_ID)}")
    return fmt


def parse_gate_config(data: dict[str, Any], source: str) -> GateConfig:
    _check_keys(source, data, ("latency", "accuracy", "builds"))
    for section in data:
        if not isinstance(data[section], dict):
            raise GateConfigError(f"{source}: [{section}] must be a table")
    lat, acc, blds = data.get("latency", {}), data.get("accuracy", {}), data.get("builds", {})
    _check_keys(f"{source} [latency]", lat, _LATENCY_KEYS)
    _check_keys(f"{source} [builds]", blds, _BUILDS_KEYS)
    kwargs: dict[str, Any] = {k: _number(f"{source} [latency] {k}", v) for k, v in lat.items()}
    kwargs["accuracy"] = {
        _format_id(f"{source} [accuracy]", k): _number(f"{source} [accuracy] {k}", v) for k, v in acc.items()
    }
    if "required" in blds:
        req = blds["required"]
        if not isinstance(req, list):
            raise GateConfigError(f"{source} [builds] required must be a list of format ids")
        kwargs["required"] = tuple(_format_id(f"{source} [builds] required", f) for f in req)
    if "baseline_builds_required" in blds:
        if not isinstance(blds["baseline_builds_required"], bool):
            raise GateConfigError(f"{source} [builds] baseline_builds_required must be true or false")
        kwargs["baseline_builds_required"] = blds["baseline_builds_required"]
    return GateConfig(**kwargs, source=source)


def load_gate_config(path: Path | None = None) -> GateConfig:
    """``path``, or the shipped ``benchmarks/gate.toml``."""
    if path is None:
        text = resources.files("benchmarks").joinpath(DEFAULT_FILE).read_text()
        source = f"benchmarks/{DEFAULT_FILE}"
    else:
        try:
            text = Path(path).read_text()
        except OSError as e:
            raise GateConfigError(f"gate config {path}: cannot read it ({e.strerror or e})") from None
        source = str(path)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise GateConfigError(f"gate config {source} is not valid TOML: {e}") from None
    return parse_gate_config(data, source)
