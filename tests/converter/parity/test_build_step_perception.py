"""The build step on perception bundles, real parts only: the bundle's FP32 ONNX (a segmentation map,
a padded detector) made into ``onnx-fp16`` by the real converter and into ``onnx-int8`` by ONNX
Runtime's static quantization on calibration frames, each verified by what the task means, the
figures recorded in its manifest entry, the INT8 cost in the same terms."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from calibration.conversion import CalibrationData
from converter.build_step import BuildInputs, build_format
from converter.pipeline import ConvertRequest
from converter.reference import Reference
from converter.task_parity import TaskGates
from runtime.manifest import Manifest
from tests.converter.parity.perception_models import (
    H,
    W,
    boxes_model,
    boxes_outputs,
    entry,
    manifest,
    outputs_of,
    seg_model,
    seg_outputs,
)


def _inputs(tmp: Path, model: Path, m: Manifest, gates: TaskGates | None = None) -> BuildInputs:
    staging = tmp / "staging"
    staging.mkdir()
    shutil.copy(model, staging / "model.onnx")
    m.builds.append(entry(staging / "model.onnx", m))
    rng = np.random.default_rng(0)
    ref_frames = rng.integers(0, 256, (8, H, W, 3), dtype=np.uint8)
    ref = Reference(ref_frames, {}, "noise")
    ref.outputs = outputs_of(staging / "model.onnx", m, ref.inputs(m)["image"])
    pre = m.preprocess
    from runtime.preprocess import preprocess_batch

    calib = preprocess_batch(rng.integers(0, 256, (16, H, W, 3), dtype=np.uint8), pre)
    held = preprocess_batch(rng.integers(0, 256, (24, H, W, 3), dtype=np.uint8), pre)
    data = CalibrationData(tmp, "0" * 64, calib, held, {"image": calib}, {"image": held})
    req = ConvertRequest(formats=["onnx-fp16", "onnx-int8"], explicit_formats=True, task_gates=gates)
    return BuildInputs(staging, m, None, None, ref, req, calibration=data)


@pytest.mark.parametrize("kind", ["segmentation", "detection"])
def test_fp16_and_int8_builds_are_verified_by_task_figures(tmp_path: Path, kind: str) -> None:
    if kind == "segmentation":
        m, model = manifest(seg_outputs()), seg_model(tmp_path)
    else:
        # float class ids: onnx-int8 refuses integer outputs today (converter.builders.onnx_int8)
        m, model = manifest(boxes_outputs()), boxes_model(tmp_path, int_labels=False)
    bi = _inputs(tmp_path, model, m)
    for fid in ("onnx-fp16", "onnx-int8"):
        out = build_format(fid, bi)
        assert out.status == "built", out.reason
        assert out.task is not None
        b = m.build(fid)
        task: dict[str, Any] = b.parity["task"]
        assert {"max_abs", "mean_abs", "samples", "per_output"} <= set(b.parity)  # the old keys stay
        assert task["gate"]["level"] == ("fp16" if fid == "onnx-fp16" else "int8") and task["failures"] == []
        if kind == "segmentation":
            assert task["segmentation"]["pixel_acc_segmentation"] == 1.0 and out.task["miou"] == 1.0
        else:
            assert task["detection"]["f1_50_detection"] == 1.0 and task["detection"]["matched"] == 5 * 8
            assert out.task["missed"] == 0
    cost = m.build("onnx-int8").extra["int8_cost"]
    assert cost["frames"] == 24 and kind in cost["task"]
    assert set(cost["task_outputs"]) == ({"out"} if kind == "segmentation" else {"boxes", "scores", "labels"})


def test_a_gate_the_build_cannot_meet_fails_it_with_the_figure_named(tmp_path: Path) -> None:
    m = manifest(boxes_outputs())
    gates = TaskGates.from_config({"onnx-int8": {"min_mean_iou": 1.0}})
    bi = _inputs(tmp_path, boxes_model(tmp_path, int_labels=False), m, gates)
    out = build_format("onnx-int8", bi)  # INT8 boxes are off by up to half a quantization step
    assert out.status == "failed" and not m.has("onnx-int8")
    assert out.reason is not None and out.reason.startswith("detection matched box IoU 0.9")
    assert "< 1 (onnx-int8 gate) vs the source on 8 frames (40 of 40 matched, 0 missed, 0 extra)" in out.reason
    assert "\n" not in out.reason
    assert not (bi.staging / "model_int8.qdq.onnx").exists()  # nothing half-written
