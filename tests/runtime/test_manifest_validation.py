"""The manifest's validation, field by field: each limit on both sides of its boundary, each default,
every field through a round trip, and the exact wording of the errors a user acts on (they name the
field and the fix). Fast: no model, no conversion; files only where the check is about files."""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import pytest

from runtime.manifest import (
    BuildEntry,
    BundleError,
    InputSpec,
    IntegrityError,
    Manifest,
    ModelInfo,
    OutputSpec,
    PreprocessSpec,
    load_manifest,
    sha256_file,
    verified_path,
)

PRE = {"width": 160, "height": 120, "crop_top": 40, "color": "BGR", "scale": 1.0, "mean": [0.5, 0.25, 0.125],
       "std": [2.0, 4.0, 8.0], "model_rescales": True}  # no field at its default
BUILD = {"format": "onnx", "precision": "fp32", "file": "model.onnx", "sha256": "ab" * 32, "bytes": 1234,
         "io": {"img_in": {"name": "input_1", "dtype": "int8", "scale": 0.5, "zero_point": -3},
                "angle": {"name": "out_0", "dtype": "float32"}},
         "parity": {"max_abs": 1e-6}, "toolchain": {"onnx": "1.17"}, "target": {"sm": "87"},
         "extra": {"note": "x"}}
FULL: dict[str, Any] = {  # what to_dict writes, every field set
    "schema_version": 2, "converter_version": "0.4.0", "created_at": "2026-11-30T12:00:00+00:00",
    "model": {"name": "rc_pilot", "version": "3", "run_id": "r", "source_uri": "models:/m-1", "flavor": "keras"},
    "inputs": [
        {"name": "img_in", "role": "image_sequence", "shape": [1, 3, 80, 160, 3], "dtype": "uint8",
         "layout": "NTHWC", "preprocess": PRE, "length": 3},
        {"name": "imu_in", "role": "imu", "shape": [1, 2], "dtype": "float32", "layout": "NC", "order": ["gz", "ax"]},
        {"name": "behavior_in", "role": "behavior", "shape": [1, 2], "dtype": "float32", "layout": "NC",
         "labels": ["left", "right"]},
    ],
    "outputs": [{"name": "angle", "shape": [1, 1], "meaning": "steering", "decode": {"kind": "scalar"}},
                {"name": "aux", "shape": [1, 15], "meaning": "other", "decode": {"kind": "scalar"}}],
    "builds": [BUILD], "source": {"key": "k1"}, "not_built": [{"format": "tensorrt-fp16", "status": "skipped",
                                                              "reason": "no GPU"}],
}


def refused(exact: str) -> Any:
    """``pytest.raises`` for a BundleError whose whole message is ``exact``."""
    return pytest.raises(BundleError, match="^" + re.escape(exact) + "$")


def pre(**changes: Any) -> PreprocessSpec:
    return PreprocessSpec.from_dict({**PRE, **changes})


# --- PreprocessSpec ------------------------------------------------------------------------------

def test_preprocess_limits_on_both_sides() -> None:
    assert pre(width=1, height=1, crop_top=0).input_hw == (1, 1)  # the smallest frame
    assert pre(height=41, crop_top=40).input_hw == (1, 160)  # crop_top up to height - 1
    with refused("preprocess: width and height must be positive, got 0x120"):
        pre(width=0)
    with refused("preprocess: width and height must be positive, got 160x0"):
        pre(height=0, crop_top=0)
    with refused("preprocess: crop_top=120 must be in [0, height=120)"):
        pre(crop_top=120)
    with refused("preprocess: crop_top=-1 must be in [0, height=120)"):
        pre(crop_top=-1)
    with refused("preprocess: color must be one of RGB, BGR, GRAY, got 'YUV'"):
        pre(color="yuv")


@pytest.mark.parametrize("bad", [
    {"mean": (0.0, 0.0)}, {"std": (1.0, 1.0)}, {"std": (1.0, 0.0, 1.0)},
])
def test_mean_and_std_need_three_values_and_no_zero_std(bad: dict[str, Any]) -> None:
    with refused("preprocess: mean and std need 3 values each and std must not be 0"):
        PreprocessSpec(160, 120, **bad)


def test_preprocess_round_trip_and_defaults() -> None:
    assert pre().to_dict() == PRE  # every field read, none left at its default
    assert pre(color="gray").color == "GRAY" and pre(color="gray").channels == 1
    d = PreprocessSpec.from_dict({"width": 160, "height": 120})
    assert (d.crop_top, d.color, d.scale, d.mean, d.std, d.model_rescales) == (
        0, "RGB", 1.0 / 255.0, (0.0, 0.0, 0.0), (1.0, 1.0, 1.0), False)
    assert pre(mean=0.5, std=2).mean == (0.5, 0.5, 0.5) and pre(std=2).std == (2.0, 2.0, 2.0)  # one value for all


def test_preprocess_errors_name_the_key() -> None:
    with refused("preprocess: unknown keys ['gamma', 'size']"):
        pre(size=1, gamma=2)
    with refused("preprocess: missing key 'width'"):
        PreprocessSpec.from_dict({"height": 120})
    with refused("preprocess: expected 3 channel values, got [1.0, 2.0]"):
        pre(mean=[1, 2])


# --- InputSpec -----------------------------------------------------------------------------------

def image(**changes: Any) -> InputSpec:
    d = {"name": "img", "role": "image", "shape": [1, 80, 160, 3], "layout": "NHWC", "preprocess": PRE, **changes}
    return InputSpec.from_dict(d)


def test_input_errors_name_the_input_and_the_fix() -> None:
    with refused("input 'img': unknown role 'lidar'; roles are image, image_sequence, memory, imu, behavior, wheel_speed"):
        image(role="lidar")
    with refused("input 'img': layout 'NC' is not one of ('NHWC', 'NCHW') for role image"):
        image(layout="NC")
    with refused("input 'img': shape [1, 80, 160, 4] does not match its role image ([1, 80, 160, 3])"):
        image(shape=[1, 80, 160, 4])
    with refused("input 'img': role image needs a preprocess section"):
        image(preprocess=None)
    with refused("input 'img': role image_sequence needs a fixed length >= 1"):
        image(role="image_sequence", layout="NTHWC", shape=[1, 1, 80, 160, 3])
    with refused("input 'img': role image_sequence needs a fixed length >= 1"):
        image(role="image_sequence", layout="NTHWC", shape=[1, 1, 80, 160, 3], length=0)
    with refused("input 'm': role memory needs length >= 1 (commands remembered)"):
        InputSpec("m", (1, 2), "float32", "NC", role="memory", length=0)
    with refused("input 'm': role memory needs length >= 1 (commands remembered)"):
        InputSpec("m", (1, 2), "float32", "NC", role="memory")


@pytest.mark.parametrize("shape", [[1, 0, 160, 3], [1, -80, 160, 3], [1, 80, 160, 0], [2, 80, 160, 3],
                                   [-2, 80, 160, 3], []])
def test_shape_must_be_fixed_positive_with_batch_one(shape: list[int]) -> None:
    with refused(f"input 'img': shape {shape} must be fixed and positive, with batch 1 first"):
        image(shape=shape)


def test_a_dynamic_batch_is_accepted() -> None:
    assert image(shape=[-1, 80, 160, 3]).shape == (-1, 80, 160, 3)


def test_expected_shape_per_role_with_batch_one() -> None:
    p = pre()
    assert image().expected_shape() == (1, 80, 160, 3)
    assert image(layout="NCHW", shape=[1, 3, 80, 160]).expected_shape() == (1, 3, 80, 160)
    seq = InputSpec("s", (1, 1, 80, 160, 3), "float32", "NTHWC", p, role="image_sequence", length=1)
    assert seq.expected_shape() == (1, 1, 80, 160, 3)  # length 1 is the smallest sequence
    assert InputSpec("m", (1, 2), "float32", "NC", role="memory", length=1).expected_shape() == (1, 2)
    assert InputSpec("i", (1, 6), "float32", "NC", role="imu").expected_shape() == (1, 6)
    assert InputSpec("i", (1, 2), "float32", "NC", role="imu", order=("ax", "gz")).expected_shape() == (1, 2)
    assert InputSpec("b", (1, 3), "float32", "NC", role="behavior", labels=("a", "b", "c")).expected_shape() == (1, 3)


def test_input_defaults_and_round_trip() -> None:
    m = Manifest.from_dict(copy.deepcopy(FULL))
    assert [i.to_dict() for i in m.inputs] == FULL["inputs"]
    imu = m.input_named("imu_in")
    assert imu.order == ("gz", "ax") and m.input_named("behavior_in").labels == ("left", "right")
    d = InputSpec.from_dict({"name": "img", "shape": [1, 80, 160, 3], "preprocess": PRE})
    assert (d.role, d.dtype, d.layout, d.length, d.order, d.labels) == ("image", "float32", "NHWC", None, None, None)


def test_unknown_input_and_output_keys_name_the_entry() -> None:
    with refused("input 'img': unknown keys ['colour']"):
        image(colour="RGB")
    with refused("input '?': unknown keys ['colour']"):
        InputSpec.from_dict({"shape": [1, 2], "colour": "RGB"})
    with refused("output 'angle': unknown keys ['range']"):
        OutputSpec.from_dict({"name": "angle", "shape": [1, 1], "meaning": "steering", "range": 1})
    with refused("output '?': unknown keys ['range']"):
        OutputSpec.from_dict({"shape": [1, 1], "range": 1})


# --- OutputSpec ----------------------------------------------------------------------------------

def test_output_meanings() -> None:
    with refused("output 'angle': meaning 'speed' is not one of steering, throttle, other, segmentation, detection"):
        OutputSpec("angle", (1, 1), "speed")
    # "other" is carried, never decoded: a (1, 15) tensor needs no decoder that fits it
    assert OutputSpec("aux", (1, 15), "other").decode == {"kind": "scalar"}
    assert OutputSpec.from_dict({"name": "t", "shape": [1, 1], "meaning": "throttle"}).decode == {"kind": "scalar"}


# --- BuildEntry ----------------------------------------------------------------------------------

def test_build_entry_round_trip() -> None:
    b = BuildEntry.from_dict(copy.deepcopy(BUILD))
    assert b.to_dict() == BUILD
    assert b.io["img_in"].quantized and not b.io["angle"].quantized
    bare = {k: v for k, v in BUILD.items() if k not in ("parity", "toolchain", "target", "extra")}
    e = BuildEntry.from_dict({**bare, "bytes": "1234", "parity": None, "toolchain": None})
    assert (e.bytes, e.parity, e.toolchain, e.target, e.extra) == (1234, {}, {}, None, {})
    assert "extra" not in e.to_dict()  # written only when there is something in it


@pytest.mark.parametrize("missing", ["format", "precision", "file", "sha256", "bytes", "io"])
def test_build_entry_missing_field(missing: str) -> None:
    d = {k: v for k, v in BUILD.items() if k != missing}
    name = "onnx" if missing != "format" else "?"
    with refused(f"manifest build entry {name!r} is malformed: {missing!r}"):
        BuildEntry.from_dict(d)


# --- Manifest ------------------------------------------------------------------------------------

def test_manifest_round_trip_keeps_every_field() -> None:
    m = Manifest.from_dict(copy.deepcopy(FULL))
    assert m.to_dict() == FULL
    text = m.dumps()
    assert json.loads(text) == FULL and text.endswith("}\n")
    # Human-readable, in the order the contract lists the fields (schema_version first).
    assert text.startswith('{\n  "schema_version": 2,\n  "converter_version": "0.4.0",\n')


def test_manifest_defaults() -> None:
    d = {k: v for k, v in FULL.items() if k not in ("converter_version", "created_at", "builds", "source", "not_built")}
    m = Manifest.from_dict(copy.deepcopy(d))
    assert (m.converter_version, m.created_at, m.builds, m.source, m.not_built) == ("?", "", [], {}, [])
    m = Manifest.from_dict({**copy.deepcopy(d), "source": None, "not_built": None})
    assert (m.source, m.not_built) == ({}, [])


def test_manifest_errors() -> None:
    with refused("manifest schema_version 4 is newer than this runtime understands (3); upgrade the runtime"):
        Manifest.from_dict({**FULL, "schema_version": 4})
    with refused("manifest is missing 'model'"):
        Manifest.from_dict({k: v for k, v in FULL.items() if k != "model"})
    with pytest.raises(BundleError, match=r"^manifest is malformed: .*'flavor'"):
        Manifest.from_dict({**FULL, "model": {k: v for k, v in FULL["model"].items() if k != "flavor"}})
    dup = copy.deepcopy(FULL)
    dup["inputs"][1]["name"] = "img_in"
    with refused("manifest: input names ['img_in', 'img_in', 'behavior_in'] are not unique"):
        Manifest.from_dict(dup)
    no_camera = copy.deepcopy(FULL)
    no_camera["inputs"] = no_camera["inputs"][1:]
    with refused("manifest: no input has role image or image_sequence; the car feeds camera frames"):
        Manifest.from_dict(no_camera)


def test_several_other_outputs_are_carried() -> None:
    d = copy.deepcopy(FULL)
    d["outputs"].append({"name": "aux2", "shape": [1, 3], "meaning": "other", "decode": {"kind": "scalar"}})
    m = Manifest.from_dict(d)
    assert m.output_names() == ["angle", "aux", "aux2"]


def test_one_input_as_schema_1_callers_pass_it() -> None:
    full = Manifest.from_dict(copy.deepcopy(FULL))
    m = Manifest(full.model, image(), [], [], "", "0")  # type: ignore[arg-type]
    assert [i.name for i in m.inputs] == ["img"] and m.camera_input.name == "img"


def test_lookups() -> None:
    m = Manifest.from_dict(copy.deepcopy(FULL))
    m.outputs.append(OutputSpec("angle", (1, 1), "other"))
    assert m.output_names() == ["angle", "aux"]  # distinct, in manifest order
    assert m.input_named("behavior_in").role == "behavior" and m.camera_input.name == "img_in"
    with refused("manifest has no input 'mem_in' (inputs: ['img_in', 'imu_in', 'behavior_in'])"):
        m.input_named("mem_in")
    second = BuildEntry.from_dict({**BUILD, "format": "tflite-fp32"})
    m.builds.append(second)
    assert m.build("tflite-fp32") is second and m.build("onnx") is m.builds[0]
    assert m.has("onnx") and m.has("tflite-fp32") and not m.has("tensorrt-fp16")
    with refused("bundle has no 'tensorrt-fp16' build (it has: onnx, tflite-fp32); "
                 "convert it with --formats tensorrt-fp16"):
        m.build("tensorrt-fp16")
    m.builds = []
    assert not m.has("onnx")
    with refused("bundle has no 'onnx' build (it has: none); convert it with --formats onnx"):
        m.build("onnx")


# --- files ---------------------------------------------------------------------------------------

def test_load_manifest_errors_say_what_to_do(tmp_path: Path) -> None:
    with refused(f"{tmp_path / 'manifest.json'} not found: is {tmp_path} a bundle made by convert-model?"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(BundleError, match=r"manifest.json is not valid JSON \(.*\); re-run convert-model$"):
        load_manifest(tmp_path)
    (tmp_path / "manifest.json").write_text(json.dumps(FULL))
    assert load_manifest(str(tmp_path)).to_dict() == FULL


def test_a_model_folder_of_bundles_names_the_versions_in_it(tmp_path: Path) -> None:
    """``--bundle builds/pilot`` instead of ``builds/pilot/v3``: the error lists the bundles inside."""
    for v in ("v1", "v3"):
        (tmp_path / v).mkdir()
        (tmp_path / v / "manifest.json").write_text(json.dumps(FULL))
    (tmp_path / "notes").mkdir()
    with refused(f"{tmp_path / 'manifest.json'} not found: {tmp_path} holds bundles, pass one of: "
                 f"{tmp_path / 'v1'}, {tmp_path / 'v3'}"):
        load_manifest(tmp_path)


def test_verified_path_checks_presence_and_sha256(tmp_path: Path) -> None:
    data = b"model bytes" * 1000
    (tmp_path / "model.onnx").write_bytes(data)
    digest = hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "model.onnx", chunk=7) == digest  # read in chunks, same digest
    build = BuildEntry.from_dict({**BUILD, "sha256": digest})
    assert verified_path(str(tmp_path), build) == tmp_path / "model.onnx"
    bad = BuildEntry.from_dict({**BUILD, "sha256": "0123456789abcdef" * 4})
    with pytest.raises(IntegrityError, match="^" + re.escape(
            f"onnx: model.onnx sha256 {digest[:12]}… does not match the manifest's 0123456789ab…; "
            "the file was modified or corrupted, re-copy the bundle") + "$"):
        verified_path(tmp_path, bad)
    (tmp_path / "model.onnx").unlink()
    with refused(f"onnx: {tmp_path / 'model.onnx'} is missing from the bundle; re-run convert-model"):
        verified_path(tmp_path, build)


def test_model_info_is_kept() -> None:
    assert Manifest.from_dict(copy.deepcopy(FULL)).model == ModelInfo(**FULL["model"])
