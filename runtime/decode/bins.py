"""``bins``: a categorical output (softmax over ``bins`` evenly spaced values in ``range``).

Bin ``i`` means ``lo + i * (hi - lo) / (bins - 1)``. ``argmax`` is donkeycar's ``linear_unbin``
(``angle_out``: 15 bins over [-1, 1], i.e. ``argmax * 2/14 - 1``); ``expectation`` is the
probability-weighted mean of the bin values (smoother; the weights are normalised, so logits
that are not a softmax are refused rather than guessed). See donkeycar/utils.py ``linear_unbin``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from runtime.decode.base import DecodeError, Decoder, require_vector

METHODS = ("argmax", "expectation")


class BinsDecoder(Decoder):
    """A categorical output: ``bins`` values in [``lo``, ``hi``], decoded by ``argmax`` (donkeycar's
    ``linear_unbin``, https://github.com/autorope/donkeycar/blob/main/donkeycar/utils.py, used by
    ``KerasCategorical`` in donkeycar/parts/keras.py) or ``expectation``.
    """

    kind = "bins"
    KEYS = frozenset({"bins", "range", "method"})
    FLAG = ":LO:HI[:argmax|expectation]"

    def __init__(self, bins: int, lo: float, hi: float, method: str = "argmax", gain: float = 1.0,
                 bias: float = 0.0) -> None:
        super().__init__(gain, bias)
        self.bins, self.lo, self.hi, self.method = bins, lo, hi, method
        self.values = np.linspace(lo, hi, bins)

    def index(self, y: np.ndarray) -> int:
        """The most probable bin (what parity's bin-flip rate compares)."""
        return int(np.argmax(y))  # argmax flattens

    def raw_value(self, y: np.ndarray) -> float:
        """``y``: (1, bins) or any shape with ``bins`` values (float). The bin value (argmax) or the
        probability-weighted mean (expectation); NaN when ``y`` has a NaN/inf, or, for expectation, a
        negative value or a sum <= 0 (not probabilities).
        """
        p = np.ravel(y).astype(np.float64)
        if not np.all(np.isfinite(p)):
            return math.nan
        if self.method == "argmax":
            return float(self.values[int(np.argmax(p))])
        total = float(p.sum())
        if np.any(p < 0) or total <= 0:
            return math.nan  # not probabilities: the policy refuses it
        return float(p @ self.values / total)

    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict: kind, bins, range [lo, hi], method, gain, bias."""
        return {"kind": self.kind, "bins": self.bins, "range": [self.lo, self.hi], "method": self.method,
                **self._affine()}

    @classmethod
    def from_flag(cls, args: list[str]) -> dict[str, Any]:
        """``LO:HI[:argmax|expectation]`` -> kind, range, method (the bin count comes from the shape)."""
        if len(args) not in (2, 3) or (len(args) == 3 and args[2] not in METHODS):
            raise cls.flag_error(args)
        try:
            lo, hi = float(args[0]), float(args[1])
        except ValueError:
            raise cls.flag_error(args) from None
        return {"kind": cls.kind, "range": [lo, hi], "method": args[2] if len(args) == 3 else "argmax"}

    @classmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> BinsDecoder:
        """Checked against ``shape``: a vector (1, N) (never a map or a head), ``bins`` (default: the output's value count) must equal it and be
        >= 2, ``range`` two different finite values, ``method`` argmax or expectation; :class:`DecodeError`
        naming the output otherwise.
        """
        cls._check_keys(d, output)
        n = require_vector(cls.kind, shape, output)
        bins = int(d.get("bins", n))
        if bins != n or bins < 2:
            raise DecodeError(f"output {output!r}: decoder bins says {bins} bins, the output has {n} values "
                              f"(shape {list(shape)})")
        rng = d.get("range")
        if not isinstance(rng, list | tuple) or len(rng) != 2:
            raise DecodeError(f"output {output!r}: decoder bins needs range [lo, hi]")
        lo, hi = float(rng[0]), float(rng[1])
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo == hi:
            raise DecodeError(f"output {output!r}: bins range [{lo}, {hi}] must be two different finite values")
        method = str(d.get("method", "argmax"))
        if method not in METHODS:
            raise DecodeError(f"output {output!r}: bins method {method!r} is not one of {', '.join(METHODS)}")
        return cls(bins, lo, hi, method, float(d.get("gain", 1.0)), float(d.get("bias", 0.0)))
