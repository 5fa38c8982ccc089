"""What INT8 costs a perception model, in task terms: mIoU / drivable IoU drop, F1 drop, missed per frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calibration.conversion import Int8Limits, LimitsError, int8_cost, over_limits
from tests.converter.parity.perception_models import (
    DETECTIONS,
    boxes_model,
    boxes_outputs,
    flips,
    frames,
    manifest,
    outputs_of,
    seg_model,
    seg_outputs,
)

N = 24  # held-out frames, over min_frames


def test_segmentation_cost_is_mIoU_and_drivable_IoU_not_the_logit_error(tmp_path: Path) -> None:
    m = manifest(seg_outputs())
    fp32 = outputs_of(seg_model(tmp_path), m, frames(N))
    int8 = outputs_of(seg_model(tmp_path, "int8", flips(0.05)), m, frames(N))
    cost = int8_cost(int8, fp32, {"out": "segmentation"}, m.outputs)
    json.dumps(cost)
    seg = cost["task"]["segmentation"]
    assert cost["task_outputs"] == ["out"] and cost["per_output"]["out"]["max_abs"] == pytest.approx(2.0, abs=1e-5)
    assert seg["pixel_acc_segmentation"] == pytest.approx(1 - round(0.05 * 768) / 768)
    reason = over_limits(cost, None)  # 5% of pixels, all at class boundaries: mIoU and drivable IoU drop
    assert reason is not None and reason.startswith(f"INT8 costs too much vs FP32 on {N} held-out frames: ")
    assert f"segmentation drivable IoU {seg['drivable_iou']:.4g} (drop " in reason
    assert "> max_drivable_iou_drop 0.05" in reason and "max abs error" not in reason  # the raw 2.0 is not judged
    loose = Int8Limits(max_miou_drop=0.5, max_drivable_iou_drop=0.5)
    assert over_limits(cost, loose) is None
    same = int8_cost(fp32, fp32, {"out": "segmentation"}, m.outputs)
    assert over_limits(same, None) is None and same["task"]["segmentation"]["miou_segmentation"] == 1.0


def test_detection_cost_is_F1_and_missed_per_frame(tmp_path: Path) -> None:
    m = manifest(boxes_outputs())
    fp32 = outputs_of(boxes_model(tmp_path), m, frames(N))
    int8 = outputs_of(boxes_model(tmp_path, "int8", DETECTIONS[1:]), m, frames(N))  # loses the 0.95 cone
    cost = int8_cost(int8, fp32, {"boxes": "detection", "scores": "other", "labels": "other"}, m.outputs)
    det = cost["task"]["detection"]
    assert det["missed"] == N and det["f1_50_detection"] == pytest.approx(8 / 9)
    reason = over_limits(cost, None)
    assert reason is not None
    assert "detection F1@0.5 0.8889 (drop 0.1111 > max_f1_drop 0.1)" in reason
    assert f"detection missed 1 per frame ({N} of {5 * N}) > max_missed_per_frame 0.1" in reason
    assert "labels" not in reason and "scores" not in reason  # raw slot errors are recorded, never judged
    assert over_limits(cost, Int8Limits(max_f1_drop=0.2, max_missed_per_frame=1.0)) is None


def test_driving_costs_are_unchanged_by_the_new_limits() -> None:
    import numpy as np

    want = {"steering": np.zeros((30, 1), np.float32)}
    cost = int8_cost({"steering": want["steering"] + 0.01}, want, {"steering": "steering"})
    assert "task" not in cost and over_limits(cost, Int8Limits(max_f1_drop=0.0, max_miou_drop=0.0)) is None


@pytest.mark.parametrize("kwargs", [{"max_miou_drop": 1.5}, {"max_f1_drop": -0.1},
                                    {"max_missed_per_frame": float("inf")}])
def test_bad_perception_limits_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(LimitsError, match="\\[int8\\] max_"):
        Int8Limits(**kwargs)
    with pytest.raises(TypeError):
        Int8Limits(max_map_drop=0.1)  # type: ignore[call-arg]  # unknown keys stay errors
