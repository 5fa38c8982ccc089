"""``scalar``: exactly one value, else refused naming the output and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.decode import DECODERS, decoder_for
from runtime.manifest import BundleError


def test_one_value_with_affine() -> None:
    assert decoder_for({"kind": "scalar"}, (1, 1), "s")(np.array([[0.25]], np.float32)) == 0.25
    dec = decoder_for({"kind": "scalar", "gain": -2.0, "bias": 0.5}, (1, 1), "s")
    assert dec(np.array([[0.25]], np.float32)) == 0.0


@pytest.mark.parametrize("shape", [(1, 15), (1, 2)])
def test_more_than_one_value_is_refused_with_the_flag(shape: tuple[int, ...]) -> None:
    with pytest.raises(BundleError, match=r"output 'angle_out' has shape .* not a single value.*--outputs angle_out="):
        decoder_for({"kind": "scalar"}, shape, "angle_out")


def test_unknown_kind_and_non_finite_affine_are_refused() -> None:
    with pytest.raises(BundleError, match="unknown decoder 'softmax'"):
        decoder_for({"kind": "softmax"}, (1, 1), "s")
    with pytest.raises(BundleError, match="finite"):
        decoder_for({"kind": "scalar", "gain": float("inf")}, (1, 1), "s")


def test_a_decode_dict_without_kind_is_scalar() -> None:
    dec = decoder_for({"gain": 2.0}, (1, 1), "s")
    assert dec.kind == "scalar" and dec(np.array([[0.25]], np.float32)) == 0.5


def test_errors_name_the_output_or_a_placeholder_and_list_the_decoders() -> None:
    listed = ", ".join(DECODERS)  # the table, whatever decoders it holds (scalar, bins, component, ...)
    with pytest.raises(BundleError, match=rf"^output 'steer': unknown decoder 'softmax'; decoders are {listed}$"):
        decoder_for({"kind": "softmax"}, (1, 1), "steer")
    with pytest.raises(BundleError, match=r"^output '\?': unknown decoder"):
        decoder_for({"kind": "softmax"}, (1, 1))
    with pytest.raises(BundleError, match=r"^output 'steer': decoder scalar has no keys \['index'\]$"):
        decoder_for({"kind": "scalar", "index": 0}, (1, 1), "steer")


@pytest.mark.parametrize("shape", [(1,), (1, 1), (1, 1, 1)])
def test_the_first_value_of_any_single_value_shape(shape: tuple[int, ...]) -> None:
    dec = decoder_for({"kind": "scalar"}, shape, "s")
    assert dec(np.full(shape, -0.75, np.float32)) == -0.75


def test_to_dict_round_trips() -> None:
    dec = decoder_for({"kind": "scalar", "gain": -2.0, "bias": 0.5}, (1, 1), "s")
    assert dec.to_dict() == {"kind": "scalar", "gain": -2.0, "bias": 0.5}
    assert decoder_for(dec.to_dict(), (1, 1), "s")(np.array([[0.25]], np.float32)) == 0.0
