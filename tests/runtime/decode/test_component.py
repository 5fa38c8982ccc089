"""``component``: one element of a vector output (JetRacer's x -> steering = x * gain + bias)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.decode import OutputDecoders, decoder_for
from runtime.manifest import BundleError, OutputSpec


def test_jetracer_x_to_steering() -> None:
    dec = decoder_for({"kind": "component", "index": 0, "gain": 0.8, "bias": -0.05}, (1, 2), "xy")
    assert dec(np.array([[0.5, -0.9]], np.float32)) == pytest.approx(0.5 * 0.8 - 0.05)


def test_one_tensor_two_meanings() -> None:
    outs = [OutputSpec("model_outputs", (1, 2), "steering", {"kind": "component", "index": 0}),
            OutputSpec("model_outputs", (1, 2), "throttle", {"kind": "component", "index": 1})]
    got = OutputDecoders(outs)({"model_outputs": np.array([[-0.3, 0.4]], np.float32)})
    assert got == {"steering": pytest.approx(-0.3), "throttle": pytest.approx(0.4)}


def test_index_out_of_range_or_missing_is_refused() -> None:
    with pytest.raises(BundleError, match="index 2 is outside its 2 values"):
        decoder_for({"kind": "component", "index": 2}, (1, 2), "xy")
    with pytest.raises(BundleError, match="needs an index"):
        decoder_for({"kind": "component"}, (1, 2), "xy")
