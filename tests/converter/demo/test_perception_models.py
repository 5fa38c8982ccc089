"""The seed team's perception models: torchvision's output shapes, and quick training that really learns."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from converter.demo import detector, perception_data, segmenter  # noqa: E402
from converter.demo.track import random_appearance  # noqa: E402


def test_segmenter_returns_torchvision_out_logits_at_the_input_size() -> None:
    model = segmenter.build_segmenter(8).eval()
    x = torch.from_numpy(segmenter.nchw_batch(perception_data.segmentation_samples(2, seed=0)[0]))
    assert tuple(x.shape) == (2, 3, 72, 96)
    with torch.no_grad():
        out = model(x)
    assert list(out) == ["out"] and tuple(out["out"].shape) == (2, 2, 72, 96)


def test_segmentation_scores_on_hand_made_maps() -> None:
    truth = np.array([[0, 0, 1, 1]])
    scores = segmenter.segmentation_scores(np.array([[0, 1, 1, 1]]), truth)
    assert scores["pixel_acc"] == 0.75
    assert scores["iou_background"] == 0.5 and scores["iou_road"] == pytest.approx(2 / 3)
    assert scores["miou"] == pytest.approx((0.5 + 2 / 3) / 2)


def test_detector_is_torchvision_shaped_in_eval_and_raw_in_train() -> None:
    model = detector.build_detector(8)
    x = torch.zeros(2, 3, 120, 160)
    raw = model.train()(x)
    assert {k: tuple(v.shape) for k, v in raw.items()} == {"heatmap": (2, 1, 15, 20), "size": (2, 2, 15, 20),
                                                           "offset": (2, 2, 15, 20)}
    model.eval().score_threshold = 0.0  # keep every peak: the output's form is under test
    with torch.no_grad():
        out = model(x)
    assert isinstance(out, list) and len(out) == 2
    for d in out:
        assert set(d) == {"boxes", "scores", "labels"}
        n = len(d["scores"])
        assert 0 < n <= model.max_detections and tuple(d["boxes"].shape) == (n, 4)
        assert d["labels"].dtype == torch.int64 and (d["labels"] == 1).all()  # 0 is background
        assert (d["boxes"][:, 2] >= d["boxes"][:, 0]).all() and (d["boxes"] >= 0).all()


def test_detection_scores_count_matches_misses_and_false_alarms() -> None:
    truth = np.array([[10, 10, 20, 30], [50, 50, 60, 60], [np.nan] * 4, [np.nan] * 4], np.float32)
    dets = [np.array([[11, 10, 20, 30], [70, 70, 80, 80]], np.float32),  # hit + extra
            np.array([[55, 55, 65, 65]], np.float32),  # IoU 25/175: a miss and a false positive
            np.zeros((0, 4), np.float32), np.array([[0, 0, 5, 5]], np.float32)]  # quiet, false alarm
    s = detector.detection_scores(dets, truth)
    assert (s["tp"], s["fp"], s["fn"]) == (1, 3, 1)
    assert s["precision"] == 0.25 and s["recall"] == 0.5 and s["fp_rate_empty"] == 0.5


def test_head_targets_put_the_cone_in_its_cell() -> None:
    heat, cell, reg = detector.head_targets(np.array([[36, 20, 44, 36], [np.nan] * 4], np.float32), 160, 120)
    assert cell.tolist() == [3 * 20 + 5, -1]  # centre (40, 28) px: column 5, row 3 of 8-px cells
    assert heat[0, 0, 3, 5] == 1.0 and heat[1].max() == 0.0
    np.testing.assert_allclose(reg[0], [np.log(1.0), np.log(2.0), 0.0, 0.5], atol=1e-6)


@pytest.mark.slow
def test_quick_segmenter_learns_the_road_on_held_out_frames() -> None:
    run = segmenter.train_segmenter(quick=True, seed=0)
    assert len(run.history) == run.config.epochs
    assert run.metrics["miou"] >= 0.85 and run.metrics["pixel_acc"] >= 0.92, run.metrics  # quick: 0.89 / 0.944
    assert run.history[-1]["val_loss"] < run.history[0]["val_loss"]
    frames, masks = perception_data.segmentation_samples(24, seed=777, mask_size=(96, 72))  # a third seed
    assert segmenter.segmentation_scores(segmenter.predict_labels(run.model, frames), masks.astype(int))["miou"] >= 0.85


@pytest.mark.slow
def test_quick_detector_finds_the_cone_in_the_path_and_not_on_the_empty_road() -> None:
    run = detector.train_detector(quick=True, seed=0)
    m = run.metrics
    assert m["f1"] >= 0.7 and m["fp_rate_empty"] <= 0.1, m  # quick: F1 0.81-0.89, no false alarm
    rng = np.random.default_rng(5)
    found, quiet = 0, 0
    for z, k in ((0.8, 0.0), (1.0, 0.3), (1.2, -0.3), (1.5, 0.0)):
        cone = perception_data.cone_on_road(k, 0.0, 0.0, z)
        scene = perception_data.render_scene(k, 0.0, 0.0, rng, cone=cone)
        empty = perception_data.render_scene(k, 0.0, 0.0, rng)
        boxes = detector.predict_boxes(run.model, np.stack([scene.frame, empty.frame]))
        assert scene.box is not None
        # Where it is, not how tightly: the quick model's boxes overlap the truth by 0.3-0.8.
        found += int(any(detector._iou(b, scene.box) >= 0.3 for b in boxes[0]))
        quiet += int(len(boxes[1]) == 0)
    assert found == 4 and quiet == 4, (found, quiet)


def test_random_looks_differ_so_the_models_cannot_learn_pixels() -> None:
    rng = np.random.default_rng(0)
    assert len({random_appearance(rng).road for _ in range(5)}) == 5
