"""Detection decoders: boxes/scores/labels tensors (NMS in the graph or by the runtime) and YOLO heads."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.manifest import BundleError
from runtime.perception import BoxesDecoder, Detection, YoloDecoder, perception_decoder_for

CLASSES = ["background", "cone", "person"]


def boxes_decoder(shape: tuple[int, ...] = (1, 3, 4), **kw: object) -> BoxesDecoder:
    d = {"kind": "boxes", "scores": "scores", "labels": "labels", "classes": CLASSES, "input_size": [100, 50], **kw}
    dec = perception_decoder_for("detection", d, shape, "boxes")
    assert isinstance(dec, BoxesDecoder)
    return dec


def test_boxes_in_pixels_are_normalised_thresholded_and_sorted() -> None:
    raw: dict[str, np.ndarray] = {"boxes": np.array([[[10, 5, 30, 25], [50, 10, 90, 40], [0, 0, 5, 5]]], np.float32),
           "scores": np.array([[0.6, 0.9, 0.2]], np.float32), "labels": np.array([[1, 2, 1]], np.int64)}
    dets = boxes_decoder()(raw)
    assert [d.label for d in dets] == ["person", "cone"]
    assert (dets[0].x1, dets[0].y1, dets[0].x2, dets[0].y2, dets[0].class_id) == pytest.approx((0.5, 0.2, 0.9, 0.8, 2))
    assert dets[0].score == pytest.approx(0.9)
    assert dets[1].x1 == pytest.approx(0.1) and dets[1].y2 == pytest.approx(0.5)
    assert boxes_decoder().reads == ("boxes", "scores", "labels")


def test_runtime_nms_keeps_the_best_of_overlapping_boxes_per_class() -> None:
    raw = {"boxes": np.array([[[10, 10, 40, 40], [12, 11, 41, 42], [12, 11, 41, 42], [60, 10, 90, 40]]], np.float32),
           "scores": np.array([[0.9, 0.8, 0.7, 0.6]], np.float32), "labels": np.array([[1, 1, 2, 1]])}
    kept = boxes_decoder((1, 4, 4), nms="runtime")(raw)
    assert [(d.label, round(d.score, 2)) for d in kept] == [("cone", 0.9), ("person", 0.7), ("cone", 0.6)]
    graph = boxes_decoder((1, 4, 4))(raw)  # nms inside the graph: every box above the threshold stays
    assert len(graph) == 4


def test_nan_boxes_and_an_empty_result_are_not_detections() -> None:
    raw: dict[str, np.ndarray] = {"boxes": np.array([[np.nan, 0, 1, 1]], np.float32).reshape(1, 1, 4),
           "scores": np.array([[0.99]], np.float32), "labels": np.array([[1]])}
    assert boxes_decoder((1, 1, 4))(raw) == []
    empty: dict[str, np.ndarray] = {"boxes": np.zeros((0, 4), np.float32), "scores": np.zeros((0,), np.float32),
             "labels": np.zeros((0,), np.int64)}
    assert boxes_decoder((-1, 4))(empty) == []


def yolo_head(cands: list[tuple[float, float, float, float, list[float]]], k: int) -> np.ndarray:
    y = np.zeros((1, 4 + k, len(cands)), np.float32)
    for i, (cx, cy, w, h, s) in enumerate(cands):
        y[0, :, i] = [cx, cy, w, h, *s]
    return y


def test_a_yolo_head_in_either_layout_gives_the_same_detections() -> None:
    y = yolo_head([(32, 16, 20, 10, [0.1, 0.8]), (33, 16, 20, 10, [0.1, 0.7]), (10, 10, 4, 4, [0.55, 0.2])], 2)
    d = {"kind": "yolo", "classes": ["cone", "person"], "input_size": [64, 32]}
    cn = perception_decoder_for("detection", d, y.shape, "output0")
    nc = perception_decoder_for("detection", {**d, "layout": "NC"}, (1, 3, 6), "output0")
    assert isinstance(cn, YoloDecoder)
    a, b = cn({"output0": y}), nc({"output0": np.transpose(y, (0, 2, 1))})
    assert a == b and [(x.label, round(x.score, 2)) for x in a] == [("person", 0.8), ("cone", 0.55)]
    assert a[0].x1 == pytest.approx((32 - 10) / 64) and a[0].y2 == pytest.approx((16 + 5) / 32)


def test_yolo_objectness_multiplies_the_class_scores() -> None:
    y = np.array([[[32, 16, 20, 10, 0.5, 0.9]]], np.float32)  # NC: one candidate, objectness 0.5
    dec = perception_decoder_for("detection", {"kind": "yolo", "layout": "NC", "objectness": True,
                                               "classes": ["cone"], "input_size": [64, 32],
                                               "score_threshold": 0.4}, y.shape, "p")
    assert [round(x.score, 2) for x in dec({"p": y})] == [0.45]


@pytest.mark.parametrize(
    ("meaning", "decode", "shape", "message"),
    [
        ("detection", {"kind": "yolo", "classes": ["a"] * 3, "input_size": [64, 64]}, (1, 84, 8400),
         "84 values per candidate .* i.e. 80 classes, but classes is .*; pass --classes with 80 names"),
        ("detection", {"kind": "yolo", "classes": ["a"]}, (1, 5, 100), "needs input_size"),
        ("detection", {"kind": "yolo", "classes": ["a"]}, (1, 5), "a YOLO head is"),
        ("detection", {"kind": "boxes", "scores": "s", "classes": ["a"]}, (1, 5, 4), "boxes in pixels need input_size"),
        ("detection", {"kind": "boxes", "classes": ["a"], "normalized": True}, (1, 5, 4), "needs the name of its scores"),
        ("detection", {"kind": "boxes", "scores": "s", "normalized": True}, (1, 5, 4), "needs classes"),
        ("detection", {"kind": "boxes", "scores": "s", "classes": ["a"], "normalized": True}, (1, 5, 5),
         "boxes are \\(1, N, 4\\) or \\(N, 4\\)"),
        ("detection", {"kind": "boxes", "scores": "s", "classes": ["a"], "normalized": True, "nms": "maybe"},
         (1, 5, 4), "nms 'maybe'"),
        ("detection", {"kind": "boxes", "scores": "s", "classes": ["a"], "normalized": True,
                       "score_threshold": 2}, (1, 5, 4), "score_threshold 2.0 must be in"),
    ],
)
def test_what_does_not_fit_is_refused(meaning: str, decode: dict[str, object], shape: tuple[int, ...],
                                      message: str) -> None:
    with pytest.raises(BundleError, match=message):
        perception_decoder_for(meaning, decode, shape, "out")


def test_iou_and_area() -> None:
    a, b = Detection(0, 0, 0.5, 0.5, 1, 0, "a"), Detection(0.25, 0.25, 0.75, 0.75, 1, 0, "a")
    assert a.area == 0.25 and a.iou(b) == pytest.approx(0.0625 / (0.5 - 0.0625))
    assert a.iou(Detection(0.6, 0.6, 0.9, 0.9, 1, 0, "a")) == 0.0
