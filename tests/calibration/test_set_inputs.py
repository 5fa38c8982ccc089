"""Calibration sets for models with several inputs: each sample carries every input with values
like the car's (recorded by the runtime, the frames before it for a sequence, else the bundle's
reference values)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from calibration.cli import main as calibrate
from calibration.conversion import CalibrationError, load_for_conversion
from calibration.make_set import SetRequest, make_set
from calibration.set_format import read_frames, read_manifest, resize_like_runtime
from converter.demo.track import drive_sequence, write_image_folder, write_video
from runtime.assembly import run
from runtime.manifest import PreprocessSpec, load_manifest
from runtime.preprocess import preprocess_frame
from runtime.recording import read_recording
from tests.runtime.helpers import make_config
from tests.runtime.imu.helpers import imu_log, write_imu_csv
from tests.runtime.multi_input import PREPROCESS, image_input, vector_input, write_bundle

SPEC = PreprocessSpec.from_dict(PREPROCESS)


@pytest.fixture(scope="module")
def imu_drive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(bundle, recording): an IMU pilot driven by the real runtime on a replayed IMU, recorded."""
    root = tmp_path_factory.mktemp("imu-drive")
    bundle = write_bundle(root, "imu", [image_input(), vector_input("imu_in", "imu", 6)])
    frames, _, _ = drive_sequence(40, seed=5)
    write_image_folder(root / "frames", frames, ext=".png")
    t, v = imu_log(n=200, rate_hz=100.0)
    cfg = make_config(bundle, f"file://{root / 'frames'}?realtime=1&fps=50")
    cfg.imu.uri = f"file://{write_imu_csv(root / 'imu.csv', t, v)}"
    cfg.record.dir = str(root / "rec")
    summary = run(cfg)
    assert summary["commands"] >= 30  # paced like a camera: a busy machine may drop a frame
    return bundle, Path(summary["recording"]["dir"])


def test_a_set_from_a_drive_keeps_the_imu_values_the_car_fed(imu_drive: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, rec = imu_drive
    out = tmp_path / "set"
    assert calibrate([str(rec), "--bundle", str(bundle), "--out", str(out), "--frames", "30", "--heldout", "0.3"]) == 0
    m = read_manifest(out)
    assert m["inputs"] == {"recorded": ["imu_in"], "predecessors": 0}
    _, records = read_recording(rec)
    recorded = [r["inputs"]["imu_in"] for r in records if r["image"]]  # the set's positions count these
    data = load_for_conversion(out, SPEC, load_manifest(bundle))
    assert data.feed_sources == {"img_in": "frames", "imu_in": "recorded by the runtime"}
    arrays = read_frames(out, m, SPEC)
    with np.load(out / "frames.npz") as z:
        positions = {split: z[f"{split}_position"] for split in ("calibration", "heldout")}
    for split, feeds in (("calibration", data.calib_feeds), ("heldout", data.heldout_feeds)):
        n = len(arrays[split])
        assert feeds["img_in"].shape == (n, 20, 32, 3) and feeds["imu_in"].shape == (n, 6)
        np.testing.assert_allclose(feeds["imu_in"], [recorded[p] for p in positions[split]], atol=1e-6)
    np.testing.assert_array_equal(data.calib_feeds["img_in"], data.calib)  # the image input as before


@pytest.mark.parametrize("layout", ["NTHWC", "NTCHW"])
def test_a_sequence_set_holds_each_frame_with_the_ones_before(tmp_path: Path, layout: str) -> None:
    frames, _, _ = drive_sequence(60, seed=9)
    video = write_video(tmp_path / "drive.mp4", frames)
    bundle = write_bundle(tmp_path, "seq", [image_input(length=3, layout=layout)])
    manifest = load_manifest(bundle)
    out = tmp_path / "set"
    make_set(SetRequest(sources=[video], spec=SPEC, out=out, frames=20, inputs=manifest.inputs))
    assert read_manifest(out)["inputs"]["predecessors"] == 2
    data = load_for_conversion(out, SPEC, manifest)
    assert data.feed_sources == {"img_in": "frames with their predecessors"}
    import cv2

    cap, decoded = cv2.VideoCapture(str(video)), []
    while (got := cap.read())[0]:
        decoded.append(got[1])
    frame_layout = "NHWC" if layout == "NTHWC" else "NCHW"
    with np.load(out / "frames.npz") as z:
        positions = z["calibration_position"]
    x = data.calib_feeds["img_in"]
    assert x.shape[:2] == (len(positions), 3)
    for i, p in enumerate(positions[:5]):
        for j, q in enumerate((max(p - 2, 0), max(p - 1, 0), p)):  # oldest first, clamped at the start
            want = preprocess_frame(resize_like_runtime(decoded[q], SPEC), SPEC, frame_layout)[0]
            np.testing.assert_allclose(x[i, j], want, atol=1e-6)


def test_a_sequence_set_without_predecessors_is_refused(tmp_path: Path) -> None:
    frames, _, _ = drive_sequence(30, seed=9)
    video = write_video(tmp_path / "drive.mp4", frames)
    bundle = write_bundle(tmp_path, "seq", [image_input(length=3)])
    out = tmp_path / "set"
    make_set(SetRequest(sources=[video], spec=SPEC, out=out, frames=20))  # made without the bundle's inputs
    with pytest.raises(CalibrationError, match=r"no preceding frames for the 3-frame sequence input 'img_in'.*--bundle"):
        load_for_conversion(out, SPEC, load_manifest(bundle))


def test_inputs_not_recorded_come_from_the_bundles_reference_values(tmp_path: Path) -> None:
    frames, _, _ = drive_sequence(30, seed=9)
    write_image_folder(tmp_path / "frames", frames, ext=".png")
    labels = ["left", "right"]
    bundle = write_bundle(tmp_path, "beh", [image_input(), vector_input("behavior_in", "behavior", 2, labels=labels)])
    manifest = load_manifest(bundle)
    out = tmp_path / "set"
    make_set(SetRequest(sources=[tmp_path / "frames"], spec=SPEC, out=out, frames=20, inputs=manifest.inputs))
    assert read_manifest(out)["inputs"]["recorded"] == []
    ref = {"behavior_in": np.asarray([[1, 0], [0, 1], [0, 1]], np.float32)}
    data = load_for_conversion(out, SPEC, manifest, ref)
    assert data.feed_sources["behavior_in"] == "the bundle's reference values"
    got = data.calib_feeds["behavior_in"]
    np.testing.assert_array_equal(got, ref["behavior_in"][np.arange(len(got)) % 3])
    with pytest.raises(CalibrationError, match=r"no values for input 'behavior_in' \(behavior\).*rc-runtime --record"):
        load_for_conversion(out, SPEC, manifest)


def test_the_set_hash_covers_the_recorded_inputs(imu_drive: tuple[Path, Path], tmp_path: Path) -> None:
    bundle, rec = imu_drive
    out = tmp_path / "set"
    assert calibrate([str(rec), "--bundle", str(bundle), "--out", str(out), "--frames", "30"]) == 0
    with np.load(out / "frames.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["calibration_in/imu_in"] = arrays["calibration_in/imu_in"] + 1.0  # tampered values
    with open(out / "frames.npz", "wb") as f:
        np.savez_compressed(f, **arrays)
    with pytest.raises(CalibrationError, match="do not match the sha256"):
        load_for_conversion(out, SPEC, load_manifest(bundle))
    assert json.loads((out / "calibration.json").read_text())["inputs"]["recorded"] == ["imu_in"]
