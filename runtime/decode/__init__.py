"""Output decoders: a model's raw output tensor -> one command value (steering or throttle).

One table, one module per kind (adding a decoder is one module and one test file):

- ``scalar`` (:mod:`runtime.decode.scalar`): the tensor holds exactly one value;
- ``bins`` (:mod:`runtime.decode.bins`): a categorical (softmax) output over evenly spaced values,
  donkeycar's ``linear_unbin``;
- ``component`` (:mod:`runtime.decode.component`): one element of a vector output, e.g. the x of
  JetRacer's (x, y) target point;
- ``tanh`` (:mod:`runtime.decode.tanh`): one value squashed by tanh (a linear head trained against
  tanh targets).

Each takes an optional affine ``gain`` / ``bias`` (``value * gain + bias``) for outputs that are not
yet a command. Each also reads its own fields of the converter's ``--outputs`` flag
(``Decoder.from_flag``, grammar in ``Decoder.FLAG``; :func:`decode_from_flag`). A decoder is checked
against the output's shape when the manifest is read: a steering or throttle output is never guessed into a value (:class:`~runtime.manifest.BundleError`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from runtime.decode.base import DecodeError, Decoder
from runtime.decode.bins import BinsDecoder
from runtime.decode.component import ComponentDecoder
from runtime.decode.scalar import ScalarDecoder
from runtime.decode.tanh import TanhDecoder

if TYPE_CHECKING:
    from runtime.manifest.outputs import OutputSpec

DECODERS: dict[str, type[Decoder]] = {
    "scalar": ScalarDecoder,
    "bins": BinsDecoder,
    "component": ComponentDecoder,
    "tanh": TanhDecoder,
}

__all__ = ["DECODERS", "DecodeError", "Decoder", "OutputDecoders", "decode_from_flag", "decoder_for",
           "flag_grammar"]


def flag_grammar() -> str:
    """Every decoder's ``--outputs`` spelling, e.g. ``scalar[:GAIN[:BIAS]], bins:LO:HI[...], ...``."""
    return ", ".join(f"{kind}{cls.FLAG}" for kind, cls in DECODERS.items())


def decode_from_flag(fields: list[str]) -> dict[str, Any]:
    """``[KIND, ARG, ...]`` (the flag's fields after the meaning) -> that decoder's ``decode`` dict, read
    by the decoder itself (:meth:`Decoder.from_flag`); :class:`DecodeError` naming the grammar for an
    unknown kind or fields it cannot read. Not yet checked against a shape.
    """
    kind, args = fields[0], fields[1:]
    cls = DECODERS.get(kind)
    if cls is None:
        raise DecodeError(f"unknown decoder {kind!r}; decoders are {flag_grammar()}")
    return cls.from_flag(args)


def decoder_for(decode: Mapping[str, Any], shape: tuple[int, ...], output: str = "?") -> Decoder:
    """The decoder ``decode`` describes, checked against the output's ``shape`` (batch first).

    Raises :class:`~runtime.manifest.BundleError` (via :class:`DecodeError`) naming the output, its
    shape and what to write instead.
    """
    kind = str(decode.get("kind", "scalar"))
    cls = DECODERS.get(kind)
    if cls is None:
        raise DecodeError(f"output {output!r}: unknown decoder {kind!r}; decoders are {', '.join(DECODERS)}")
    return cls.from_dict(dict(decode), tuple(shape), output)


class OutputDecoders:
    """Every steering/throttle output of a manifest, decoded: raw outputs -> {meaning: float}.

    ``raw`` maps logical output names to arrays of the manifest's shape (batch 1). A value that is
    not finite stays NaN/inf so the policy refuses it (never a silent 0).
    """

    def __init__(self, outputs: Iterable[OutputSpec]) -> None:
        self.items = [(o.name, o.meaning, decoder_for(o.decode, o.shape, o.name))
                      for o in outputs if o.is_command]

    @property
    def meanings(self) -> list[str]:
        """The meanings decoded (``steering``, ``throttle``), in manifest order."""
        return [m for _, m, _ in self.items]

    def __call__(self, raw: Mapping[str, np.ndarray]) -> dict[str, float]:
        """Batch-1 outputs -> {meaning: float}; ``KeyError`` when an output is missing from ``raw``."""
        return {meaning: dec(raw[name]) for name, meaning, dec in self.items}

    def batch(self, raw: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """(N, ...) outputs -> {meaning: (N,) float64}, for parity and benchmarks."""
        out: dict[str, np.ndarray] = {}
        for name, meaning, dec in self.items:
            y = np.asarray(raw[name])
            out[meaning] = np.array([dec(y[i : i + 1]) for i in range(y.shape[0])])  # floats: float64
        return out

