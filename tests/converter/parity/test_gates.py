"""The [parity] gates (per precision, per format), their one-line failures, and the figures' metric names."""

from __future__ import annotations

import pytest
from rich.console import Console

from converter.report import render_table, task_cell
from converter.summary import Outcome, Summary
from converter.task_parity import (
    DEFAULT_GATES,
    GateConfigError,
    TaskGates,
    TaskThresholds,
    task_failures,
    task_metrics,
)


def test_defaults_step_down_from_fp32_to_int8() -> None:
    fp32, fp16, int8 = (DEFAULT_GATES.for_format(f) for f in ("onnx", "tflite-fp16", "onnx-int8"))
    assert fp32.min_f1 == 1.0 and fp16.min_pixel_agreement == 0.99 and int8.min_miou == 0.9
    assert fp32.min_pixel_agreement > fp16.min_pixel_agreement > int8.min_pixel_agreement
    assert DEFAULT_GATES.level_of("trt-fp16") == "fp16" and DEFAULT_GATES.level_of("tflite-int8") == "int8"


def test_config_sets_every_level_a_precision_or_one_format() -> None:
    g = TaskGates.from_config({"score_margin": 0.1, "int8": {"min_miou": 0.8}, "onnx-int8": {"min_f1": 0.7}})
    assert all(g.for_format(f).score_margin == 0.1 for f in ("onnx", "onnx-fp16", "tflite-int8"))
    assert g.for_format("tflite-int8").min_miou == 0.8 and g.for_format("tflite-int8").min_f1 == 0.9
    assert g.for_format("onnx-int8").min_miou == 0.8 and g.for_format("onnx-int8").min_f1 == 0.7
    assert g.level_of("onnx-int8") == "onnx-int8" and g.level_of("tflite-int8") == "int8"
    assert TaskGates.from_config(None) == TaskGates.from_config({}) == DEFAULT_GATES


@pytest.mark.parametrize(("section", "message"), [
    ({"min_iou": 0.5}, r"config \[parity\]: unknown key\(s\) \['min_iou'\]; allowed: "),
    ({"fp16": {"min_f1": 0.9, "f1": 1}}, r"config \[parity.fp16\]: unknown key\(s\) \['f1'\]"),
    ({"int4": {"min_f1": 0.9}}, r"unknown level\(s\) \['int4'\]; use a precision \(fp32, fp16, int8\) or a format id"),
    ({"fp16": {"min_f1": 1.5}}, r"\[parity\] min_f1 must be a number in \[0, 1\], got 1.5"),
    ({"match_iou": 0}, r"match_iou must be > 0"),
    ({"min_miou": "high"}, r"min_miou must be a number"),
])
def test_bad_config_is_one_line_naming_the_key(section: dict[str, object], message: str) -> None:
    with pytest.raises(GateConfigError, match=message):
        TaskGates.from_config(section)
    assert issubclass(GateConfigError, TypeError)  # config callers turn TypeErrors into exit 2


def test_failures_name_figure_value_threshold_and_gate() -> None:
    figures = {"segmentation": {"pixel_acc_segmentation": 0.98, "miou_segmentation": float("nan"), "drivable_iou": 1.0,
                                "frames": 64}}
    lines = task_failures(figures, TaskThresholds(min_pixel_agreement=0.99), "fp16")
    assert lines == ["segmentation pixel agreement 0.98 < 0.99 (fp16 gate) vs the source on 64 frames",
                     "segmentation mIoU nan < 0.995 (fp16 gate) vs the source on 64 frames"]  # NaN never passes


def test_task_metrics_use_the_seed_names() -> None:
    task = {"segmentation": {"pixel_acc_segmentation": 0.99, "miou_segmentation": 0.95, "drivable_iou": 0.97,
                             "iou_per_class": {"road": 0.9, "lane line": 0.8}, "frames": 64},
            "detection": {"f1_50_detection": 0.9, "missed": 3, "margin": 0.05},
            "gate": {"level": "fp16"}, "failures": ["x"], "judged_outputs": []}
    m = task_metrics("onnx-fp16", task)
    assert m == {"onnx-fp16.pixel_acc_segmentation": 0.99, "onnx-fp16.miou_segmentation": 0.95,
                 "onnx-fp16.segmentation.drivable_iou": 0.97, "onnx-fp16.segmentation.iou.road": 0.9,
                 "onnx-fp16.segmentation.iou.lane line": 0.8, "onnx-fp16.segmentation.frames": 64.0,
                 "onnx-fp16.f1_50_detection": 0.9, "onnx-fp16.detection.missed": 3.0,
                 "onnx-fp16.detection.margin": 0.05}


def test_the_console_table_shows_agreement_only_for_perception_builds() -> None:
    seg = Summary("seg", "1", None, outcomes=[
        Outcome("onnx", "built", max_abs=1e-6, task={"miou": 0.9987, "pixel_acc": 0.9995, "drivable_iou": 0.999}),
        Outcome("onnx-fp16", "failed", reason="segmentation pixel agreement 0.96 < 0.99 (fp16 gate) ...",
                task={"miou": 0.93, "pixel_acc": 0.96, "drivable_iou": 0.95})])
    console = Console(width=200, record=True)
    render_table(seg, console)
    text = console.export_text()
    assert "vs source" in text and "mIoU 0.9987 drivable 0.9990 px 0.9995" in text and "pixel agreement 0.96" in text
    assert task_cell({"f1": 0.95, "box_iou": 0.91, "missed": 2, "extra": 0}) == "F1 0.9500 box IoU 0.9100 missed 2 extra 0"
    driving = Console(width=200, record=True)
    render_table(Summary("pilot", "1", None, outcomes=[Outcome("onnx", "built", max_abs=1e-6)]), driving)
    assert "vs source" not in driving.export_text()
