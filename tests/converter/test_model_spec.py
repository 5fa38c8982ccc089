from __future__ import annotations

import json

import pytest

from converter.errors import ConverterError
from converter.model_spec import resolve_preprocess


def test_preprocess_from_tag_with_crop() -> None:
    tag = {"edge.preprocess": json.dumps({"width": 160, "height": 120, "crop_top": 40, "color": "BGR"})}
    spec, origin = resolve_preprocess(tag, {}, (80, 160), model_rescales=False)
    assert spec.crop_top == 40 and spec.color == "BGR" and origin.startswith("tag")


def test_cli_overrides_tag_and_size_mismatch_is_an_error() -> None:
    tag = {"edge.preprocess": json.dumps({"width": 160, "height": 120})}
    spec, origin = resolve_preprocess(tag, {"color": "BGR"}, (120, 160), False)
    assert spec.color == "BGR" and "command line" in origin
    with pytest.raises(ConverterError, match="model takes 100x160"):
        resolve_preprocess(tag, {}, (100, 160), False)


def test_model_that_rescales_gets_raw_pixels() -> None:
    spec, _ = resolve_preprocess({}, {}, (120, 160), model_rescales=True)
    assert spec.scale == 1.0 and spec.model_rescales


def test_dynamic_image_size_needs_the_size_from_a_flag_or_tag() -> None:
    with pytest.raises(ConverterError, match=r"any size.*--input-size"):
        resolve_preprocess({}, {}, (None, None), False)
    spec, _ = resolve_preprocess({}, {"width": 160, "height": 120}, (None, None), False)
    assert spec.input_hw == (120, 160)
    tag = {"edge.preprocess": json.dumps({"width": 128, "height": 96, "crop_top": 16})}
    assert resolve_preprocess(tag, {}, (None, None), False)[0].input_hw == (80, 128)


def test_one_channel_model_defaults_to_gray_and_refuses_rgb() -> None:
    spec, _ = resolve_preprocess({}, {}, (120, 160), False, channels=1)
    assert spec.color == "GRAY" and spec.channels == 1
    with pytest.raises(ConverterError, match="--color GRAY"):
        resolve_preprocess({}, {"color": "RGB"}, (120, 160), False, channels=1)
    with pytest.raises(ConverterError, match="--color RGB"):
        resolve_preprocess({}, {"color": "GRAY"}, (120, 160), False, channels=3)


def test_a_scale_on_top_of_the_models_rescaling_layer_is_refused_naming_where_it_came_from() -> None:
    with pytest.raises(ConverterError, match=r"layer 'rescaling'.*--scale.*twice.*drop that scale"):
        resolve_preprocess({}, {"scale": 1 / 255}, (120, 160), True, pixel_rescaler="rescaling")
    tag = {"edge.preprocess": json.dumps({"width": 160, "height": 120, "scale": 1 / 255})}
    with pytest.raises(ConverterError, match=r"tag edge\.preprocess scales them too"):
        resolve_preprocess(tag, {}, (120, 160), True, pixel_rescaler="rescaling")
    spec, _ = resolve_preprocess({}, {"scale": 1.0}, (120, 160), True, pixel_rescaler="rescaling")
    assert spec.scale == 1.0 and spec.model_rescales


def test_a_scale_before_a_normalization_layer_stays_allowed() -> None:
    # A Normalization layer may have been adapted on pixels already scaled to [0, 1]: no rescaler named.
    spec, _ = resolve_preprocess({}, {"scale": 1 / 255}, (120, 160), True, pixel_rescaler=None)
    assert spec.scale == pytest.approx(1 / 255)
