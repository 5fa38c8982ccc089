"""How the converter reads the outputs Keras/TF detection exports name their own way (no model
needed: :func:`converter.perception_outputs.recognise` on output names and shapes; milliseconds)."""

from __future__ import annotations

import pytest

from converter.class_names import PerceptionContext
from converter.errors import ConverterError
from converter.perception_outputs import complete, recognise

K = 192
KERAS_SSD = {"boxes": (1, K, 4), "scores": (1, K), "classes": (1, K)}
CTX = PerceptionContext(classes=("background", "cone"), input_size=(64, 48), task="detection")


@pytest.mark.parametrize("task", ["detection", None])
def test_classes_output_is_the_boxes_labels(task: str | None) -> None:
    ctx = PerceptionContext(classes=CTX.classes, input_size=CTX.input_size, task=task)
    wants = recognise(list(KERAS_SSD), KERAS_SSD, ctx)
    assert [(w.name, w.meaning) for w in wants] == [("boxes", "detection"), ("scores", "other"), ("classes", "other")]
    done = complete(wants[0], KERAS_SSD, ctx)
    assert done.decode is not None and done.decode["labels"] == "classes" and done.decode["scores"] == "scores"


def test_labels_still_win_over_classes() -> None:
    shapes = {**KERAS_SSD, "labels": (1, K)}
    wants = recognise(list(shapes), shapes, CTX)
    assert wants[0].decode is not None and wants[0].decode["labels"] == "labels"


def test_a_boxes_flag_without_labels_finds_the_classes_output() -> None:
    from converter.output_wants import Want

    done = complete(Want("boxes", "detection", {"kind": "boxes", "scores": "scores"}), KERAS_SSD, CTX)
    assert done.decode is not None and done.decode["labels"] == "classes"


@pytest.mark.parametrize("task", ["detection", None])
def test_tf_object_detection_api_outputs_are_refused(task: str | None) -> None:
    shapes = {"detection_boxes": (1, 100, 4), "detection_scores": (1, 100), "detection_classes": (1, 100),
              "num_detections": (1,)}
    ctx = PerceptionContext(classes=CTX.classes, input_size=CTX.input_size, task=task)
    with pytest.raises(ConverterError, match=r"TF Object Detection API.*x1, y1, x2, y2") as e:
        recognise(list(shapes), shapes, ctx)
    assert "\n" not in str(e.value)
