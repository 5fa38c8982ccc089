"""``component``: element ``index`` of a vector output, e.g. x of JetRacer's (x, y) target point
(NVIDIA's road following steers with ``x * gain + bias``), or one of an LSTM pilot's
(angle, throttle) pair."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.decode.base import DecodeError, Decoder, size_of


class ComponentDecoder(Decoder):
    """Element ``index`` (0-based, over the flattened values after the batch) of a vector output."""

    kind = "component"
    KEYS = frozenset({"index"})

    def __init__(self, index: int, gain: float = 1.0, bias: float = 0.0) -> None:
        super().__init__(gain, bias)
        self.index = index

    def raw_value(self, y: np.ndarray) -> float:
        """``y`` (1, N) or any shape with N values: ``float(y.flat[index])``."""
        return float(y.flat[self.index])

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict: kind, index, gain, bias."""
        return {"kind": self.kind, "index": self.index, **self._affine()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> ComponentDecoder:
        """Needs ``index`` within the output's values; :class:`DecodeError` naming the output otherwise."""
        cls._check_keys(d, output)
        if "index" not in d:
            raise DecodeError(f"output {output!r}: decoder component needs an index")
        index, n = int(d["index"]), size_of(shape)
        if not 0 <= index < n:
            raise DecodeError(f"output {output!r}: component index {index} is outside its {n} values (shape {list(shape)})")
        return cls(index, float(d.get("gain", 1.0)), float(d.get("bias", 0.0)))
