"""Output meanings and decoders: donkeycar's names, tags, flags, and refusals that name the fix."""

from __future__ import annotations

import json

import pytest

from converter.errors import ConverterError
from converter.model_outputs import Want, parse_outputs, resolve_outputs


def _by_meaning(specs: list) -> dict:
    return {s.meaning: (s.name, s.decode) for s in specs}


def test_plain_names_and_aliases_are_scalars() -> None:
    got = _by_meaning(resolve_outputs({"steering": (1, 1), "throttle": (1, 1)}, {}, []))
    assert got["steering"] == ("steering", {"kind": "scalar", "gain": 1.0, "bias": 0.0})
    assert got["throttle"][0] == "throttle"
    assert _by_meaning(resolve_outputs({"angle": (1, 1)}, {}, []))["steering"][0] == "angle"


def test_donkeycar_linear_imu_and_categorical_names_need_no_flag() -> None:
    lin = _by_meaning(resolve_outputs({"n_outputs0": (1, 1), "n_outputs1": (1, 1)}, {}, []))
    assert lin["steering"][0] == "n_outputs0" and lin["throttle"][0] == "n_outputs1"
    imu = _by_meaning(resolve_outputs({"out_0": (1, 1), "out_1": (1, 1)}, {}, []))
    assert imu["steering"][0] == "out_0" and imu["throttle"][0] == "out_1"
    cat = _by_meaning(resolve_outputs({"angle_out": (1, 15), "throttle_out": (1, 20)}, {}, [],
                                      {"angle_out": "softmax", "throttle_out": "softmax"}))
    assert cat["steering"][1] == {"kind": "bins", "bins": 15, "range": [-1.0, 1.0], "method": "argmax",
                                  "gain": 1.0, "bias": 0.0}
    # donkeycar's linear_unbin(offset=0, R=0.8): bin i is i * 0.8 / 20, so the last bin is 0.76.
    assert cat["throttle"][1]["range"] == [0.0, pytest.approx(0.76)]


def test_lstm_pair_output_is_two_components() -> None:
    got = _by_meaning(resolve_outputs({"model_outputs": (1, 2)}, {}, []))
    assert got["steering"] == ("model_outputs", {"kind": "component", "index": 0, "gain": 1.0, "bias": 0.0})
    assert got["throttle"][1]["index"] == 1


def test_categorical_head_that_is_not_softmax_is_not_taken_for_bins() -> None:
    with pytest.raises(ConverterError, match=r"'angle_out'.*\[1, 15\].*--outputs angle_out=steering:bins"):
        resolve_outputs({"angle_out": (1, 15)}, {}, [], {"angle_out": "linear"})


@pytest.mark.parametrize("shape", [(1, 15), (1, 2)])
def test_a_steering_output_of_many_values_without_decoder_is_refused(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConverterError, match=r"'steer'.*not a single value.*--outputs steer=steering:bins:LO:HI"):
        resolve_outputs({"steer": shape}, {}, [Want("steer", "steering")])


@pytest.mark.parametrize("shape", [(1, 3, 5), (1, 2, 24, 32), (1, 1000)])
def test_a_steering_output_that_is_no_vector_is_refused_without_a_steering_decoder_hint(shape: tuple[int, ...]) -> None:
    with pytest.raises(ConverterError, match=r"'steer'.*not a steering value: it looks like") as e:
        resolve_outputs({"steer": shape}, {}, [Want("steer", "steering")])
    assert "component" not in str(e.value) and "\n" not in str(e.value)


def test_flag_syntax_with_decoders_and_affine() -> None:
    wants = parse_outputs("xy=steering:component:0:2.0:-0.1,angle_out=throttle:bins:0:1:expectation,z=other")
    assert wants[0] == Want("xy", "steering", {"kind": "component", "index": 0, "gain": 2.0, "bias": -0.1})
    assert wants[1].decode == {"kind": "bins", "range": [0.0, 1.0], "method": "expectation"}
    specs = resolve_outputs({"xy": (1, 2), "angle_out": (1, 20), "z": (1, 4)}, {}, wants)
    assert [(s.name, s.meaning) for s in specs] == [("xy", "steering"), ("angle_out", "throttle"), ("z", "other")]
    with pytest.raises(ConverterError, match="cannot read decoder"):
        parse_outputs("xy=steering:component")
    with pytest.raises(ConverterError, match="NAME=MEANING"):
        parse_outputs("xy")


def test_tag_json_forms_and_flag_replaces_tag() -> None:
    tag = {"edge.outputs": json.dumps({"xy": [{"meaning": "steering", "decode": {"kind": "component", "index": 0,
                                                                                 "gain": 1.5}},
                                              {"meaning": "throttle", "decode": {"kind": "component", "index": 1}}]})}
    got = _by_meaning(resolve_outputs({"xy": (1, 2)}, tag, []))
    assert got["steering"][1]["gain"] == 1.5 and got["throttle"][1]["index"] == 1
    old = {"edge.outputs": json.dumps({"output_0": "throttle", "output_1": "steering"})}
    got = _by_meaning(resolve_outputs({"output_0": (1, 1), "output_1": (1, 1)}, old, []))
    assert got == {"throttle": ("output_0", got["throttle"][1]), "steering": ("output_1", got["steering"][1])}
    flag = [Want("output_0", "steering"), Want("output_1", "throttle")]
    assert _by_meaning(resolve_outputs({"output_0": (1, 1), "output_1": (1, 1)}, old, flag))["steering"][0] == "output_0"


def test_unknown_or_missing_meanings_name_the_flag() -> None:
    with pytest.raises(ConverterError, match=r"cannot tell what output 'output_0'.*--outputs output_0=MEANING"):
        resolve_outputs({"output_0": (1, 1), "output_1": (1, 1)}, {}, [])
    with pytest.raises(ConverterError, match="no output means steering"):
        resolve_outputs({"a": (1, 1)}, {}, [Want("a", "throttle")])
    with pytest.raises(ConverterError, match="model's outputs are"):
        resolve_outputs({"a": (1, 1)}, {}, [Want("b", "steering")])
    with pytest.raises(ConverterError, match="more than one output means"):
        resolve_outputs({"a": (1, 1), "b": (1, 1)}, {}, [Want("a", "steering"), Want("b", "steering")])
    with pytest.raises(ConverterError, match="component index 5 is outside its 2 values"):
        resolve_outputs({"xy": (1, 2)}, {}, [Want("xy", "steering", {"kind": "component", "index": 5})])
