"""Each decoder reads its own ``--outputs`` fields (``from_flag``), through the one table."""

from __future__ import annotations

import pytest

from runtime.decode import DECODERS, decode_from_flag, decoder_for, flag_grammar
from runtime.manifest import BundleError


@pytest.mark.parametrize(
    ("fields", "decode", "shape"),
    [
        (["scalar"], {"kind": "scalar", "gain": 1.0, "bias": 0.0}, (1, 1)),
        (["scalar", "2", "-0.5"], {"kind": "scalar", "gain": 2.0, "bias": -0.5}, (1, 1)),
        (["bins", "-1", "1"], {"kind": "bins", "range": [-1.0, 1.0], "method": "argmax"}, (1, 15)),
        (["bins", "0", "0.76", "expectation"], {"kind": "bins", "range": [0.0, 0.76], "method": "expectation"}, (1, 20)),
        (["component", "0", "1.2"], {"kind": "component", "index": 0, "gain": 1.2, "bias": 0.0}, (1, 2)),
    ],
)
def test_flag_fields_become_the_decode_dict_the_decoder_accepts(fields: list[str], decode: dict[str, object],
                                                                shape: tuple[int, ...]) -> None:
    got = decode_from_flag(fields)
    assert got == decode
    assert decoder_for(got, shape, "out").kind == fields[0]


@pytest.mark.parametrize(
    ("fields", "grammar"),
    [
        (["scalar", "x"], r"scalar\[:GAIN\[:BIAS\]\]"),
        (["scalar", "1", "2", "3"], r"scalar\[:GAIN"),
        (["bins", "-1"], r"bins:LO:HI\[:argmax\|expectation\]"),
        (["bins", "-1", "1", "median"], r"bins:LO:HI"),
        (["component"], r"component:INDEX\[:GAIN\[:BIAS\]\]"),
        (["component", "first"], r"component:INDEX"),
    ],
)
def test_fields_a_decoder_cannot_read_name_its_own_grammar(fields: list[str], grammar: str) -> None:
    with pytest.raises(BundleError, match=rf"^cannot read decoder '{':'.join(fields)}'; {fields[0]} takes {grammar}"):
        decode_from_flag(fields)


def test_an_unknown_kind_lists_every_decoder_of_the_table() -> None:
    with pytest.raises(BundleError, match="unknown decoder 'softmax'; decoders are scalar") as e:
        decode_from_flag(["softmax"])
    assert all(kind in str(e.value) for kind in DECODERS)
    assert flag_grammar().startswith("scalar[:GAIN[:BIAS]], bins:LO:HI[:argmax|expectation], component:INDEX")
