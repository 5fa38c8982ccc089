"""``scalar``: the output holds exactly one value (donkeycar KerasLinear's ``n_outputs0``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.decode.base import DecodeError, Decoder, size_of


class ScalarDecoder(Decoder):
    """The only value of a one-value output, e.g. (1, 1) or (1,) float32."""

    kind = "scalar"

    def raw_value(self, y: np.ndarray) -> float:
        """``float`` of the single value in ``y``."""
        return float(y.flat[0])

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict: kind, gain, bias."""
        return {"kind": self.kind, **self._affine()}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> ScalarDecoder:
        """Refuses (:class:`DecodeError`) an output with more than one value, naming the ``--outputs``
        spelling for ``bins`` or ``component`` instead.
        """
        cls._check_keys(d, output)
        n = size_of(shape)
        if n != 1:
            from runtime.perception.kinds import MAX_VECTOR_VALUES, looks_like

            if len(shape) == 2 and n <= MAX_VECTOR_VALUES:
                raise DecodeError(
                    f"output {output!r} has shape {list(shape)} ({n} values), not a single value; say how to "
                    f"decode it: --outputs {output}=MEANING:bins:LO:HI (categorical) or "
                    f"{output}=MEANING:component:INDEX"
                )
            raise DecodeError(f"output {output!r} has shape {list(shape)} ({n} values), not a single value; it "
                              f"looks like {looks_like(shape)}")
        return cls(float(d.get("gain", 1.0)), float(d.get("bias", 0.0)))
