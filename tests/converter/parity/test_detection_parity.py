"""Detection builds are judged by their detections matched to the source's, not slot by slot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from converter.parity import compare
from converter.task_parity import DEFAULT_GATES
from tests.converter.parity.perception_models import (
    DETECTIONS,
    YOLO_OBJECTS,
    boxes_model,
    boxes_outputs,
    frames,
    manifest,
    outputs_of,
    yolo_model,
    yolo_outputs,
)

N = 5


@pytest.fixture(scope="module")
def tmp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("det")


@pytest.fixture(scope="module")
def want(tmp: Path) -> dict[str, np.ndarray]:
    return outputs_of(boxes_model(tmp), manifest(boxes_outputs()), frames(N))


def _det(tmp: Path, name: str, dets: list[tuple[tuple[float, float, float, float], float, int]]) -> dict[str, np.ndarray]:
    return outputs_of(boxes_model(tmp, name, dets), manifest(boxes_outputs()), frames(N))


def test_the_same_detections_in_another_slot_order_are_all_matched(tmp: Path, want: dict[str, np.ndarray]) -> None:
    m = manifest(boxes_outputs())
    got = _det(tmp, "reordered", list(reversed(DETECTIONS)))
    r = compare(got, want, 1e-4, m.outputs, DEFAULT_GATES.for_format("onnx"), "fp32")
    det = r.task["detection"]  # type: ignore[index]
    assert r.ok, r.failure()
    assert det["matched"] == det["source_detections"] == 5 * N and det["mean_iou"] == pytest.approx(1.0)
    assert det["f1_50_detection"] == det["precision_50_detection"] == det["recall_50_detection"] == 1.0
    assert r.per_output["boxes"]["max_abs"] > 1.0  # slot by slot the padded lists differ wildly: not judged
    assert set(r.judged or ()) == set()  # boxes, scores and labels are all the detector's


def test_shifted_boxes_lower_the_matched_iou(tmp: Path, want: dict[str, np.ndarray]) -> None:
    m = manifest(boxes_outputs())
    shifted = [((b[0] + 1, b[1], b[2] + 1, b[3]), s, c) for b, s, c in DETECTIONS]  # 1 px right
    got = _det(tmp, "shifted", shifted)
    r = compare(got, want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    det = r.task["detection"]  # type: ignore[index]
    # IoU of a w x h box with itself moved by 1 px in x: (w - 1) / (w + 1)
    ious = [(b[2] - b[0] - 1) / (b[2] - b[0] + 1) for b, _, _ in DETECTIONS]
    assert det["mean_iou"] == pytest.approx(np.mean(ious), abs=1e-3)  # float32 boxes, one clipped at the edge
    assert det["min_iou"] == pytest.approx(min(ious), abs=1e-3)
    assert det["f1_50_detection"] == 1.0  # every box still matches at IoU >= 0.5
    assert not r.ok
    assert r.failure().startswith(f"detection matched box IoU {det['mean_iou']:.4g} < 0.95 (fp16 gate)")


def test_dropped_detections_are_missed_and_cost_recall(tmp: Path, want: dict[str, np.ndarray]) -> None:
    m = manifest(boxes_outputs())
    got = _det(tmp, "dropped", DETECTIONS[1:])  # the 0.95 cone is gone
    r = compare(got, want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    det = r.task["detection"]  # type: ignore[index]
    assert det["missed"] == N and det["extra"] == 0 and det["missed_per_frame"] == 1.0 and det["missed_max_frame"] == 1
    assert det["recall_50_detection"] == pytest.approx(4 / 5) and det["precision_50_detection"] == 1.0
    assert det["f1_50_detection"] == pytest.approx(2 * 0.8 / 1.8)
    assert not r.ok
    assert "detection F1@0.5 0.8889 < 0.95 (fp16 gate) vs the source on 5 frames (20 of 25 matched, 5 missed, " \
           "0 extra)" in r.failure()


def test_a_detection_near_the_threshold_that_drops_out_is_borderline_not_missed(
        tmp: Path, want: dict[str, np.ndarray]) -> None:
    m = manifest(boxes_outputs())
    dets = [*DETECTIONS[:4], (DETECTIONS[4][0], 0.49, DETECTIONS[4][2])]  # 0.53 -> 0.49: below 0.5
    r = compare(_det(tmp, "border", dets), want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    det = r.task["detection"]  # type: ignore[index]
    assert det["missed"] == 0 and det["borderline_missed"] == N and det["f1_50_detection"] == 1.0
    assert det["matched_share"] == pytest.approx(4 / 5)
    assert r.ok  # score error of the matches is 0; a 0.04 change at the threshold is not a lost object


def test_score_noise_is_measured_on_the_matches(tmp: Path, want: dict[str, np.ndarray]) -> None:
    m = manifest(boxes_outputs())
    noise = [0.02, -0.03, 0.01, -0.08, 0.0]
    got = _det(tmp, "noisy", [(b, s + e, c) for (b, s, c), e in zip(DETECTIONS, noise, strict=True)])
    r = compare(got, want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    det = r.task["detection"]  # type: ignore[index]
    assert det["score_max_abs"] == pytest.approx(0.08, abs=1e-6)
    assert det["score_mean_abs"] == pytest.approx(np.mean(np.abs(noise)), abs=1e-6)
    assert not r.ok and r.failure().startswith("detection score error 0.08 > 0.05 (fp16 gate)")
    assert compare(got, want, 0.25, m.outputs, DEFAULT_GATES.for_format("onnx-int8"), "int8").ok


def test_an_extra_confident_detection_costs_precision(tmp: Path, want: dict[str, np.ndarray]) -> None:
    m = manifest(boxes_outputs())
    got = _det(tmp, "extra", [*DETECTIONS, ((25, 1, 31, 6), 0.9, 2)])
    r = compare(got, want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx"), "fp32")
    det = r.task["detection"]  # type: ignore[index]
    assert det["extra"] == N and det["precision_50_detection"] == pytest.approx(5 / 6) and not r.ok
    assert "fp32 gate" in r.failure()


@pytest.fixture(scope="module")
def yolo_want(tmp: Path) -> dict[str, np.ndarray]:
    return outputs_of(yolo_model(tmp), manifest(yolo_outputs()), frames(N))


def test_a_yolo_head_is_compared_after_nms(tmp: Path, yolo_want: dict[str, np.ndarray]) -> None:
    m = manifest(yolo_outputs())
    same = outputs_of(yolo_model(tmp, "yolo_same"), m, frames(N))
    r = compare(same, yolo_want, 1e-4, m.outputs)
    det = r.task["detection"]  # type: ignore[index]
    assert r.ok and det["source_detections"] == len(YOLO_OBJECTS) * N  # 3 candidates each, NMS keeps one
    # score noise on the candidates: NMS may keep another of an object's candidates, boxes still match
    noisy = outputs_of(yolo_model(tmp, "yolo_noisy", score_noise=0.04), m, frames(N))
    r = compare(noisy, yolo_want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    det = r.task["detection"]  # type: ignore[index]
    assert det["f1_50_detection"] == 1.0 and det["mean_iou"] > 0.8
    # an object lost
    lost = outputs_of(yolo_model(tmp, "yolo_lost", YOLO_OBJECTS[:2]), m, frames(N))
    r = compare(lost, yolo_want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    assert r.task["detection"]["missed"] == N and not r.ok  # type: ignore[index]


def test_a_driving_bundle_is_judged_as_before() -> None:
    from runtime.manifest import OutputSpec

    want = {"steering": np.array([[0.0], [1.0]]), "throttle": np.array([[0.5], [0.5]])}
    got = {"steering": np.array([[0.25], [1.0]]), "throttle": np.array([[0.5], [0.5]])}
    outputs = [OutputSpec("steering", (1, 1), "steering"), OutputSpec("throttle", (1, 1), "throttle")]
    r = compare(got, want, 0.5, outputs, DEFAULT_GATES.for_format("onnx-int8"), "int8")
    assert r.ok and r.task is None and r.judged is None and "task" not in r.to_dict()
    assert not compare(got, want, 0.1, outputs).ok
    assert compare(got, want, 0.1, outputs).failure() == "max abs error 0.25 on 'steering' exceeds tolerance 0.1"


def test_a_source_that_detects_nothing_passes_vacuously_and_says_so(tmp: Path, caplog: pytest.LogCaptureFixture) -> None:
    m = manifest(boxes_outputs())
    empty = _det(tmp, "empty", [])
    with caplog.at_level("WARNING", logger="converter.parity"):
        r = compare(empty, empty, 1e-4, m.outputs)
    assert r.ok and r.task["detection"]["source_detections"] == 0  # type: ignore[index]
    assert "detection parity says nothing: the source model detected nothing above score 0.5 on the 5" in caplog.text
