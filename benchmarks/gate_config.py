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

from benchmarks.side_by_side import Limits, RoundSettings
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
    max_p50_regression_pct: float = 10.0
    min_p50_regression_ms: float = 0.1
    max_fps_regression_pct: float = 10.0
    # [side_by_side]: how candidate and baseline are measured together (benchmarks/side_by_side.py)
    rounds: int = 10
    round_warmup: int = 20
    round_min_count: int = 200
    round_min_time_s: float = 0.3
    confidence: float = 0.95
    seed: int = 0
    accuracy: dict[str, float] = field(default_factory=dict)  # format -> max abs error
    required: tuple[str, ...] = ("onnx", "tflite-fp32", "tflite-fp16")
    baseline_builds_required: bool = True
    source: str = "built-in defaults"

    def accuracy_limit(self, fmt: str) -> float:
        return self.accuracy.get(fmt, formats.get(fmt).tolerance)

    def limits(self) -> Limits:
        """The per-figure regression limits of the side-by-side comparison."""
        return Limits((self.max_p50_regression_pct, self.min_p50_regression_ms),
                      (self.max_p99_regression_pct, self.min_p99_regression_ms), self.max_fps_regression_pct)

    def round_settings(self, rounds: int | None = None, threads: int | None = None,
                       trt_cache_dir: str | None = None) -> RoundSettings:
        """How the side-by-side rounds run (``rounds`` overrides the file's, e.g. ``--rounds``)."""
        return RoundSettings(rounds or self.rounds, self.round_warmup, self.round_min_count, self.round_min_time_s,
                             self.confidence, self.seed, threads, trt_cache_dir)


_LATENCY_KEYS = ("max_p99_regression_pct", "min_p99_regression_ms", "max_loop_p99_regression_pct",
                 "min_loop_p99_regression_ms", "max_p50_regression_pct", "min_p50_regression_ms",
                 "max_fps_regression_pct")
_BUILDS_KEYS = ("required", "baseline_builds_required")
_SIDE_INT_KEYS = ("rounds", "round_warmup", "round_min_count", "seed")
_SIDE_KEYS = (*_SIDE_INT_KEYS, "round_min_time_s", "confidence")


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
    _check_keys(source, data, ("latency", "accuracy", "builds", "side_by_side"))
    for section in data:
        if not isinstance(data[section], dict):
            raise GateConfigError(f"{source}: [{section}] must be a table")
    lat, acc, blds = data.get("latency", {}), data.get("accuracy", {}), data.get("builds", {})
    _check_keys(f"{source} [latency]", lat, _LATENCY_KEYS)
    _check_keys(f"{source} [builds]", blds, _BUILDS_KEYS)
    kwargs: dict[str, Any] = {k: _number(f"{source} [latency] {k}", v) for k, v in lat.items()}
    kwargs.update(_side_by_side(source, data.get("side_by_side", {})))
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


def _side_by_side(source: str, side: dict[str, Any]) -> dict[str, Any]:
    _check_keys(f"{source} [side_by_side]", side, _SIDE_KEYS)
    out: dict[str, Any] = {}
    for k, v in side.items():
        where = f"{source} [side_by_side] {k}"
        if k in _SIDE_INT_KEYS:
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise GateConfigError(f"{where} = {v!r} must be a whole number >= 0")
            out[k] = v
        else:
            out[k] = _number(where, v)
    if out.get("rounds", 3) < 3:
        raise GateConfigError(f"{source} [side_by_side] rounds = {out['rounds']} must be >= 3 (an interval needs rounds)")
    if not 0 < out.get("confidence", 0.95) < 1:
        raise GateConfigError(f"{source} [side_by_side] confidence = {out['confidence']} must be between 0 and 1")
    return out


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
