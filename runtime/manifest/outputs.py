"""The model's outputs: which tensor means steering or throttle, and the decoder that turns its
values into that command."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runtime.manifest.errors import BundleError


@dataclass(frozen=True)
class OutputSpec:
    """One (output tensor, meaning) pair and how its values become that command.

    ``meaning`` is ``steering``, ``throttle``, ``other`` (carried, never driven), or a perception
    meaning, ``segmentation`` or ``detection`` (read by a perception pilot or the safety layer, never
    as a command). ``decode`` is a decoder's dict: for steering/throttle ``runtime.decode``'s
    (``scalar``, ``bins``, ``component``, each with an optional affine ``gain``/``bias``), for
    perception ``runtime.perception``'s (``segmentation``; ``boxes`` or ``yolo``). One tensor may appear twice, e.g. a (1, 2) output whose component 0
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
        if self.meaning in PERCEPTION_MEANINGS:
            from runtime.perception import perception_decoder_for  # checks the kind fits (BundleError)

            perception_decoder_for(self.meaning, self.decode, self.shape, self.name)
        elif self.meaning != "other":
            from runtime.decode import decoder_for  # checks the decoder fits the shape (BundleError)

            decoder_for(self.decode, self.shape, self.name)

    @property
    def is_command(self) -> bool:
        """True for the outputs decoded into a command value (``steering``, ``throttle``)."""
        return self.meaning in COMMAND_MEANINGS

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


COMMAND_MEANINGS = ("steering", "throttle")
PERCEPTION_MEANINGS = ("segmentation", "detection")  # runtime.perception's families
MEANINGS = (*COMMAND_MEANINGS, "other", *PERCEPTION_MEANINGS)
