"""The shape of a PyTorch input the file does not record: --input-shape, else its role's, else the
camera's from --input-size; otherwise one line naming the input and both flags (no torch needed)."""

from __future__ import annotations

import pytest

from converter.errors import ConverterError, ModelLoadError
from converter.sources.hints import SourceHints, parse_input_shapes
from converter.sources.torch_source import _shape_from_hints

FILE = "model.pth (state-dict)"


def hints(roles: dict[str, dict[str, object]], shapes: str = "") -> SourceHints:
    return SourceHints(input_roles=roles, input_shapes=parse_input_shapes(shapes), input_hw=(48, 64))


def test_each_input_gets_its_shape_from_the_flag_its_role_or_the_camera() -> None:
    h = hints({"image": {"role": "image"}, "speed": {"role": "wheel_speed"}, "imu": {"role": "imu"},
               "mem": {"role": "memory", "length": "3"}, "b": {"role": "behavior", "labels": ["l", "r"]},
               "seq": {"role": "image_sequence", "length": "4"}, "other": {"role": "imu"}}, "other=1x3")
    got = {n: _shape_from_hints(n, 7, h, FILE) for n in ("image", "speed", "imu", "mem", "b", "seq", "other")}
    assert got == {"image": (1, 3, 48, 64), "speed": (1, 1), "imu": (1, 6), "mem": (1, 6), "b": (1, 2),
                   "seq": (1, 4, 3, 48, 64), "other": (1, 3)}
    assert _shape_from_hints("x", 1, hints({}), FILE) == (1, 3, 48, 64)  # the only input is the camera's


def test_an_input_nothing_shapes_is_named_with_the_flags() -> None:
    with pytest.raises(ModelLoadError, match=r"^model.pth \(state-dict\) does not record the shape of input 'speed' "
                       r"\(forward takes several\); say what it is with --inputs speed=ROLE .* --input-shape speed=1x1$"):
        _shape_from_hints("speed", 2, hints({}), FILE)
    with pytest.raises(ModelLoadError, match=r"memory input 'mem'; pass --input-shape mem=1xK .*mem=memory:length=L"):
        _shape_from_hints("mem", 2, hints({"mem": {"role": "memory"}}), FILE)


@pytest.mark.parametrize("text", ["speed", "speed=1xa", "speed=0x1", "=1x1"])
def test_a_bad_input_shape_flag_is_named(text: str) -> None:
    with pytest.raises(ConverterError, match=r"--input-shape .*expected NAME=DIMS with positive dims"):
        parse_input_shapes(text)
