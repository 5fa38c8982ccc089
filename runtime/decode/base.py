"""The decoder interface and its error."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from runtime.manifest.errors import BundleError


class DecodeError(BundleError):
    """A decoder that does not fit its output (wrong shape, bad parameters)."""


class Decoder(ABC):
    """Raw output tensor (batch 1) -> one float. Subclasses implement :meth:`raw_value`.

    ``gain`` and ``bias`` map the decoded value to the command: ``value * gain + bias``.
    """

    kind: ClassVar[str]
    KEYS: ClassVar[frozenset[str]] = frozenset()
    # The flag fields after the kind in ``--outputs NAME=MEANING:KIND...`` (for messages and docs).
    FLAG: ClassVar[str] = "[:GAIN[:BIAS]]"

    def __init__(self, gain: float = 1.0, bias: float = 0.0) -> None:
        if not (math.isfinite(gain) and math.isfinite(bias)):
            raise DecodeError(f"{self.kind}: gain and bias must be finite, got {gain}, {bias}")
        self.gain, self.bias = float(gain), float(bias)

    @abstractmethod
    def raw_value(self, y: np.ndarray) -> float:
        """The decoded value before the affine map."""

    def __call__(self, y: np.ndarray) -> float:
        """The command value: ``raw_value(y) * gain + bias`` (NaN/inf pass through for the policy to
        refuse).
        """
        return self.raw_value(y) * self.gain + self.bias

    @abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """The manifest's ``decode`` dict (round-trips through :func:`runtime.decode.decoder_for`)."""

    def _affine(self) -> dict[str, float]:
        return {"gain": self.gain, "bias": self.bias}

    @classmethod
    @abstractmethod
    def from_dict(cls, d: dict[str, Any], shape: tuple[int, ...], output: str) -> Decoder:
        """Build from the manifest dict, checked against the output ``shape``; DecodeError otherwise."""

    @classmethod
    def from_flag(cls, args: list[str]) -> dict[str, Any]:
        """The fields after the kind in ``--outputs NAME=MEANING:KIND:ARG...`` -> this decoder's
        ``decode`` dict, not yet checked against a shape (:meth:`from_dict` does that). The default
        reads ``[:GAIN[:BIAS]]``; :class:`DecodeError` naming :attr:`FLAG` when the fields do not fit.
        """
        return {"kind": cls.kind, **cls._affine_flag(args, 0)}

    @classmethod
    def _affine_flag(cls, args: list[str], start: int) -> dict[str, float]:
        """``GAIN[:BIAS]`` from ``args[start:]`` (both optional), as floats; DecodeError otherwise."""
        rest = args[start:]
        if len(rest) > 2:
            raise cls.flag_error(args)
        try:
            nums = [float(a) for a in rest]
        except ValueError:
            raise cls.flag_error(args) from None
        return {"gain": nums[0] if nums else 1.0, "bias": nums[1] if len(nums) > 1 else 0.0}

    @classmethod
    def flag_error(cls, args: list[str]) -> DecodeError:
        """The error for flag fields ``args`` this decoder cannot read, naming its grammar."""
        given = ":".join([cls.kind, *args])
        return DecodeError(f"cannot read decoder {given!r}; {cls.kind} takes {cls.kind}{cls.FLAG}")

    @classmethod
    def _check_keys(cls, d: dict[str, Any], output: str) -> None:
        unknown = set(d) - cls.KEYS - {"kind", "gain", "bias"}
        if unknown:
            raise DecodeError(f"output {output!r}: decoder {cls.kind} has no keys {sorted(unknown)}")


def size_of(shape: tuple[int, ...]) -> int:
    """Values per sample: the product of every dimension after the batch."""
    return int(np.prod([abs(d) for d in shape[1:]]))  # () and (N,) -> the empty product, 1


def require_vector(kind: str, shape: tuple[int, ...], output: str) -> int:
    """The value count of a (1, N) output with 1 <= N <= MAX_VECTOR_VALUES; :class:`DecodeError` naming
    what the output looks like (a map, a head, class scores) and its decoder otherwise."""
    from runtime.perception.kinds import MAX_VECTOR_VALUES, looks_like

    n = size_of(shape)
    if len(shape) != 2 or n > MAX_VECTOR_VALUES:
        raise DecodeError(
            f"output {output!r} has shape {list(shape)}: decoder {kind} reads a vector (1, N) of at most "
            f"{MAX_VECTOR_VALUES} values, never a map or a head; it looks like {looks_like(shape)}"
        )
    return n
