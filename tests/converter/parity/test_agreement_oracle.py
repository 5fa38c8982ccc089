"""Each agreement figure (runtime.agreement) on a case small enough to compute by hand."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.agreement import (
    confusion,
    detection_agreement,
    iou_per_class,
    mask_iou,
    match,
    segmentation_agreement,
)
from runtime.perception import Detection


def test_segmentation_figures_on_a_hand_computed_pair_of_frames() -> None:
    # frame 0: source [[0, 1], [1, 2]], build [[0, 1], [2, 2]]; frame 1: source [[1, 1], [1, 1]], build same
    want = np.array([[[0, 1], [1, 2]], [[1, 1], [1, 1]]])
    got = np.array([[[0, 1], [2, 2]], [[1, 1], [1, 1]]])
    cm = confusion(got, want, 3)
    assert cm.tolist() == [[1, 0, 0], [0, 5, 1], [0, 0, 1]]  # row: source class, column: build class
    # class 0: 1 / 1; class 1: 5 / (5 + 1); class 2: 1 / (1 + 1)
    assert iou_per_class(cm).tolist() == pytest.approx([1.0, 5 / 6, 0.5])
    f = segmentation_agreement(got, want, got == 1, want == 1, ["bg", "road", "line"])
    assert f["pixel_acc_segmentation"] == pytest.approx(7 / 8)
    assert f["miou_segmentation"] == pytest.approx((1 + 5 / 6 + 0.5) / 3)
    assert f["iou_per_class"] == pytest.approx({"bg": 1.0, "road": 5 / 6, "line": 0.5})
    assert f["drivable_iou"] == pytest.approx(5 / 6)
    assert f["drivable_iou_min_frame"] == pytest.approx(1 / 2)  # frame 0: road 2 vs 1 pixels, 1 shared
    assert f["frames"] == 2 and f["pixels"] == 8


def test_a_class_neither_map_has_is_left_out_of_the_mean() -> None:
    want = got = np.array([[[0, 0], [1, 1]]])
    f = segmentation_agreement(got, want, got == 1, want == 1, ["bg", "road", "line"])
    assert f["miou_segmentation"] == 1.0 and set(f["iou_per_class"]) == {"bg", "road"}
    assert mask_iou(np.zeros((2, 2), bool), np.zeros((2, 2), bool)) == 1.0  # both empty: they agree
    with pytest.raises(ValueError, match="differ in shape"):
        segmentation_agreement(got, want[:, :1], got == 1, want[:, :1] == 1, ["bg", "road"])


def d(x1: float, y1: float, x2: float, y2: float, score: float = 0.9, cls: int = 1) -> Detection:
    return Detection(x1, y1, x2, y2, score, cls, f"c{cls}")


def test_matching_is_greedy_by_iou_within_a_class() -> None:
    want = [d(0.0, 0.0, 0.4, 0.4), d(0.5, 0.5, 0.9, 0.9)]
    # build 0 overlaps source 0 by IoU (0.3*0.4)/(0.16+0.16-0.12) = 0.6; build 1 is source 1 exactly;
    # build 2 is source 0 exactly but of another class: never matched
    got = [d(0.1, 0.0, 0.5, 0.4), d(0.5, 0.5, 0.9, 0.9), d(0.0, 0.0, 0.4, 0.4, cls=2)]
    pairs = match(got, want)
    assert [(i, j) for i, j, _ in pairs] == [(1, 1), (0, 0)] and pairs[1][2] == pytest.approx(0.6)
    assert match([d(0.2, 0.0, 0.6, 0.4)], want) == []  # IoU 1/3 < 0.5
    # two builds over one source: the higher IoU wins, the other is extra
    two = match([d(0.1, 0.0, 0.5, 0.4), d(0.0, 0.0, 0.4, 0.38)], want[:1])
    assert [(i, j) for i, j, _ in two] == [(1, 0)]


def test_detection_figures_with_borderline_scores_on_hand_computed_frames() -> None:
    thr = 0.5
    want = [
        [d(0, 0, 0.4, 0.4, 0.9), d(0.5, 0.5, 0.9, 0.9, 0.8), d(0.6, 0.0, 0.9, 0.3, 0.52)],  # last: borderline
        [d(0, 0, 0.2, 0.2, 0.7)],
        [],
    ]
    got = [
        [d(0.1, 0, 0.5, 0.4, 0.85), d(0.5, 0.5, 0.9, 0.9, 0.8)],  # borderline one dropped out
        [],  # missed (0.7 >= 0.55)
        [d(0.3, 0.3, 0.6, 0.6, 0.6), d(0.0, 0.6, 0.2, 0.8, 0.51)],  # one extra, one borderline extra
    ]
    f = detection_agreement(got, want, thr, margin=0.05)
    assert (f["matched"], f["missed"], f["extra"], f["borderline_missed"], f["borderline_extra"]) == (2, 1, 1, 1, 1)
    assert f["source_detections"] == 4 and f["build_detections"] == 4 and f["matched_share"] == 0.5
    assert f["mean_iou"] == pytest.approx((0.6 + 1.0) / 2) and f["min_iou"] == pytest.approx(0.6)
    assert f["score_max_abs"] == pytest.approx(0.05) and f["score_mean_abs"] == pytest.approx(0.025)
    assert f["precision_50_detection"] == pytest.approx(2 / 3) and f["recall_50_detection"] == pytest.approx(2 / 3)
    assert f["f1_50_detection"] == pytest.approx(2 / 3)
    assert f["missed_per_frame"] == pytest.approx(1 / 3) and f["missed_max_frame"] == 1 and f["extra_max_frame"] == 1


def test_nothing_to_find_and_nothing_found_agrees() -> None:
    f = detection_agreement([[], []], [[], []], 0.5)
    assert f["f1_50_detection"] == 1.0 and f["mean_iou"] == 1.0 and f["source_detections"] == 0
    lost = detection_agreement([[]], [[d(0, 0, 1, 1, 0.9)]], 0.5)
    assert lost["f1_50_detection"] == 0.0 and lost["recall_50_detection"] == 0.0 and lost["mean_iou"] == 0.0
    with pytest.raises(ValueError, match="2 frames of build detections but 1"):
        detection_agreement([[], []], [[]], 0.5)


def test_the_iou_matrix_is_detection_iou_pair_by_pair() -> None:
    from runtime.agreement.detection import box_iou

    a = [d(0.0, 0.0, 0.4, 0.4), d(0.5, 0.5, 0.5, 0.9)]  # the second is empty (zero width)
    b = [d(0.1, 0.0, 0.5, 0.4), d(0.0, 0.0, 0.4, 0.4), d(0.6, 0.6, 0.9, 0.9)]
    m = box_iou(np.array([[x.x1, x.y1, x.x2, x.y2] for x in a]), np.array([[x.x1, x.y1, x.x2, x.y2] for x in b]))
    assert m.shape == (2, 3)
    np.testing.assert_allclose(m, [[x.iou(y) for y in b] for x in a])
    assert m[0].tolist() == pytest.approx([0.6, 1.0, 0.0]) and m[1].tolist() == [0.0, 0.0, 0.0]
