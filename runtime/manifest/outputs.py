"""The model's outputs: which tensor means steering or throttle, and the decoder that turns its
values into that command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.manifest.errors import BundleError


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
