"""Typed runtime configuration: TOML file, validated, unknown keys are errors, CLI flags override.

Every section is a dataclass; the loader checks each key exists and each value has the declared
type, then the dataclasses check ranges. Errors are one line naming the file, section and key and
what to write instead. See ``runtime/runtime.example.toml`` for every key with its default.
"""

from __future__ import annotations

import dataclasses
import difflib
import sys
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.backend_names import BACKEND_NAMES, canonical_backend
from runtime.imu.base import ImuError
from runtime.imu.uri import parse_imu_uri
from runtime.odometry import OdometryError, check_speed_uri
from runtime.pilots.lane_config import LaneConfig
from runtime.policy import PolicyConfig
from runtime.safety.config import SafetyConfig
from runtime.shadow.config import ShadowConfig

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10 (JetPack 6)
    import tomli as tomllib

BACKEND_CHOICES = ("auto", *BACKEND_NAMES)
PILOT_CHOICES = ("auto", "end_to_end", "lane_follow")  # runtime.pilots.PILOTS (checked by a test)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")


class ConfigError(ValueError):
    """Bad configuration; the message names the key and the fix."""


@dataclass
class ModelSection:
    bundle: str = ""  # the bundle directory made by convert-model (required)
    backend: str = "auto"  # auto | tensorrt | onnxruntime | litert (tflite: the old name for litert)
    format: str = ""  # a build id from the formats table; empty: the backend's default
    threads: int = 0  # CPU threads for ONNX Runtime / LiteRT; 0: the library's default
    behavior: str = ""  # for a model with a behavior input: one of its labels (checked against the bundle)
    pilot: str = "auto"  # auto (the bundle's task decides) | end_to_end | lane_follow

    def __post_init__(self) -> None:
        if self.pilot not in PILOT_CHOICES:
            raise ConfigError(f"[model] pilot = {self.pilot!r}; choose from {', '.join(PILOT_CHOICES)}")
        self.backend = canonical_backend(self.backend)
        if self.backend not in BACKEND_CHOICES:
            raise ConfigError(f"[model] backend = {self.backend!r}; choose from {', '.join(BACKEND_CHOICES)}")
        if self.threads < 0:
            raise ConfigError(f"[model] threads = {self.threads} must be >= 0")


@dataclass
class BundleSection:
    # ed25519 public keys (PEM files) whose signature a bundle must carry; empty: unsigned bundles run
    trust: tuple[str, ...] = ()


@dataclass
class CameraSection:
    uri: str = "csi://0"
    reconnect_interval_s: float = 0.5

    def __post_init__(self) -> None:
        if self.reconnect_interval_s <= 0:
            raise ConfigError("[camera] reconnect_interval_s must be positive")


@dataclass
class ImuSection:
    uri: str = ""  # for a model with an imu input: mpu6050://1?addr=0x68 or file://imu.csv

    def __post_init__(self) -> None:
        if self.uri:
            try:
                parse_imu_uri(self.uri)  # the syntax only; the device is opened at run
            except ImuError as e:
                raise ConfigError(f"[imu] uri: {e}") from None


@dataclass
class WheelSpeedSection:
    uri: str = ""  # for a model with a wheel_speed input: file://speed.csv (header t,speed)

    def __post_init__(self) -> None:
        if self.uri:
            try:
                check_speed_uri(self.uri)  # the syntax only; the file is read at run
            except OdometryError as e:
                raise ConfigError(f"[wheel_speed] uri: {e}") from None


@dataclass
class LinkSection:
    uri: str = "null://"  # serial device (/dev/rc-car) or link URI; null:// only logs


@dataclass
class WatchdogSection:
    deadline_ms: float = 100.0
    rate_hz: float = 200.0
    neutral_repeat_ms: float = 50.0

    def __post_init__(self) -> None:
        if not 5.0 <= self.deadline_ms <= 1000.0:
            raise ConfigError(f"[watchdog] deadline_ms = {self.deadline_ms} must be in [5, 1000]")
        if not 10.0 <= self.rate_hz <= 2000.0:
            raise ConfigError(f"[watchdog] rate_hz = {self.rate_hz} must be in [10, 2000]")
        if self.neutral_repeat_ms <= 0:
            raise ConfigError("[watchdog] neutral_repeat_ms must be positive")


@dataclass
class GuardSection:
    # False: with a serial link, refuse to arm unless the deadline guard got SCHED_FIFO (the unit's
    # LimitRTPRIO=10). True: drive anyway with a soft deadline (p99 ~250 ms late under load, README).
    allow_soft_deadline: bool = False


@dataclass
class RunSection:
    max_frames: int = 0  # 0: unbounded
    duration_s: float = 0.0  # 0: unbounded
    stats_json: str = ""  # write the summary here on exit

    def __post_init__(self) -> None:
        if self.max_frames < 0 or self.duration_s < 0:
            raise ConfigError("[run] max_frames and duration_s must be >= 0 (0 means unbounded)")


@dataclass
class RecordSection:
    dir: str = ""  # empty: no recording
    every: int = 1  # save the image of every Nth frame (every frame's command is recorded)
    jpeg_quality: int = 90
    overlay: bool = False  # also write overlay.mp4: mask, centreline, look-ahead, boxes, verdict
    overlay_every: int = 3  # one overlay frame per N recorded frames

    def __post_init__(self) -> None:
        if self.overlay_every < 1:
            raise ConfigError(f"[record] overlay_every = {self.overlay_every} must be >= 1")
        if self.every < 1:
            raise ConfigError(f"[record] every = {self.every} must be >= 1")
        if not 1 <= self.jpeg_quality <= 100:
            raise ConfigError(f"[record] jpeg_quality = {self.jpeg_quality} must be in [1, 100]")


@dataclass
class MetricsSection:
    listen: str = ""  # [HOST:]PORT of the Prometheus endpoint (loopback without a host); "" = none

    def __post_init__(self) -> None:
        if self.listen:
            from runtime.metrics.listen import parse_listen

            try:
                parse_listen(self.listen)
            except ValueError as e:
                raise ConfigError(f"[metrics] {e}") from None


@dataclass
class StateSection:
    # the state file for the rc-update agent: "" = $RUNTIME_DIRECTORY or /run/rc-runtime when it exists; "off" = none
    file: str = ""
    parked_after_s: float = 5.0  # parked: no command with throttle != 0 for this long (or not armed)

    def __post_init__(self) -> None:
        if self.parked_after_s <= 0:
            raise ConfigError(f"[state] parked_after_s = {self.parked_after_s} must be positive")


@dataclass
class LogSection:
    level: str = "INFO"

    def __post_init__(self) -> None:
        self.level = self.level.upper()
        if self.level not in LOG_LEVELS:
            raise ConfigError(f"[log] level = {self.level!r}; choose from {', '.join(LOG_LEVELS)}")


@dataclass
class RuntimeConfig:
    model: ModelSection = field(default_factory=ModelSection)
    bundle: BundleSection = field(default_factory=BundleSection)
    camera: CameraSection = field(default_factory=CameraSection)
    imu: ImuSection = field(default_factory=ImuSection)
    wheel_speed: WheelSpeedSection = field(default_factory=WheelSpeedSection)
    link: LinkSection = field(default_factory=LinkSection)
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    lane: LaneConfig = field(default_factory=LaneConfig)
    safety: SafetyConfig = field(default_factory=SafetyConfig)
    shadow: ShadowConfig = field(default_factory=ShadowConfig)
    watchdog: WatchdogSection = field(default_factory=WatchdogSection)
    guard: GuardSection = field(default_factory=GuardSection)
    run: RunSection = field(default_factory=RunSection)
    record: RecordSection = field(default_factory=RecordSection)
    metrics: MetricsSection = field(default_factory=MetricsSection)
    state: StateSection = field(default_factory=StateSection)
    log: LogSection = field(default_factory=LogSection)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SECTIONS: dict[str, type] = {f.name: typing.get_type_hints(RuntimeConfig)[f.name] for f in dataclasses.fields(RuntimeConfig)}


def _check_value(where: str, value: Any, typ: Any) -> Any:
    """``value`` as ``typ`` (int is accepted for float), or a ConfigError naming ``where``."""
    if typing.get_origin(typ) in (typing.Union, types.UnionType):
        if value is None:
            return None
        typ = next(t for t in typing.get_args(typ) if t is not type(None))
    if typing.get_origin(typ) is tuple:  # TOML arrays: tuple[X, ...] or a fixed tuple[X, Y]
        args = typing.get_args(typ)
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where} = {value!r} must be an array")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(f"{where}[{i}]", v, args[0]) for i, v in enumerate(value))
        if len(value) != len(args):
            raise ConfigError(f"{where} = {value!r} must be an array of {len(args)} values")
        return tuple(_check_value(f"{where}[{i}]", v, t) for i, (v, t) in enumerate(zip(value, args, strict=True)))
    if typ is float and isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if typ is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if typ in (str, bool) and isinstance(value, typ):
        return value
    raise ConfigError(f"{where} = {value!r} must be {'an' if typ is int else 'a'} {typ.__name__}")


def _build_section(name: str, values: dict[str, Any], origin: str) -> Any:
    cls = SECTIONS[name]
    hints = typing.get_type_hints(cls)
    kwargs: dict[str, Any] = {}
    for key, value in values.items():
        if key not in hints:
            near = difflib.get_close_matches(key, list(hints), n=1)
            hint = f"; did you mean {near[0]!r}?" if near else f"; known keys: {', '.join(hints)}"
            raise ConfigError(f"{origin}: [{name}] unknown key {key!r}{hint}")
        kwargs[key] = _check_value(f"{origin}: [{name}] {key}", value, hints[key])
    try:
        return cls(**kwargs)
    except ConfigError as e:
        raise ConfigError(f"{origin}: {e}") from None
    except ValueError as e:  # PolicyConfig's, LaneConfig's, SafetyConfig's and ShadowConfig's own range checks
        raise ConfigError(f"{origin}: [{name}] {e}") from None


def config_from_dict(data: dict[str, Any], origin: str = "config") -> RuntimeConfig:
    sections: dict[str, Any] = {}
    for name, values in data.items():
        if name not in SECTIONS:
            near = difflib.get_close_matches(name, list(SECTIONS), n=1)
            hint = f"; did you mean [{near[0]}]?" if near else f"; sections: {', '.join(SECTIONS)}"
            raise ConfigError(f"{origin}: unknown section [{name}]{hint}")
        if not isinstance(values, dict):
            raise ConfigError(f"{origin}: {name} must be a [{name}] table")
        sections[name] = _build_section(name, values, origin)
    return RuntimeConfig(**sections)


def load_config(path: str | Path | None, overrides: dict[str, Any] | None = None) -> RuntimeConfig:
    """Defaults, then the TOML file (if any), then ``overrides`` (``{"model.bundle": value}``; a
    ``None`` value means "not given on the command line")."""
    data: dict[str, Any] = {}
    origin = "command line"
    if path is not None:
        p = Path(path)
        origin = str(p)
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {p} not found") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p} is not valid TOML: {e}") from None
    for dotted, value in (overrides or {}).items():
        if value is None:
            continue
        section, key = dotted.split(".", 1)
        data.setdefault(section, {})[key] = value
    return config_from_dict(data, origin)
