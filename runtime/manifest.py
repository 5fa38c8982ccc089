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

SCHEMA_VERSION = 2  # 2: several inputs with roles, outputs with decoders (1 is still read)
MANIFEST_NAME = "manifest.json"
COLORS = ("RGB", "BGR", "GRAY")


class BundleError(ValueError):
    """A bundle that cannot be used: missing, malformed, or a build that is not in it."""


class IntegrityError(BundleError):
    """A model file whose bytes do not match the manifest's sha256."""


@dataclass(frozen=True)
class PreprocessSpec:
    """How a camera frame (BGR, as OpenCV delivers it) becomes the model input.

    Order: resize the whole frame to ``width`` x ``height``; drop ``crop_top`` rows from the top
    (sky, bonnet-free horizon); convert to ``color`` (RGB, BGR, or GRAY: one channel, OpenCV's
    BT.601 luma as donkeycar's ``IMAGE_DEPTH = 1`` uses); ``(x * scale - mean) / std`` per channel.
    The model input is therefore ``(height - crop_top, width, channels)`` before the layout. ``model_rescales`` is true when
    the model normalises inside itself (a ``Rescaling`` layer); then scale is 1 and the model gets
    raw 0..255 values. Raises :class:`BundleError` for a non-positive size, ``crop_top`` outside
    ``[0, height)``, an unknown color, or ``mean``/``std`` without 3 values (or a zero ``std``).
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
        if self.color not in COLORS:
            raise BundleError(f"preprocess: color must be one of {', '.join(COLORS)}, got {self.color!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise BundleError("preprocess: mean and std need 3 values each and std must not be 0")

    @property
    def input_hw(self) -> tuple[int, int]:
        """(rows, columns) of the model input after the crop."""
        return (self.height - self.crop_top, self.width)

    @property
    def channels(self) -> int:
        """1 for GRAY, else 3."""
        return 1 if self.color == "GRAY" else 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        """Parse the manifest's ``preprocess`` object; :class:`BundleError` for an unknown or missing key or a
        bad value.
        """
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
                model_rescales=bool(d.get("model_rescales")),  # absent: False
            )
        except KeyError as e:
            raise BundleError(f"preprocess: missing key {e.args[0]!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """The ``preprocess`` object as ``manifest.json`` stores it (``from_dict`` reads it back)."""
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
    """One logical tensor as a given build names and stores it: the build's own tensor ``name``, its
    numpy ``dtype`` name (``float32``, ``int8``, ``uint8`` ...) and, for integer I/O of quantized
    builds, ``scale`` and ``zero_point`` (``real = (q - zero_point) * scale``, the TFLite
    quantization spec: https://ai.google.dev/edge/litert/models/quantization_spec).
    """

    name: str
    dtype: str
    scale: float | None = None
    zero_point: int | None = None

    @property
    def quantized(self) -> bool:
        """True for an integer tensor of a quantized build: then ``real = (q - zero_point) * scale``
        (TFLite quantization spec, https://ai.google.dev/edge/litert/models/quantization_spec).
        """
        return self.scale is not None


# Input roles (contract): what the runtime feeds each model input. The runtime's providers
# (runtime/inputs) implement them; adding a role means one entry here and one provider module.
IMAGE, IMAGE_SEQUENCE, MEMORY, IMU, BEHAVIOR = "image", "image_sequence", "memory", "imu", "behavior"
ROLES = (IMAGE, IMAGE_SEQUENCE, MEMORY, IMU, BEHAVIOR)
IMAGE_ROLES = (IMAGE, IMAGE_SEQUENCE)
# Layouts each role may take: images NHWC (Keras) or NCHW (PyTorch); sequences add T after N.
LAYOUTS = {IMAGE: ("NHWC", "NCHW"), IMAGE_SEQUENCE: ("NTHWC", "NTCHW"), MEMORY: ("NC",), IMU: ("NC",), BEHAVIOR: ("NC",)}
IMU_CHANNELS = ("ax", "ay", "az", "gx", "gy", "gz")  # m/s^2 then rad/s, as donkeycar's KerasIMU


@dataclass(frozen=True)
class InputSpec:
    """One model input and how the car produces it (contract, see DESIGN.md "Model I/O").

    ``shape`` has batch 1 first. By role:

    - ``image``: ``preprocess`` required; shape (1, H, W, C) for NHWC or (1, C, H, W) for NCHW,
      C = ``preprocess.channels``.
    - ``image_sequence``: the last ``length`` preprocessed frames, oldest first; (1, T, H, W, C)
      for NTHWC or (1, T, C, H, W) for NTCHW (donkeycar's KerasLSTM / Keras3D_CNN).
    - ``memory``: the last ``length`` commands sent, oldest first, steering and throttle
      interleaved; shape (1, 2 * length) (donkeycar's KerasMemory ``mem_in``).
    - ``imu``: channels in ``order`` (default ax, ay, az in m/s^2, gx, gy, gz in rad/s); shape
      (1, len(order)) (donkeycar's KerasIMU ``imu_in``).
    - ``behavior``: a one-hot over ``labels``; shape (1, len(labels)).

    Raises :class:`BundleError` when the fields do not agree with each other.
    """

    name: str
    shape: tuple[int, ...]
    dtype: str
    layout: str
    preprocess: PreprocessSpec | None = None
    role: str = IMAGE
    length: int | None = None
    order: tuple[str, ...] | None = None
    labels: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        where = f"input {self.name!r}"
        if self.role not in ROLES:
            raise BundleError(f"{where}: unknown role {self.role!r}; roles are {', '.join(ROLES)}")
        if self.layout not in LAYOUTS[self.role]:
            raise BundleError(f"{where}: layout {self.layout!r} is not one of {LAYOUTS[self.role]} for role {self.role}")
        # Batch 1 first; -1 (a dynamic batch) is accepted for engines built from such ONNX.
        if not self.shape or self.shape[0] not in (1, -1) or any(d <= 0 for d in self.shape[1:]):
            raise BundleError(f"{where}: shape {list(self.shape)} must be fixed and positive, with batch 1 first")
        want = self.expected_shape()
        if tuple(self.shape[1:]) != want[1:]:
            raise BundleError(f"{where}: shape {list(self.shape)} does not match its role {self.role} ({list(want)})")

    def expected_shape(self) -> tuple[int, ...]:
        """The shape the role's fields imply (what ``shape`` must equal)."""
        where = f"input {self.name!r}"
        if self.role in IMAGE_ROLES:
            if self.preprocess is None:
                raise BundleError(f"{where}: role {self.role} needs a preprocess section")
            (h, w), c = self.preprocess.input_hw, self.preprocess.channels
            hwc = (h, w, c) if self.layout.endswith("HWC") else (c, h, w)
            if self.role == IMAGE:
                return (1, *hwc)
            if not self.length or self.length < 1:
                raise BundleError(f"{where}: role image_sequence needs a fixed length >= 1")
            return (1, self.length, *hwc)
        if self.role == MEMORY:
            if not self.length or self.length < 1:
                raise BundleError(f"{where}: role memory needs length >= 1 (commands remembered)")
            return (1, 2 * self.length)
        if self.role == IMU:
            return (1, len(self.order or IMU_CHANNELS))
        if not self.labels:
            raise BundleError(f"{where}: role behavior needs labels (one per one-hot slot)")
        return (1, len(self.labels))

    @property
    def is_image(self) -> bool:
        """True for the camera roles (``image``, ``image_sequence``), which have a ``preprocess``."""
        return self.role in IMAGE_ROLES

    def to_dict(self) -> dict[str, Any]:
        """The input as ``manifest.json`` stores it; optional fields are written only when set."""
        d: dict[str, Any] = {"name": self.name, "role": self.role, "shape": list(self.shape), "dtype": self.dtype,
                             "layout": self.layout}
        if self.preprocess is not None:
            d["preprocess"] = self.preprocess.to_dict()
        if self.length is not None:
            d["length"] = self.length
        if self.order is not None:
            d["order"] = list(self.order)
        if self.labels is not None:
            d["labels"] = list(self.labels)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        """Parse one entry of ``inputs`` (role defaults to ``image``, dtype ``float32``, layout ``NHWC``).

        Raises :class:`BundleError` for unknown keys or fields that disagree; a missing ``name`` or
        ``shape`` is a ``KeyError`` that :meth:`Manifest.from_dict` turns into a :class:`BundleError`.
        """
        known = {"name", "role", "shape", "dtype", "layout", "preprocess", "length", "order", "labels"}
        unknown = set(d) - known
        if unknown:
            raise BundleError(f"input {d.get('name', '?')!r}: unknown keys {sorted(unknown)}")
        pre = d.get("preprocess")
        return cls(
            name=str(d["name"]),
            role=str(d.get("role", IMAGE)),
            shape=tuple(int(s) for s in d["shape"]),
            dtype=str(d.get("dtype", "float32")),
            layout=str(d.get("layout", "NHWC")),
            preprocess=PreprocessSpec.from_dict(pre) if pre is not None else None,
            length=int(d["length"]) if d.get("length") is not None else None,
            order=tuple(str(x) for x in d["order"]) if d.get("order") is not None else None,
            labels=tuple(str(x) for x in d["labels"]) if d.get("labels") is not None else None,
        )


@dataclass(frozen=True)
class OutputSpec:
    """One (output tensor, meaning) pair and how its values become that command.

    ``meaning`` is ``steering``, ``throttle`` or ``other`` (carried, never driven). ``decode`` is a
    decoder's dict (``runtime.decode``: ``scalar``, ``bins``, ``component``, each with an optional
    affine ``gain``/``bias``). One tensor may appear twice, e.g. a (1, 2) output whose component 0
    is steering and component 1 throttle. The decoder is checked against ``shape`` on load:
    :class:`BundleError` for an unknown meaning or a decoder that does not fit.
    """

    name: str
    shape: tuple[int, ...]
    meaning: str  # steering | throttle | other
    decode: dict[str, Any] = field(default_factory=lambda: {"kind": "scalar"})

    def __post_init__(self) -> None:
        if self.meaning not in MEANINGS:
            raise BundleError(f"output {self.name!r}: meaning {self.meaning!r} is not one of {', '.join(MEANINGS)}")
        if self.meaning != "other":
            from runtime.decode import decoder_for  # checks the decoder fits the shape (BundleError)

            decoder_for(self.decode, self.shape, self.name)

    def to_dict(self) -> dict[str, Any]:
        """The output as ``manifest.json`` stores it."""
        return {"name": self.name, "shape": list(self.shape), "meaning": self.meaning, "decode": dict(self.decode)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> OutputSpec:
        """Parse one entry of ``outputs`` (decoder defaults to ``scalar``).

        Raises :class:`BundleError` for unknown keys, an unknown meaning or a decoder that does not fit
        ``shape``.
        """
        known = {"name", "shape", "meaning", "decode"}
        unknown = set(d) - known
        if unknown:
            raise BundleError(f"output {d.get('name', '?')!r}: unknown keys {sorted(unknown)}")
        return cls(str(d["name"]), tuple(int(s) for s in d["shape"]), str(d["meaning"]),
                   dict(d.get("decode") or {"kind": "scalar"}))


MEANINGS = ("steering", "throttle", "other")


@dataclass(frozen=True)
class ModelInfo:
    """Where the bundle came from: registered model name and version, MLflow run id, source URI and flavor."""

    name: str
    version: str
    run_id: str | None
    source_uri: str
    flavor: str


@dataclass
class BuildEntry:
    """One built file in the bundle and how to use it (contract: DESIGN.md "The edge bundle").

    ``format`` is a :mod:`runtime.formats` id, ``file`` is relative to the bundle directory, ``sha256``
    (hex) and ``bytes`` are the file's and are checked by :func:`verified_path` before any load. ``io``
    maps each logical input/output name to this build's own tensor (name, dtype and, for integer
    builds, scale/zero point). ``parity`` holds the converter's check against the source model
    (``max_abs``, ``mean_abs``, ``samples``); ``toolchain`` the tool versions; ``target`` for engines
    the TensorRT version, compute capability and device; ``extra`` format-specific data (e.g. the
    TFLite signature, INT8 cost figures, the conversion cache key).
    """

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
        """The entry as ``manifest.json`` stores it (unset TensorIO fields and an empty ``extra`` left out)."""
        d = asdict(self)
        d["io"] = {k: {kk: vv for kk, vv in asdict(v).items() if vv is not None} for k, v in self.io.items()}
        if not self.extra:
            d.pop("extra")
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> BuildEntry:
        """Parse one entry of ``builds``; :class:`BundleError` naming the format when a key is missing or
        malformed.
        """
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
    """The bundle's ``manifest.json`` (contract: DESIGN.md "The edge bundle" and "Model I/O").

    ``inputs``: every model input with its role; ``outputs``: every (tensor, meaning) with its
    decoder; ``builds``: one entry per file, each mapping the logical names to its own tensors.
    Schema 1 bundles (one ``input``, outputs without ``decode``) are read as one ``image`` input
    and ``scalar`` outputs. Validation errors are :class:`BundleError` naming the field and the fix.
    """

    model: ModelInfo
    inputs: list[InputSpec]
    outputs: list[OutputSpec]
    builds: list[BuildEntry]
    created_at: str
    converter_version: str
    schema_version: int = SCHEMA_VERSION
    source: dict[str, Any] = field(default_factory=dict)  # conversion inputs, cache key, reference samples
    not_built: list[dict[str, str]] = field(default_factory=list)  # {format, status, reason}

    def __post_init__(self) -> None:
        if isinstance(self.inputs, InputSpec):  # one input, as schema-1 callers pass it
            self.inputs = [self.inputs]
        names = [i.name for i in self.inputs]
        if len(set(names)) != len(names):
            raise BundleError(f"manifest: input names {names} are not unique")
        if not any(i.is_image for i in self.inputs):
            raise BundleError("manifest: no input has role image or image_sequence; the car feeds camera frames")
        seen: set[tuple[str, str]] = set()
        for o in self.outputs:
            if o.meaning != "other" and any(p[1] == o.meaning for p in seen):
                raise BundleError(f"manifest: more than one output means {o.meaning}")
            seen.add((o.name, o.meaning))

    @property
    def input(self) -> InputSpec:
        """The camera input (the first with role image or image_sequence)."""
        return next(i for i in self.inputs if i.is_image)

    @property
    def preprocess(self) -> PreprocessSpec:
        """The camera input's preprocessing (every image input of a bundle shares one camera)."""
        pre = self.input.preprocess
        assert pre is not None  # InputSpec refuses an image role without one
        return pre

    def image_inputs(self) -> list[InputSpec]:
        """The camera inputs (roles ``image`` and ``image_sequence``), in manifest order."""
        return [i for i in self.inputs if i.is_image]

    def input_named(self, name: str) -> InputSpec:
        """The input called ``name``; :class:`BundleError` listing the inputs when there is none."""
        for i in self.inputs:
            if i.name == name:
                return i
        raise BundleError(f"manifest has no input {name!r} (inputs: {[i.name for i in self.inputs]})")

    def output_names(self) -> list[str]:
        """Distinct output tensor names, in manifest order."""
        return list(dict.fromkeys(o.name for o in self.outputs))

    def build(self, fmt: str) -> BuildEntry:
        """The entry for format id ``fmt``; :class:`BundleError` naming the builds present and the
        ``--formats`` fix otherwise.
        """
        for b in self.builds:
            if b.format == fmt:
                return b
        have = ", ".join(b.format for b in self.builds) or "none"
        raise BundleError(f"bundle has no {fmt!r} build (it has: {have}); convert it with --formats {fmt}")

    def has(self, fmt: str) -> bool:
        """True when the bundle has a build of format id ``fmt``."""
        return any(b.format == fmt for b in self.builds)

    def output_by_meaning(self, meaning: str) -> OutputSpec | None:
        """The first output with ``meaning`` (``steering``, ``throttle``, ``other``), or None."""
        return next((o for o in self.outputs if o.meaning == meaning), None)

    def to_dict(self) -> dict[str, Any]:
        """The whole manifest as ``manifest.json`` stores it (always the current schema)."""
        return {
            "schema_version": self.schema_version,
            "converter_version": self.converter_version,
            "created_at": self.created_at,
            "model": asdict(self.model),
            "inputs": [i.to_dict() for i in self.inputs],
            "outputs": [o.to_dict() for o in self.outputs],
            "builds": [b.to_dict() for b in self.builds],
            "source": self.source,
            "not_built": self.not_built,
        }

    def dumps(self) -> str:
        """``manifest.json``'s text: indented JSON, fields in the order ``to_dict`` lists them, and a
        trailing newline."""
        return json.dumps(self.to_dict(), indent=2) + "\n"

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        """Parse and validate a loaded ``manifest.json`` (schema 1 or 2; schema 1 is upgraded to 2).

        Raises :class:`BundleError` for a schema newer than :data:`SCHEMA_VERSION` (upgrade the runtime),
        a missing key, or any malformed or inconsistent field.
        """
        try:
            sv = int(d["schema_version"])
            if sv > SCHEMA_VERSION:
                raise BundleError(
                    f"manifest schema_version {sv} is newer than this runtime understands ({SCHEMA_VERSION}); "
                    "upgrade the runtime"
                )
            if sv >= 2:
                inputs = [InputSpec.from_dict(i) for i in d["inputs"]]
            else:  # schema 1: one camera input
                inputs = [InputSpec.from_dict({**d["input"], "role": IMAGE})]
            return cls(
                schema_version=SCHEMA_VERSION,  # what we write back; the content is schema 2 now
                converter_version=str(d.get("converter_version", "?")),
                created_at=str(d.get("created_at", "")),
                model=ModelInfo(**d["model"]),
                inputs=inputs,
                outputs=[OutputSpec.from_dict(o) for o in d["outputs"]],
                builds=[BuildEntry.from_dict(b) for b in d.get("builds", [])],
                source=dict(d.get("source") or {}),
                not_built=list(d.get("not_built") or []),
            )
        except KeyError as e:
            raise BundleError(f"manifest is missing {e.args[0]!r}") from None
        except (TypeError, ValueError) as e:
            if isinstance(e, BundleError):
                raise
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
    """Hex sha256 of the file at ``path``, read in ``chunk``-byte blocks (1 MiB by default); ``OSError`` if
    unreadable.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verified_path(bundle_dir: str | Path, build: BuildEntry) -> Path:
    """The build's file, after checking it exists and its sha256 matches the manifest.

    Raises :class:`BundleError` when the file is missing and :class:`IntegrityError` when its bytes
    differ from ``build.sha256`` (modified or corrupted: re-copy the bundle).
    """
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
