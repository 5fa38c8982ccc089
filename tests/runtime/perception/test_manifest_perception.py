"""Perception outputs in the manifest: schema 3 only when present, decoders' outputs listed, the task."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from runtime.manifest import BundleError, Manifest
from tests.runtime.test_manifest_validation import FULL

SEG = {"name": "out", "shape": [1, 2, 80, 160], "meaning": "segmentation",
       "decode": {"kind": "segmentation", "layout": "NCHW", "classes": ["off", "road"], "drivable": ["road"],
                  "activation": "logits"}}
DET = [{"name": "boxes", "shape": [1, -1, 4], "meaning": "detection",
        "decode": {"kind": "boxes", "scores": "scores", "labels": "labels", "box_format": "xyxy", "normalized": False,
                   "classes": ["background", "cone"], "score_threshold": 0.5, "iou_threshold": 0.45,
                   "input_size": [160, 80], "nms": "graph"}},
       {"name": "scores", "shape": [1, -1], "meaning": "other", "decode": {"kind": "scalar"}},
       {"name": "labels", "shape": [1, -1], "meaning": "other", "decode": {"kind": "scalar"}}]


def with_outputs(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    d = copy.deepcopy(FULL)
    d["outputs"] = outputs
    d["builds"] = []
    return d


def test_a_driving_bundle_is_still_written_as_schema_2() -> None:
    m = Manifest.from_dict(copy.deepcopy(FULL))
    assert m.task == "driving" and json.loads(m.dumps())["schema_version"] == 2


@pytest.mark.parametrize(("outputs", "task"), [([SEG], "segmentation"), (DET, "detection")])
def test_a_perception_bundle_is_schema_3_and_round_trips(outputs: list[dict[str, Any]], task: str) -> None:
    m = Manifest.from_dict(with_outputs(outputs))
    assert m.task == task and m.schema_version == 3
    text = m.dumps()
    assert json.loads(text)["schema_version"] == 3 and Manifest.from_dict(json.loads(text)).dumps() == text
    other = "detection" if task == "segmentation" else "segmentation"
    assert m.perception_decoder(task) is not None and m.perception_decoder(other) is None


def test_a_decoder_reading_an_unlisted_output_is_refused() -> None:
    with pytest.raises(BundleError, match=r"the detection decoder reads outputs \['labels'\], which are not in"):
        Manifest.from_dict(with_outputs(DET[:2]))


def test_a_map_given_as_steering_is_refused_on_load() -> None:
    bad = {**SEG, "meaning": "steering", "decode": {"kind": "component", "index": 0}}
    with pytest.raises(BundleError, match="looks like a segmentation map"):
        Manifest.from_dict(with_outputs([bad]))
