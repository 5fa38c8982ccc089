"""Input roles: donkeycar's names, tags, flags, shapes fixed for the manifest, refusals with the fix."""

from __future__ import annotations

import json

import pytest

from converter.errors import ConverterError
from converter.model_inputs import check_one_camera, image_hw, parse_inputs, resolve_inputs
from runtime.manifest import PreprocessSpec

RGB = PreprocessSpec(160, 120)
GRAY = PreprocessSpec(160, 120, color="GRAY")


def _roles(specs: list) -> dict:
    return {s.name: (s.role, s.shape, s.layout) for s in specs}


def test_donkeycar_inputs_are_recognised_by_name() -> None:
    shapes = {"img_in": (None, 120, 160, 3), "imu_in": (None, 6), "mem_in": (None, 6), "behavior_in": (None, 2)}
    specs = {s.name: s for s in resolve_inputs(shapes, {}, {}, RGB)}
    assert specs["img_in"].role == "image" and specs["img_in"].shape == (1, 120, 160, 3)
    assert specs["imu_in"].order == ("ax", "ay", "az", "gx", "gy", "gz")
    assert specs["mem_in"].role == "memory" and specs["mem_in"].length == 3
    assert specs["behavior_in"].labels == ("0", "1")


def test_sequence_gray_and_nchw() -> None:
    seq = resolve_inputs({"img_in": (None, 3, 120, 160, 3)}, {}, {}, RGB)[0]
    assert (seq.role, seq.shape, seq.layout, seq.length) == ("image_sequence", (1, 3, 120, 160, 3), "NTHWC", 3)
    g = resolve_inputs({"img_in": (None, 120, 160, 1)}, {}, {}, GRAY)[0]
    assert g.shape == (1, 120, 160, 1)
    chw = resolve_inputs({"x": (None, 3, 120, 160)}, {}, {}, RGB)[0]
    assert (chw.layout, chw.shape) == ("NCHW", (1, 3, 120, 160))
    dyn = resolve_inputs({"image": (None, None, None, 3)}, {}, {}, RGB)[0]
    assert dyn.shape == (1, 120, 160, 3)
    assert image_hw({"image": (None, None, None, 3)}, {}, {}) == ((None, None), 3)


def test_roles_from_flag_and_tag() -> None:
    shapes = {"cam": (None, 120, 160, 3), "v": (None, 2), "b": (None, 3)}
    flag = parse_inputs("cam=image,v=memory,b=behavior:labels=left|right|centre")
    specs = {s.name: s for s in resolve_inputs(shapes, {}, flag, RGB)}
    assert specs["b"].labels == ("left", "right", "centre") and specs["v"].length == 1
    tag = {"edge.inputs": json.dumps({"cam": "image", "v": {"role": "imu", "order": ["gz", "ay"]},
                                      "b": {"role": "behavior", "labels": ["a", "b", "c"]}})}
    specs = {s.name: s for s in resolve_inputs(shapes, tag, {}, RGB)}
    assert specs["v"].order == ("gz", "ay")


def test_bad_inputs_are_refused_naming_the_input_and_flag() -> None:
    with pytest.raises(ConverterError, match=r"input 'speed' \(shape \(None, 1\)\).*--inputs NAME=ROLE"):
        resolve_inputs({"img_in": (None, 120, 160, 3), "speed": (None, 1)}, {}, {}, RGB)
    with pytest.raises(ConverterError, match="unknown role 'lidar'"):
        resolve_inputs({"x": (None, 120, 160, 3)}, {}, parse_inputs("x=lidar"), RGB)
    with pytest.raises(ConverterError, match="sequence length is dynamic"):
        resolve_inputs({"img_in": (None, None, 120, 160, 3)}, {}, {}, RGB)
    with pytest.raises(ConverterError, match="size must be even"):
        resolve_inputs({"img_in": (None, 120, 160, 3), "mem_in": (None, 5)}, {}, {}, RGB)
    with pytest.raises(ConverterError, match="order=ax"):
        resolve_inputs({"img_in": (None, 120, 160, 3), "imu_in": (None, 4)}, {}, {}, RGB)
    with pytest.raises(ConverterError, match="model takes 1 channel"):
        resolve_inputs({"img_in": (None, 120, 160, 1)}, {}, {}, RGB)
    with pytest.raises(ConverterError, match="expected NAME=ROLE"):
        parse_inputs("img_in")
    with pytest.raises(ConverterError, match=r"model's inputs are \['x'\]"):
        resolve_inputs({"x": (None, 120, 160, 3)}, {}, parse_inputs("y=image"), RGB)


@pytest.mark.parametrize("cli", ["", "img_left=image,img_right=image", "img_left=image"])
def test_two_camera_inputs_are_refused_whatever_the_flags(cli: str) -> None:
    eye: tuple[int | None, ...] = (None, 120, 160, 3)
    shapes = {"img_left": eye, "img_right": eye}
    with pytest.raises(ConverterError, match=r"^2 inputs take a camera image \(img_left \(None, 120, 160, 3\), img_right "
                                             r".*this car has one camera .*convert a model with one image input"):
        check_one_camera(shapes, {}, parse_inputs(cli))
    with pytest.raises(ConverterError, match="this car has one camera"):
        resolve_inputs(shapes, {}, parse_inputs(cli), PreprocessSpec(width=160, height=120))
