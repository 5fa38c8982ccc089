"""``tanh``: a linear head trained against tanh targets -> tanh(y) * gain + bias, through the table,
the flag's fields and the manifest (one module, one test file; the converter reads the table)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from runtime.decode import OutputDecoders, decode_from_flag, decoder_for
from runtime.decode.tanh import TanhDecoder
from runtime.manifest import BundleError, OutputSpec


def test_squashes_the_one_value_then_applies_gain_and_bias() -> None:
    dec = decoder_for({"kind": "tanh", "gain": 0.8, "bias": -0.05}, (1, 1), "steer")
    assert isinstance(dec, TanhDecoder)
    for y in (-3.0, -0.2, 0.0, 0.7, 12.0):
        assert dec(np.array([[y]], np.float32)) == pytest.approx(math.tanh(np.float32(y)) * 0.8 - 0.05)
    assert abs(decoder_for({"kind": "tanh"}, (1,), "s")(np.array([50.0], np.float32))) <= 1.0
    assert math.isnan(dec(np.array([[np.nan]], np.float32)))  # passed on for the policy to refuse


def test_flag_and_manifest_round_trip() -> None:
    decode = decode_from_flag(["tanh", "1.5"])  # --outputs head=steering:tanh:1.5
    assert decode == {"kind": "tanh", "gain": 1.5, "bias": 0.0}
    spec = OutputSpec("head", (1, 1), "steering", decoder_for(decode, (1, 1), "head").to_dict())
    again = OutputSpec.from_dict(spec.to_dict())
    got = OutputDecoders([again])({"head": np.array([[0.5]], np.float32)})
    assert got["steering"] == pytest.approx(math.tanh(0.5) * 1.5)


def test_more_than_one_value_or_bad_fields_are_refused() -> None:
    with pytest.raises(BundleError, match=r"output 'out' has shape \[1, 2, 240, 320\]: decoder tanh reads one value; "
                                          "it looks like a segmentation map"):
        decoder_for({"kind": "tanh"}, (1, 2, 240, 320), "out")
    with pytest.raises(BundleError, match=r"^cannot read decoder 'tanh:x'; tanh takes tanh\[:GAIN\[:BIAS\]\]$"):
        decode_from_flag(["tanh", "x"])
    with pytest.raises(BundleError, match=r"decoder tanh has no keys \['index'\]"):
        decoder_for({"kind": "tanh", "index": 0}, (1, 1), "s")
