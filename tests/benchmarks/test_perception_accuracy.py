"""rc-benchmark's accuracy for perception bundles: mIoU / drivable IoU or F1 / box IoU vs the source,
measured through the runtime's backend on the reference frames, and shown in place of max error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from benchmarks.reference_data import ReferenceSet, accuracy
from benchmarks.report import COLUMNS, columns, markdown, render_table, row, task_of
from runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
from tests.converter.parity.perception_models import (
    DETECTIONS,
    boxes_model,
    boxes_outputs,
    entry,
    flips,
    frames,
    manifest,
    outputs_of,
    seg_model,
    seg_outputs,
)

N = 6


def _accuracy(tmp: Path, source: Path, build: Path, outputs: list[Any]) -> dict[str, Any]:
    m = manifest(outputs)
    x = frames(N)
    ref = ReferenceSet({"image": x}, outputs_of(source, m, x), "noise")
    with OnnxRuntimeBackend(build, entry(build, m), m) as backend:
        return accuracy(backend, ref)


def _results(builds: list[dict[str, Any]]) -> dict[str, Any]:
    return {"model": {"name": "perception", "version": "1", "run_id": None},
            "machine": {"hostname": "here", "cpu_model": "cpu", "logical_cores": 2, "id": "x"},
            "settings": {"repeats": 1, "warmup": 1, "min_count": 1, "min_time_s": 0, "loop": {}},
            "bundle": {"path": "b", "sha256": "0" * 64}, "toolchain": {}, "created_at": "now", "builds": builds}


def _build(fmt: str, acc: dict[str, Any]) -> dict[str, Any]:
    lat = dict.fromkeys(("min", "mean", "p50", "p90", "p99", "max"), 1.0)
    return {"format": fmt, "status": "ok", "size_mb": 0.01, "latency_ms": lat,
            "latency_ms_per_repeat": {"p50": [1.0], "p99": [1.0]}, "fps": 1000.0, "accuracy": acc}


def test_segmentation_builds_show_miou_and_drivable_iou(tmp_path: Path) -> None:
    src = seg_model(tmp_path)
    same = _accuracy(tmp_path, src, src, seg_outputs())
    worse = _accuracy(tmp_path, src, seg_model(tmp_path, "worse", flips(0.05)), seg_outputs())
    assert same["task"]["segmentation"]["miou_segmentation"] == 1.0
    seg = worse["task"]["segmentation"]
    assert seg["pixel_acc_segmentation"] < 0.96 and worse["max_abs"] > 1.0  # raw figures are still there
    results = _results([_build("onnx", same), _build("onnx-int8", worse)])
    assert task_of(results) == "segmentation"
    assert columns("segmentation")[3:5] == ("mIoU", "drivable IoU") and "error" not in columns("segmentation")
    cells = row(results["builds"][1], "segmentation")
    assert cells[3:5] == [f"{seg['miou_segmentation']:.4f}", f"{seg['drivable_iou']:.4f}"]
    console = Console(width=220, record=True)
    render_table(results, console)
    text = console.export_text()
    assert "mIoU" in text and "mIoU / drivable IoU of the class maps vs the source model on 6 reference frames" in text
    md = markdown(results, plot_file=None)
    assert "| format | status | size MB | mIoU | drivable IoU |" in md and "## Task agreement with the source" in md


def test_detection_builds_show_f1_and_box_iou(tmp_path: Path) -> None:
    src = boxes_model(tmp_path)
    dropped = _accuracy(tmp_path, src, boxes_model(tmp_path, "dropped", DETECTIONS[1:]), boxes_outputs())
    det = dropped["task"]["detection"]
    assert det["missed"] == N and det["f1_50_detection"] < 0.9
    results = _results([_build("onnx-fp16", dropped)])
    assert task_of(results) == "detection"
    assert row(results["builds"][0], "detection")[3:5] == [f"{det['f1_50_detection']:.4f}", "1.0000"]
    assert "| F1@0.5 | box IoU |" in markdown(results, plot_file=None)


def test_a_driving_bundle_keeps_its_columns() -> None:
    acc = {"samples": 4, "max_abs": 1e-5, "mean_abs": 1e-6, "per_output": {"steering": {"max_abs": 1e-5, "mean_abs": 1e-6}}}
    results = _results([_build("onnx", acc)])
    assert task_of(results) is None and columns(None) == COLUMNS
    assert row(results["builds"][0]) == row(results["builds"][0], None) and row(results["builds"][0])[3] == "1.0e-05"
