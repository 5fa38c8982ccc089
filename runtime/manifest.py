"""The edge bundle's ``manifest.json``: typed, validated, and the sha256 check before any load.

This module is the bundle contract (see DESIGN.md). The converter writes it, the runtime,
calibration and benchmarks read it. It lives in ``runtime`` because the car must read it with
nothing but the standard library and numpy installed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MANIFEST_NAME = "manifest.json"


class BundleError(ValueError):
    """A bundle that cannot be used: missing, malformed, or a build that is not in it."""


class IntegrityError(BundleError):
    """A model file whose bytes do not match the manifest's sha256."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How a camera frame (BGR, as OpenCV delivers it) becomes the model input.

    Order: resize the whole frame to ``width`` x ``height``; drop ``crop_top`` rows from the top
    (sky, bonnet-free horizon); convert to ``color``; ``(x * scale - mean) / std`` per channel.
    The model input is therefore ``(height - crop_top, width, 3)``. ``model_rescales`` is true when
    the model normalises inside itself (a ``Rescaling`` layer); then scale is 1 and the model gets
    raw 0..255 values.
    """

    width: int
    height: int
    crop_top: int = 0
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    model_rescales: bool = False

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise BundleError(f"preprocess: width and height must be positive, got {self.width}x{self.height}")
        if not 0 <= self.crop_top < self.height:
            raise BundleError(f"preprocess: crop_top={self.crop_top} must be in [0, height={self.height})")
        if self.color not in ("RGB", "BGR"):
            raise BundleError(f"preprocess: color must be RGB or BGR, got {self.color!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise BundleError("preprocess: mean and std need 3 values each and std must not be 0")

    @property
    def input_hw(self) -> tuple[int, int]:
        return (self.height - self.crop_top, self.width)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        known = {"width", "height", "crop_top", "color", "scale", "mean", "std", "model_rescales"}
        unknown = set(d) - known
        if unknown:
            raise BundleError(f"preprocess: unknown keys {sorted(unknown)}")
        try:
            return cls(
                width=int(d["width"]),
                height=int(d["height"]),
                crop_top=int(d.get("crop_top", 0)),
                color=str(d.get("color", "RGB")).upper(),
                scale=float(d.get("scale", 1.0 / 255.0)),
                mean=_triple(d.get("mean", (0.0, 0.0, 0.0))),
                std=_triple(d.get("std", (1.0, 1.0, 1.0))),
                model_rescales=bool(d.get("model_rescales", False)),
            )
        except KeyError as e:
            raise BundleError(f"preprocess: missing key {e.args[0]!r}") from None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _triple(v: Any) -> tuple[float, float, float]:
    if isinstance(v, int | float):
        return (float(v), float(v), float(v))
    vals = [float(x) for x in v]
    if len(vals) != 3:
        raise BundleError(f"preprocess: expected 3 channel values, got {vals}")
    return (vals[0], vals[1], vals[2])


@dataclass(frozen=True)
class TensorIO:
    """One logical tensor as a given build names and stores it."""

    name: str
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        return self.scale is not None


@dataclass(frozen=True)
class InputSpec:
    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    preprocess: PreprocessSpec


@dataclass(frozen=True)
class OutputSpec:
    name: str
    shape: tuple[int, ...]
    meaning: str  # steering | throttle | other


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str
    run_id: str | None
    source_uri: str
    flavor: str


@dataclass
class BuildEntry:
    format: str
    precision: str
    file: str
    sha256: str
    bytes: int
    io: dict[str, TensorIO]
    parity: dict[str, Any] = field(default_factory=dict)
    toolchain: dict[str, str] = field(default_factory=dict)
    target: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["io"] = {k: {kk: vv for kk, vv in asdict(v).items() if vv is not None} for k, v in self.io.items()}
        if not self.extra:
            d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildEntry:
        try:
            return cls(
                format=d["format"],
                precision=d["precision"],
                file=d["file"],
                sha256=d["sha256"],
                bytes=int(d["bytes"]),
                io={k: TensorIO(**v) for k, v in d["io"].items()},
                parity=dict(d.get("parity") or {}),
                toolchain=dict(d.get("toolchain") or {}),
                target=d.get("target"),
                extra=dict(d.get("extra") or {}),
            )
        except (KeyError, TypeError) as e:
            raise BundleError(f"manifest build entry {d.get('format', '?')!r} is malformed: {e}") from None


@dataclass
class Manifest:
    model: ModelInfo
    input: InputSpec
    outputs: list[OutputSpec]
    builds: list[BuildEntry]
    created_at: str
    converter_version: str
    schema_version: int = SCHEMA_VERSION
    source: dict[str, Any] = field(default_factory=dict)  # conversion inputs, cache key, reference samples
    not_built: list[dict[str, str]] = field(default_factory=list)  # {format, status, reason}

    def build(self, fmt: str) -> BuildEntry:
        for b in self.builds:
            if b.format == fmt:
                return b
        have = ", ".join(b.format for b in self.builds) or "none"
        raise BundleError(f"bundle has no {fmt!r} build (it has: {have}); convert it with --formats {fmt}")

    def has(self, fmt: str) -> bool:
        return any(b.format == fmt for b in self.builds)

    def output_by_meaning(self, meaning: str) -> OutputSpec | None:
        return next((o for o in self.outputs if o.meaning == meaning), None)

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "converter_version": self.converter_version,
            "created_at": self.created_at,
            "model": asdict(self.model),
            "input": {
                "name": self.input.name,
                "shape": list(self.input.shape),
                "dtype": self.input.dtype,
                "layout": self.input.layout,
                "preprocess": self.input.preprocess.to_dict(),
            },
            "outputs": [{"name": o.name, "shape": list(o.shape), "meaning": o.meaning} for o in self.outputs],
            "builds": [b.to_dict() for b in self.builds],
            "source": self.source,
            "not_built": self.not_built,
        }

    def dumps(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        try:
            sv = int(d["schema_version"])
            if sv > SCHEMA_VERSION:
                raise BundleError(
                    f"manifest schema_version {sv} is newer than this runtime understands ({SCHEMA_VERSION}); "
                    "upgrade the runtime"
                )
            inp = d["input"]
            return cls(
                schema_version=sv,
                converter_version=str(d.get("converter_version", "?")),
                created_at=str(d.get("created_at", "")),
                model=ModelInfo(**d["model"]),
                input=InputSpec(
                    name=inp["name"],
                    shape=tuple(int(s) for s in inp["shape"]),
                    dtype=inp["dtype"],
                    layout=inp.get("layout", "NHWC"),
                    preprocess=PreprocessSpec.from_dict(inp["preprocess"]),
                ),
                outputs=[OutputSpec(o["name"], tuple(int(s) for s in o["shape"]), o["meaning"]) for o in d["outputs"]],
                builds=[BuildEntry.from_dict(b) for b in d.get("builds", [])],
                source=dict(d.get("source") or {}),
                not_built=list(d.get("not_built") or []),
            )
        except KeyError as e:
            raise BundleError(f"manifest is missing {e.args[0]!r}") from None
        except TypeError as e:
            raise BundleError(f"manifest is malformed: {e}") from None


def load_manifest(bundle_dir: str | Path) -> Manifest:
    """Read and validate ``bundle_dir/manifest.json``; :class:`BundleError` with the fix otherwise."""
    path = Path(bundle_dir) / MANIFEST_NAME
    if not path.is_file():
        raise BundleError(f"{path} not found: is {bundle_dir} a bundle made by convert-model?")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise BundleError(f"{path} is not valid JSON ({e}); re-run convert-model") from None
    return Manifest.from_dict(data)


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verified_path(bundle_dir: str | Path, build: BuildEntry) -> Path:
    """The build's file, after checking it exists and its sha256 matches the manifest."""
    path = Path(bundle_dir) / build.file
    if not path.is_file():
        raise BundleError(f"{build.format}: {path} is missing from the bundle; re-run convert-model")
    digest = sha256_file(path)
    if digest != build.sha256:
        raise IntegrityError(
            f"{build.format}: {path.name} sha256 {digest[:12]}… does not match the manifest's "
            f"{build.sha256[:12]}…; the file was modified or corrupted, re-copy the bundle"
        )
    return path
