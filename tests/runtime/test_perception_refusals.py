"""What cannot be driven safely is refused by ``rc-runtime``: one line naming the fix, exit 2, the
car in neutral and never driven. A detector cannot drive; a pilot is not a safety detector; a pilot
of the wrong kind; two camera inputs fed from one camera; a map read as steering."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from runtime.cli import main
from runtime.manifest import BundleError, load_manifest
from runtime.sim import CarSimulator
from tests.runtime import multi_input
from tests.runtime.perception_bundles import det_bundle, road_drive, seg_bundle
from tests.runtime.perception_drive import frame_folder


@pytest.fixture
def camera(tmp_path: Path) -> str:
    frames, _ = road_drive(6, seed=1)
    return frame_folder(tmp_path / "frames", frames)


def refused(flags: list[str], car: CarSimulator, port: str, capsys: pytest.CaptureFixture[str]) -> str:
    code = main(["--backend", "onnxruntime", "--serial", port, *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err, err
    assert car.wait_for(lambda s: s.output.neutral and any(e["event"] == "neutral" for e in s.events), 2.0)
    assert car.commands() == []
    return err


def test_a_detection_bundle_cannot_drive_by_itself(
    tmp_path: Path, camera: str, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    det = det_bundle(tmp_path)
    err = refused(["--bundle", str(det), "--camera", camera], car, port, capsys)
    assert f"{det} is a detection model: it cannot drive the car by itself; pass it as --safety BUNDLE" in err


def test_a_pilot_bundle_is_not_a_safety_detector(
    tmp_path: Path, camera: str, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    seg = seg_bundle(tmp_path)
    err = refused(["--bundle", str(seg), "--safety", str(seg), "--camera", camera], car, port, capsys)
    assert "is a segmentation model; the safety layer needs a detection bundle" in err


@pytest.mark.parametrize(("which", "pilot", "message"), [
    ("seg", "end_to_end", "pilot end_to_end drives driving models, but"),
    ("drive", "lane_follow", "pilot lane_follow drives segmentation models, but"),
])
def test_a_pilot_of_the_wrong_kind_is_refused_naming_the_right_one(
    tmp_path: Path, camera: str, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
    which: str, pilot: str, message: str,
) -> None:
    car, port = sim
    bundle = seg_bundle(tmp_path) if which == "seg" else multi_input.write_bundle(tmp_path, "drive", [multi_input.image_input()])
    right = "lane_follow" if which == "seg" else "end_to_end"
    err = refused(["--bundle", str(bundle), "--pilot", pilot, "--camera", camera], car, port, capsys)
    assert message in err and f"use --pilot {right} (or auto)" in err


def test_a_stereo_model_is_refused_not_fed_one_frame_twice(
    tmp_path: Path, camera: str, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    stereo = multi_input.write_bundle(tmp_path, "stereo", [multi_input.image_input("img_left"),
                                                           multi_input.image_input("img_right")])
    err = refused(["--bundle", str(stereo), "--camera", camera], car, port, capsys)
    assert ("the model has 2 camera inputs (img_left, img_right) but this runtime feeds one camera; "
            "re-export the model with one image input") in err


def test_a_map_given_as_steering_never_loads(
    tmp_path: Path, camera: str, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
) -> None:
    """The issue's wrong path: ``--outputs out=steering:component:0`` on a segmentation model. The
    manifest is refused on load (the component decoder reads only (1, N) vectors), so no policy ever
    reads a map as a command: this fails if that check regresses."""
    car, port = sim
    bundle = seg_bundle(tmp_path)
    path = bundle / "manifest.json"
    m = json.loads(path.read_text())
    m["outputs"][0]["meaning"], m["outputs"][0]["decode"] = "steering", {"kind": "component", "index": 0}
    path.write_text(json.dumps(m))
    with pytest.raises(BundleError, match="looks like a segmentation map"):
        load_manifest(bundle)
    err = refused(["--bundle", str(bundle), "--camera", camera], car, port, capsys)
    assert "looks like a segmentation map" in err


def test_every_pilot_reads_only_outputs_decoded_by_their_kind() -> None:
    """A bundle with a steering output and a segmentation map drives end to end from the steering
    output alone; a changed map changes nothing."""
    from runtime.camera import CameraFrame
    from runtime.manifest import Manifest
    from runtime.pilots import open_pilot
    from tests.runtime.perception.test_manifest_perception import SEG, with_outputs

    steering = {"name": "steer", "shape": [1, 1], "meaning": "steering", "decode": {"kind": "scalar"}}
    m = Manifest.from_dict(with_outputs([steering, SEG]))
    pilot = open_pilot("auto", m)
    frame = CameraFrame(1, 0.0, np.zeros((120, 160, 3), np.uint8), 0)
    a = pilot({"steer": np.array([[0.25]], np.float32), "out": np.zeros((1, 2, 80, 160), np.float32)}, frame)
    b = pilot({"steer": np.array([[0.25]], np.float32), "out": np.ones((1, 2, 80, 160), np.float32)}, frame)
    assert pilot.kind == "end_to_end" and a == b and a.steering == 0.25 and a.throttle is None
