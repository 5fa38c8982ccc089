"""``tanh``: a one-value output squashed by tanh, ``tanh(y) * gain + bias``.

For a pilot whose steering head is linear (no activation in the graph) but was trained against
tanh-squashed targets, e.g. ``loss(torch.tanh(model(x)), target)``: the head's raw value is
unbounded, its meaning is ``tanh`` of it. The result is in ``[-1, 1]`` before the affine map.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from runtime.decode.base import DecodeError, Decoder, size_of


class TanhDecoder(Decoder):
    """``tanh`` of the single value of a one-value output, e.g. (1, 1) float32."""

    kind = "tanh"

    def raw_value(self, y: np.ndarray) -> float:
        """``math.tanh`` of the one value in ``y``: in [-1, 1]; NaN stays NaN (the policy refuses it)."""
        return math.tanh(float(y.flat[0]))

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict: kind, gain, bias."""
        return {"kind": self.kind, **self._affine()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> TanhDecoder:
        """Refuses (:class:`DecodeError`) an output of more than one value, naming what it looks like."""
        cls._check_keys(d, output)
        if size_of(shape) != 1:
            from runtime.perception.kinds import looks_like

            raise DecodeError(f"output {output!r} has shape {list(shape)}: decoder tanh reads one value; it looks "
                              f"like {looks_like(shape)}")
        return cls(float(d.get("gain", 1.0)), float(d.get("bias", 0.0)))
