from __future__ import annotations

import json

import pytest

from converter.errors import ConverterError
from converter.model_spec import parse_outputs_flag, resolve_meanings, resolve_preprocess


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


def test_meanings_by_name_tag_or_error() -> None:
    assert resolve_meanings(["steering", "throttle"], {}, {}) == {"steering": "steering", "throttle": "throttle"}
    assert resolve_meanings(["angle"], {}, {}) == {"angle": "steering"}
    with pytest.raises(ConverterError, match="cannot tell what output 'output_0' means"):
        resolve_meanings(["output_0", "output_1"], {}, {})
    tag = {"edge.outputs": json.dumps({"output_0": "throttle", "output_1": "steering"})}
    assert resolve_meanings(["output_0", "output_1"], tag, {}) == {"output_0": "throttle", "output_1": "steering"}
    assert parse_outputs_flag("a=steering,b=throttle") == {"a": "steering", "b": "throttle"}
