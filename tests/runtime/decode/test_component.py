"""``component``: one element of a vector output (JetRacer's x -> steering = x * gain + bias)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.decode import OutputDecoders, decoder_for
from runtime.decode.component import ComponentDecoder
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


def test_defaults_to_dict_and_last_index() -> None:
    dec = ComponentDecoder(1)
    assert dec.to_dict() == {"kind": "component", "index": 1, "gain": 1.0, "bias": 0.0}
    assert dec(np.array([[0.5, -0.9]], np.float32)) == pytest.approx(-0.9)
    again = decoder_for(dec.to_dict(), (1, 2), "xy")
    assert isinstance(again, ComponentDecoder) and again.to_dict() == dec.to_dict()


def test_unknown_keys_name_the_output() -> None:
    with pytest.raises(BundleError, match=r"^output 'xy': decoder component has no keys \['bins'\]$"):
        decoder_for({"kind": "component", "index": 0, "bins": 2}, (1, 2), "xy")


def test_other_outputs_are_carried_not_decoded() -> None:
    outs = [OutputSpec("s", (1, 1), "steering"), OutputSpec("features", (1, 15), "other")]
    dec = OutputDecoders(outs)
    assert dec.meanings == ["steering"]
    raw = {"s": np.array([[0.5], [-0.25]], np.float32), "features": np.zeros((2, 15), np.float32)}
    got = dec.batch(raw)
    assert list(got) == ["steering"] and got["steering"].dtype == np.float64
    assert got["steering"].tolist() == [0.5, -0.25]
