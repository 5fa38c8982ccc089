"""``component``: element ``index`` of a vector output, e.g. x of JetRacer's (x, y) target point
(NVIDIA's road following steers with ``x * gain + bias``), or one of an LSTM pilot's
(angle, throttle) pair."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.decode.base import DecodeError, Decoder, require_vector


class ComponentDecoder(Decoder):
    """Element ``index`` (0-based) of a vector output (1, N)."""

    kind = "component"
    KEYS = frozenset({"index"})
    FLAG = ":INDEX[:GAIN[:BIAS]]"

    def __init__(self, index: int, gain: float = 1.0, bias: float = 0.0) -> None:
        super().__init__(gain, bias)
        self.index = index

    def raw_value(self, y: np.ndarray) -> float:
        """``y`` (1, N): ``float(y.flat[index])``."""
        return float(y.flat[self.index])

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict: kind, index, gain, bias."""
        return {"kind": self.kind, "index": self.index, **self._affine()}

    @classmethod
    def from_flag(cls, args: list[str]) -> dict[str, Any]:
        """``INDEX[:GAIN[:BIAS]]`` -> kind, index, gain, bias."""
        if not args:
            raise cls.flag_error(args)
        try:
            index = int(args[0])
        except ValueError:
            raise cls.flag_error(args) from None
        return {"kind": cls.kind, "index": index, **cls._affine_flag(args, 1)}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> ComponentDecoder:
        """Needs a vector output, (1, N) with a few values (never a map or a head), and ``index`` within
        its values; :class:`DecodeError` naming the output and what it looks like otherwise."""
        cls._check_keys(d, output)
        if "index" not in d:
            raise DecodeError(f"output {output!r}: decoder component needs an index")
        index, n = int(d["index"]), require_vector(cls.kind, shape, output)
        if not 0 <= index < n:
            raise DecodeError(f"output {output!r}: component index {index} is outside its {n} values (shape {list(shape)})")
        return cls(index, float(d.get("gain", 1.0)), float(d.get("bias", 0.0)))
