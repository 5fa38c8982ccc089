"""The bundle contract: schema 2 round-trips, schema 1 is still read, and nonsense is refused."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runtime.manifest import BundleError, InputSpec, Manifest, PreprocessSpec, load_manifest
from runtime.policy import Policy, PolicyConfig

SCHEMA_1: dict[str, Any] = {
    "schema_version": 1, "converter_version": "0.1.0", "created_at": "2026-11-23T10:00:00+00:00",
    "model": {"name": "rc_pilot", "version": "3", "run_id": "r", "source_uri": "models:/m-1", "flavor": "keras"},
    "input": {"name": "image", "shape": [1, 120, 160, 3], "dtype": "float32", "layout": "NHWC",
              "preprocess": {"width": 160, "height": 120, "crop_top": 0, "color": "RGB", "scale": 0.00392156862745098,
                             "mean": [0, 0, 0], "std": [1, 1, 1], "model_rescales": False}},
    "outputs": [{"name": "steering", "shape": [1, 1], "meaning": "steering"},
                {"name": "throttle", "shape": [1, 1], "meaning": "throttle"}],
    "builds": [], "source": {}, "not_built": [],
}


def test_schema_1_bundle_is_read_as_one_image_input_and_scalar_outputs() -> None:
    m = Manifest.from_dict(copy.deepcopy(SCHEMA_1))
    assert [(i.name, i.role, i.layout) for i in m.inputs] == [("image", "image", "NHWC")]
    assert m.camera_input.name == "image" and m.preprocess.width == 160
    assert [o.decode for o in m.outputs] == [{"kind": "scalar"}] * 2
    again = Manifest.from_dict(json.loads(m.dumps()))
    assert again.to_dict() == m.to_dict() and again.schema_version == 2


def test_schema_1_categorical_output_is_refused_not_driven() -> None:
    """The safety defect of issue 9: a (1, 15) softmax must never be read as a steering scalar."""
    d: dict[str, Any] = copy.deepcopy(SCHEMA_1)
    d["outputs"][0] = {"name": "angle_out", "shape": [1, 15], "meaning": "steering"}
    with pytest.raises(BundleError, match=r"'angle_out' has shape \[1, 15\].*not a single value"):
        Manifest.from_dict(d)


def test_multi_input_round_trip_and_policy_decodes(tmp_path: Path) -> None:
    pre = PreprocessSpec(160, 120, color="GRAY")
    d: dict[str, Any] = copy.deepcopy(SCHEMA_1)
    del d["input"]
    d["schema_version"] = 2
    d["inputs"] = [
        InputSpec("img_in", (1, 3, 120, 160, 1), "float32", "NTHWC", pre, role="image_sequence", length=3).to_dict(),
        InputSpec("imu_in", (1, 6), "float32", "NC", role="imu", order=("ax", "ay", "az", "gx", "gy", "gz")).to_dict(),
        InputSpec("mem_in", (1, 4), "float32", "NC", role="memory", length=2).to_dict(),
        InputSpec("behavior_in", (1, 2), "float32", "NC", role="behavior", labels=("left", "right")).to_dict(),
    ]
    d["outputs"] = [{"name": "angle_out", "shape": [1, 15], "meaning": "steering",
                     "decode": {"kind": "bins", "range": [-1, 1]}},
                    {"name": "throttle_out", "shape": [1, 1], "meaning": "throttle"}]
    (tmp_path / "manifest.json").write_text(json.dumps(d))
    m = load_manifest(tmp_path)
    assert m.camera_input.name == "img_in" and [i.role for i in m.inputs][1:] == ["imu", "memory", "behavior"]
    policy = Policy.for_manifest(PolicyConfig(throttle_slew_rate=0), m)
    import numpy as np

    cmd = policy({"angle_out": np.eye(15, dtype=np.float32)[12:13], "throttle_out": np.array([[0.2]], np.float32)}, 0.0)
    assert cmd.steering == pytest.approx(12 * 2 / 14 - 1) and cmd.throttle == pytest.approx(0.2)


@pytest.mark.parametrize(("change", "match"), [
    (lambda i: i.update(role="lidar"), "unknown role 'lidar'"),
    (lambda i: i.update(layout="NCHW", shape=[1, 120, 160, 3]), "does not match its role"),
    (lambda i: i.update(shape=[1, 100, 160, 3]), "does not match its role"),
    (lambda i: i.update(shape=[2, 120, 160, 3]), "batch 1 first"),
    (lambda i: i.update(extra=1), "unknown keys"),
])
def test_bad_inputs_are_refused(change: Callable[[dict[str, Any]], None], match: str) -> None:
    d: dict[str, Any] = copy.deepcopy(SCHEMA_1)
    d["schema_version"] = 2
    d["inputs"] = [{**d.pop("input"), "role": "image"}]
    change(d["inputs"][0])
    with pytest.raises(BundleError, match=match):
        Manifest.from_dict(d)


def test_vector_roles_need_their_fields() -> None:
    with pytest.raises(BundleError, match="memory needs length"):
        InputSpec("m", (1, 4), "float32", "NC", role="memory")
    with pytest.raises(BundleError, match="behavior needs labels"):
        InputSpec("b", (1, 2), "float32", "NC", role="behavior")
    with pytest.raises(BundleError, match="does not match"):
        InputSpec("imu", (1, 5), "float32", "NC", role="imu")


def test_a_manifest_without_camera_or_with_two_steerings_is_refused() -> None:
    d: dict[str, Any] = copy.deepcopy(SCHEMA_1)
    d["outputs"][1]["meaning"] = "steering"
    with pytest.raises(BundleError, match="more than one output means steering"):
        Manifest.from_dict(d)
    d = copy.deepcopy(SCHEMA_1)
    d["schema_version"] = 2
    d["inputs"] = [{"name": "imu", "role": "imu", "shape": [1, 6], "layout": "NC"}]
    with pytest.raises(BundleError, match="no input has role image"):
        Manifest.from_dict(d)
