"""Segmentation builds are judged by their class maps against the source's, not by raw logit error."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from converter.parity import compare
from converter.task_parity import DEFAULT_GATES
from tests.converter.parity.perception_models import (
    H,
    W,
    flips,
    frames,
    manifest,
    outputs_of,
    seg_layout,
    seg_model,
    seg_outputs,
)

N = 6


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    tmp = tmp_path_factory.mktemp("seg")
    path = seg_model(tmp)
    return tmp, outputs_of(path, manifest(seg_outputs()), frames(N))


def test_an_identical_build_agrees_everywhere_and_passes_the_fp32_gate(source: tuple[Path, dict[str, np.ndarray]]) -> None:
    tmp, want = source
    m = manifest(seg_outputs())
    got = outputs_of(seg_model(tmp, "same"), m, frames(N))
    r = compare(got, want, 1e-4, m.outputs, DEFAULT_GATES.for_format("onnx"), "fp32")
    assert r.ok and r.task is not None
    seg = r.task["segmentation"]
    assert seg["pixel_acc_segmentation"] == seg["miou_segmentation"] == seg["drivable_iou"] == 1.0
    assert seg["frames"] == N and seg["pixels"] == N * H * W
    assert r.judged == ()  # the map is judged by what it means, not by its raw error


@pytest.mark.parametrize("share", [0.002, 0.05, 0.15])
def test_flipping_k_percent_of_the_boundary_pixels_measures_1_minus_k(
        source: tuple[Path, dict[str, np.ndarray]], share: float) -> None:
    tmp, want = source
    m = manifest(seg_outputs())
    flip = flips(share)
    got = outputs_of(seg_model(tmp, f"flip{share}", flip), m, frames(N))
    r = compare(got, want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16")
    seg = r.task["segmentation"]  # type: ignore[index]
    assert seg["pixel_acc_segmentation"] == pytest.approx(1 - len(flip) / (H * W), abs=1e-9)
    assert seg["pixel_acc_segmentation"] == pytest.approx(1 - share, abs=0.002)
    # the drivable IoU counts only the pixels that enter or leave road
    lab = seg_layout()
    road_in = sum(1 for (r_, c), k in flip.items() if k == 1 and lab[r_, c] != 1)
    road_out = sum(1 for (r_, c), k in flip.items() if k != 1 and lab[r_, c] == 1)
    road = int((lab == 1).sum())
    assert seg["drivable_iou"] == pytest.approx((road - road_out) / (road + road_in))
    # the raw logit error is 2.0 (a flipped pixel: 0 -> 2), far over the FP16 tolerance, but it is not what decides
    assert r.per_output["out"]["max_abs"] == pytest.approx(2.0, abs=1e-5)
    assert r.ok is (share < 0.01)  # the fp16 gate: pixel agreement >= 0.99 (mIoU >= 0.97, drivable >= 0.98)
    if not r.ok:
        line = r.failure()
        assert line.startswith(f"segmentation pixel agreement {seg['pixel_acc_segmentation']:.4g} < 0.99 (fp16 gate)")
        assert "\n" not in line and f"on {N} frames" in line


def test_the_int8_gate_is_lower_and_configurable(source: tuple[Path, dict[str, np.ndarray]]) -> None:
    from converter.task_parity import TaskGates

    tmp, want = source
    m = manifest(seg_outputs())
    got = outputs_of(seg_model(tmp, "flip2", flips(0.02)), m, frames(N))
    assert compare(got, want, 0.25, m.outputs, DEFAULT_GATES.for_format("onnx-int8"), "int8").ok
    strict = TaskGates.from_config({"int8": {"min_pixel_agreement": 0.99}})
    r = compare(got, want, 0.25, m.outputs, strict.for_format("onnx-int8"), strict.level_of("onnx-int8"))
    assert not r.ok and "pixel agreement 0.9805 < 0.99 (int8 gate)" in r.failure()


def test_the_manifest_entry_keeps_the_old_keys_and_adds_task(source: tuple[Path, dict[str, np.ndarray]]) -> None:
    tmp, want = source
    m = manifest(seg_outputs())
    got = outputs_of(seg_model(tmp, "flip1", flips(0.002)), m, frames(N))
    d = compare(got, want, 1e-2, m.outputs, DEFAULT_GATES.for_format("onnx-fp16"), "fp16").to_dict()
    assert {"max_abs", "mean_abs", "samples", "tolerance", "per_output", "task"} <= set(d)
    task = json.loads(json.dumps(d["task"]))  # JSON-able, as manifest.json stores it
    assert set(task) == {"segmentation", "gate", "failures", "judged_outputs"}
    assert task["gate"]["level"] == "fp16" and task["gate"]["min_pixel_agreement"] == 0.99
    assert task["failures"] == [] and task["judged_outputs"] == []
    assert set(task["segmentation"]["iou_per_class"]) == {"background", "road", "line"}


def test_a_nan_in_the_map_fails_whatever_the_classes_say(source: tuple[Path, dict[str, np.ndarray]]) -> None:
    _, want = source
    m = manifest(seg_outputs())
    got = {"out": want["out"].copy()}
    got["out"][2, 5] = np.nan
    r = compare(got, want, 1e-2, m.outputs)
    assert not r.ok and r.failure() == "output 'out' is not finite (NaN or inf) on some reference frames"
