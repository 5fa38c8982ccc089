"""One built file of the bundle (:class:`BuildEntry`) and how it names and stores each logical
tensor (:class:`TensorIO`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from runtime.manifest.errors import BundleError


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
