"""A steering decoder never reads a map, a head or class scores: refused naming what it looks like."""

from __future__ import annotations

import pytest

from runtime.decode import decoder_for
from runtime.manifest import BundleError


@pytest.mark.parametrize(
    ("shape", "decode", "looks"),
    [
        ((1, 2, 240, 320), {"kind": "component", "index": 0}, "a segmentation map"),  # LRASPP's out (issue 19)
        ((1, 240, 320, 2), {"kind": "component", "index": 0}, "a segmentation map"),
        ((1, 84, 8400), {"kind": "component", "index": 0}, "a detection head"),
        ((1, 100, 4), {"kind": "component", "index": 0}, "detection boxes"),
        ((1, 1000), {"kind": "component", "index": 0}, "class scores"),
        ((1, 1000), {"kind": "bins", "range": [-1, 1]}, "class scores"),
        ((1, 2, 240, 320), {"kind": "scalar"}, "a segmentation map"),
        ((1, 3, 5), {"kind": "bins", "range": [-1, 1]}, "a map or a sequence"),
    ],
)
def test_maps_heads_and_scores_are_refused_naming_their_kind(shape: tuple[int, ...], decode: dict[str, object],
                                                             looks: str) -> None:
    with pytest.raises(BundleError, match=f"output 'out' has shape .*looks like {looks}"):
        decoder_for(decode, shape, "out")


@pytest.mark.parametrize("shape", [(1, 2), (1, 15), (1, 32)])
def test_vectors_still_decode(shape: tuple[int, ...]) -> None:
    assert decoder_for({"kind": "component", "index": 1}, shape, "xy").to_dict()["index"] == 1
