"""``scalar``: exactly one value, else refused naming the output and the fix."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.decode import decoder_for
from runtime.manifest import BundleError


def test_one_value_with_affine() -> None:
    assert decoder_for({"kind": "scalar"}, (1, 1), "s")(np.array([[0.25]], np.float32)) == 0.25
    dec = decoder_for({"kind": "scalar", "gain": -2.0, "bias": 0.5}, (1, 1), "s")
    assert dec(np.array([[0.25]], np.float32)) == 0.0


@pytest.mark.parametrize("shape", [(1, 15), (1, 2), (1, 2, 2)])
def test_more_than_one_value_is_refused_with_the_flag(shape: tuple[int, ...]) -> None:
    with pytest.raises(BundleError, match=r"output 'angle_out' has shape .* not a single value.*--outputs angle_out="):
        decoder_for({"kind": "scalar"}, shape, "angle_out")


def test_unknown_kind_and_non_finite_affine_are_refused() -> None:
    with pytest.raises(BundleError, match="unknown decoder 'softmax'"):
        decoder_for({"kind": "softmax"}, (1, 1), "s")
    with pytest.raises(BundleError, match="finite"):
        decoder_for({"kind": "scalar", "gain": float("inf")}, (1, 1), "s")
