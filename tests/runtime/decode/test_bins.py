"""``bins``: donkeycar's linear_unbin, written out here by hand as the oracle."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from runtime.decode import decoder_for
from runtime.decode.bins import BinsDecoder
from runtime.manifest import BundleError


def linear_unbin(arr: np.ndarray, n: int = 15, offset: float = -1, r: float = 2.0) -> float:
    """donkeycar/utils.py linear_unbin, verbatim in meaning: argmax * (R / (N + offset)) + offset."""
    return float(np.argmax(arr) * (r / (n + offset)) + offset)


def test_argmax_equals_donkeycar_linear_unbin_for_every_angle_bin() -> None:
    dec = decoder_for({"kind": "bins", "range": [-1, 1]}, (1, 15), "angle_out")
    for b in range(15):
        p = np.full((1, 15), 0.01, np.float32)
        p[0, b] = 0.86
        assert dec(p) == pytest.approx(linear_unbin(p)), b
    assert dec(np.eye(15, dtype=np.float32)[7:8]) == 0.0


def test_donkeycar_throttle_convention_bin_i_is_i_r_over_n() -> None:
    n, r = 20, 0.8
    dec = decoder_for({"kind": "bins", "range": [0, r * (n - 1) / n]}, (1, n), "throttle_out")
    for b in (0, 1, 10, 19):
        assert dec(np.eye(n, dtype=np.float32)[b : b + 1]) == pytest.approx(linear_unbin(np.eye(n)[b], n, 0.0, r))


def test_expectation_is_the_probability_weighted_mean() -> None:
    dec = decoder_for({"kind": "bins", "range": [-1, 1], "method": "expectation"}, (1, 3), "a")
    assert dec(np.array([[0.25, 0.25, 0.5]], np.float32)) == pytest.approx(0.25)
    assert math.isnan(dec(np.array([[-1.0, 0.5, 0.5]], np.float32)))  # not probabilities: refused, not guessed
    assert math.isnan(dec(np.array([[np.nan, 0.5, 0.5]], np.float32)))


def test_gain_bias_and_index() -> None:
    dec = decoder_for({"kind": "bins", "range": [0, 1], "gain": 0.5, "bias": 0.1}, (1, 5), "t")
    assert dec(np.eye(5, dtype=np.float32)[4:5]) == pytest.approx(0.6)
    assert dec.to_dict() == {"kind": "bins", "bins": 5, "range": [0.0, 1.0], "method": "argmax", "gain": 0.5, "bias": 0.1}


@pytest.mark.parametrize(("decode", "match"), [
    ({"kind": "bins", "range": [-1, 1], "bins": 14}, "14 bins, the output has 15"),
    ({"kind": "bins"}, "needs range"),
    ({"kind": "bins", "range": [1, 1]}, "two different finite"),
    ({"kind": "bins", "range": [-1, 1], "method": "mode"}, "method 'mode'"),
    ({"kind": "bins", "range": [-1, 1], "step": 2}, "no keys"),
])
def test_bad_bins_are_refused(decode: dict, match: str) -> None:
    with pytest.raises(BundleError, match=match):
        decoder_for(decode, (1, 15), "angle_out")


def test_defaults_of_a_directly_built_decoder() -> None:
    dec = BinsDecoder(3, -1.0, 1.0)
    assert dec.to_dict() == {"kind": "bins", "bins": 3, "range": [-1.0, 1.0], "method": "argmax", "gain": 1.0, "bias": 0.0}
    assert dec(np.array([[0.1, 0.2, 0.7]], np.float32)) == 1.0
    assert dec.index(np.array([[0.1, 0.7, 0.2]], np.float32)) == 1


def test_expectation_normalises_and_refuses_what_is_not_probabilities() -> None:
    dec = decoder_for({"kind": "bins", "range": [-1, 1], "method": "expectation"}, (1, 3), "a")
    assert dec(np.array([[1.0, 1.0, 2.0]], np.float32)) == pytest.approx(0.25)  # weights 1/4, 1/4, 1/2
    assert dec(np.array([[0.0, 0.5, 0.5]], np.float32)) == pytest.approx(0.5)  # a zero probability is fine
    assert math.isnan(dec(np.array([[-0.5, 0.75, 0.75]], np.float32)))  # sums to 1, one negative
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # refused before dividing by the zero total
        assert math.isnan(dec(np.zeros((1, 3), np.float32)))


def test_two_bins_is_the_smallest_categorical_output() -> None:
    dec = decoder_for({"kind": "bins", "range": [0, 1]}, (1, 2), "t")
    assert dec(np.array([[0.2, 0.8]], np.float32)) == 1.0
    with pytest.raises(BundleError, match=r"decoder bins says 1 bins, the output has 1 values \(shape \[1, 1\]\)"):
        decoder_for({"kind": "bins", "range": [0, 1]}, (1, 1), "t")


@pytest.mark.parametrize("rng", [[0, math.inf], [-math.inf, 0], [math.nan, 1]])
def test_a_range_with_one_non_finite_end_is_refused(rng: list[float]) -> None:
    with pytest.raises(BundleError, match="must be two different finite values"):
        decoder_for({"kind": "bins", "range": rng}, (1, 3), "t")


def test_errors_name_the_output_and_list_the_methods() -> None:
    with pytest.raises(BundleError, match=r"^output 'angle_out': bins method 'mode' is not one of argmax, expectation$"):
        decoder_for({"kind": "bins", "range": [-1, 1], "method": "mode"}, (1, 15), "angle_out")
    with pytest.raises(BundleError, match=r"^output 'angle_out': decoder bins has no keys \['step'\]$"):
        decoder_for({"kind": "bins", "range": [-1, 1], "step": 2}, (1, 15), "angle_out")
