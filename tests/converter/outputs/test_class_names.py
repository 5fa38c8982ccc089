"""Class names, drivable classes, task and thresholds: flags, then tags, then the model, then the run."""

from __future__ import annotations

import pytest

from converter.class_names import (
    drivable_classes,
    image_size,
    model_class_names,
    parse_names,
    resolve_classes,
    resolve_drivable,
    task_of,
    thresholds,
)
from converter.errors import ConverterError


class _Source:
    """A loaded source offering its own class names (the optional ``class_names()`` of the protocol)."""

    def class_names(self) -> list[str]:
        return ["background", "road"]


def test_classes_come_from_the_flag_then_the_tag_then_the_model() -> None:
    tag = {"edge.classes": '["bg", "lane"]'}
    assert resolve_classes("a, b", tag, ["x", "y"]) == (("a", "b"), "--classes")
    assert resolve_classes(None, tag, ["x", "y"]) == (("bg", "lane"), "tag edge.classes")
    assert resolve_classes(None, {"edge.classes": "bg,lane"}, None)[0] == ("bg", "lane")
    assert resolve_classes(None, {}, model_class_names(_Source())) == (("background", "road"), "the model")
    assert resolve_classes(None, {}, model_class_names(object())) == (None, "")


@pytest.mark.parametrize(("text", "message"), [("a,,b", "an empty class name"), ("a,b,a", r"\['a'\] appear twice"),
                                               ('["a", ', "is not a JSON list"), ('["a"', "is not a JSON list")])
def test_malformed_names_are_refused(text: str, message: str) -> None:
    with pytest.raises(ConverterError, match=message):
        parse_names(text, "--classes")


def test_drivable_from_flag_tag_or_the_one_road_like_name() -> None:
    assert resolve_drivable("road", {"edge.drivable": "x"}) == ("road",)
    assert resolve_drivable(None, {"edge.drivable": "floor,rug"}) == ("floor", "rug")
    assert resolve_drivable(None, {}) is None
    assert drivable_classes(["background", "Drivable_Area", "lane_line"], None, "out") == ["Drivable_Area"]
    assert drivable_classes(["bg", "road", "grass"], ["road", "grass"], "out") == ["road", "grass"]
    with pytest.raises(ConverterError, match=r"--drivable names \['sky'\], which are not classes of output 'out'"):
        drivable_classes(["bg", "road"], ["sky"], "out")
    with pytest.raises(ConverterError, match=r"2 classes are named like a road \(road, floor\)"):
        drivable_classes(["road", "floor", "wall"], None, "out")


def test_task_thresholds_and_image_size() -> None:
    assert task_of({"task_type": "Segmentation "}, {}) == "segmentation"
    assert task_of({}, {"task_type": "detection"}) == "detection"
    assert task_of({}, {}) is None
    assert thresholds(None, None) == (0.5, 0.45) and thresholds(0.3, 0.6) == (0.3, 0.6)
    with pytest.raises(ConverterError, match=r"--score-threshold 0.0: must be in \(0, 1\]"):
        thresholds(0.0, None)
    assert image_size((1, 3, 240, 320), "NCHW") == (320, 240)
    assert image_size((1, 120, 160, 3), "NHWC") == (160, 120)
