"""``rc-calibrate`` on real sources: a video file, an image folder and a runtime recording."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from calibration.cli import main
from calibration.set_format import MANIFEST_FILE, read_frames, read_manifest, resize_like_runtime
from calibration.sources import open_sources
from runtime.manifest import InputSpec, Manifest, ModelInfo, OutputSpec
from runtime.preprocess import preprocess_frame
from tests.calibration.conftest import DEMO_SPEC, TrackSources, write_recording

SPEC_FLAGS = ["--input-size", "160x120"]


def make(tmp_path: Path, sources: list[Path], *extra: str, name: str = "set") -> tuple[int, Path]:
    out = tmp_path / name
    return main([*map(str, sources), "--out", str(out), *SPEC_FLAGS, *extra]), out


def test_a_set_from_all_three_kinds_of_source(track_sources: TrackSources, tmp_path: Path,
                                              capfd: pytest.CaptureFixture[str]) -> None:
    code, out = make(tmp_path, track_sources.all, "--frames", "200", "--seed", "5")
    std = capfd.readouterr()
    assert code == 0, std.err
    assert f"{out}: " in std.out and "held-out" in std.out
    m = read_manifest(out)
    kinds = [s["kind"] for s in m["sources"]]
    assert kinds == ["video", "images", "recording"]
    assert [s["frames_available"] for s in m["sources"]] == [150, 100, 100]
    assert [s["calibration"] + s["heldout"] for s in m["sources"]] == [86, 57, 57]  # shares follow length
    assert m["sources"][2]["frame_size"] == [320, 240]
    assert m["counts"]["calibration"] + m["counts"]["heldout"] == 200
    assert 0.15 <= m["counts"]["heldout"] / 200 <= 0.25
    frames = read_frames(out, m, DEMO_SPEC)
    assert frames["calibration"].shape[1:] == (120, 160, 3) and frames["calibration"].dtype == np.uint8
    assert "calibration frames (< 300)" in std.err  # a small set is warned about
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no temporary directory left


def test_picks_spread_over_time_and_heldout_comes_in_blocks(track_sources: TrackSources, tmp_path: Path) -> None:
    code, out = make(tmp_path, [track_sources.video], "--frames", "60", "--block", "3")
    assert code == 0
    with np.load(out / "frames.npz") as z:
        cal, held = z["calibration_position"], z["heldout_position"]
    pos = np.sort(np.r_[cal, held])
    assert pos[0] < 5 and pos[-1] >= 145 and np.diff(pos).max() <= 5  # the whole drive, evenly
    assert len(held) in (9, 12, 15) and all(len(b) == 3 for b in np.split(held, np.flatnonzero(np.diff(held) > 5) + 1))


def test_same_sources_and_seed_give_the_same_frames(track_sources: TrackSources, tmp_path: Path) -> None:
    runs = [make(tmp_path, track_sources.all, "--frames", "80", "--seed", s, name=f"s{i}")
            for i, s in enumerate(["1", "1", "2"])]
    shas = [read_manifest(out)["frames"]["sha256"] for _, out in runs]
    assert shas[0] == shas[1] != shas[2]


def test_stored_frames_preprocess_exactly_like_the_camera_frame() -> None:
    """Frames are stored resized; the rest of the runtime's preprocessing must give the same bits."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for spec in (DEMO_SPEC, DEMO_SPEC.__class__(160, 120, crop_top=40, color="BGR", mean=(0.5, 0.4, 0.3))):
        stored = resize_like_runtime(frame, spec)
        assert np.array_equal(preprocess_frame(stored, spec), preprocess_frame(frame, spec))


def test_spec_from_a_bundle_manifest(track_sources: TrackSources, tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    spec = DEMO_SPEC.__class__(160, 120, crop_top=20)
    m = Manifest(ModelInfo("rc_pilot", "3", None, "models:/m-1", "keras"),
                 [InputSpec("image", (1, 100, 160, 3), "float32", "NHWC", spec)],
                 [OutputSpec("steering", (1, 1), "steering")], [], "", "test")
    (bundle / "manifest.json").write_text(m.dumps())
    out = tmp_path / "set"
    assert main([str(track_sources.folder), "--bundle", str(bundle), "--out", str(out), "--frames", "30"]) == 0
    mf = read_manifest(out)
    assert mf["preprocess"]["crop_top"] == 20 and mf["bundle"]["version"] == "3"


def test_a_folder_of_recordings_counts_each_one(track_sources: TrackSources, tmp_path: Path) -> None:
    root = tmp_path / "drives"
    for i in range(2):
        write_recording(root / f"2026112{i}T100000Z", track_sources.recording_frames[:20])
    sources = open_sources(root)
    assert [s.kind for s in sources] == ["recording", "recording"] and [s.length for s in sources] == [20, 20]


def test_replacing_a_set_needs_force(track_sources: TrackSources, tmp_path: Path,
                                     capfd: pytest.CaptureFixture[str]) -> None:
    assert make(tmp_path, [track_sources.folder], "--frames", "20")[0] == 0
    before = (tmp_path / "set" / MANIFEST_FILE).read_text()
    capfd.readouterr()
    assert make(tmp_path, [track_sources.folder], "--frames", "30")[0] == 2
    assert "already exists" in capfd.readouterr().err
    assert (tmp_path / "set" / MANIFEST_FILE).read_text() == before
    assert make(tmp_path, [track_sources.folder], "--frames", "30", "--force")[0] == 0
    assert json.loads((tmp_path / "set" / MANIFEST_FILE).read_text())["counts"]["calibration"] > 20 * 0.7
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]


@pytest.mark.parametrize("args, message", [
    (["{missing}", *SPEC_FLAGS], "no such file or folder"),
    (["{empty}", *SPEC_FLAGS], "not a recording"),
    (["{image}", *SPEC_FLAGS], "a single image; give the folder"),
    (["{text}", *SPEC_FLAGS], "cannot open it as a video"),
    (["{folder}"], "no preprocessing: pass --bundle"),
    (["{folder}", "--bundle", "{empty}", *SPEC_FLAGS], "not both"),
    (["{folder}", "--bundle", "{empty}"], "not found: is"),
    (["{folder}", *SPEC_FLAGS, "--heldout", "0"], "--heldout 0.0: give a share"),
    (["{folder}", *SPEC_FLAGS, "--frames", "1"], "at least 2 frames"),
    (["{folder}", "--input-size", "160x120", "--crop-top", "130"], "crop_top=130"),
])
def test_bad_input_is_one_line_and_exit_2(track_sources: TrackSources, tmp_path: Path, args: list[str],
                                          message: str, capfd: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "empty").mkdir()
    image = tmp_path / "one.png"
    cv2.imwrite(str(image), track_sources.recording_frames[0])
    (tmp_path / "notes.txt").write_text("not a video")
    paths = {"missing": tmp_path / "nope", "empty": tmp_path / "empty", "image": image,
             "text": tmp_path / "notes.txt", "folder": track_sources.folder}
    argv = [a.format(**paths) for a in args] + ["--out", str(tmp_path / "set")]
    assert main(argv) == 2
    err = capfd.readouterr().err.strip()
    assert err.startswith("rc-calibrate: error:") and message in err and "\n" not in err
    assert not (tmp_path / "set").exists() and not list(tmp_path.glob(".set*"))


def test_a_recording_with_later_runs_nested_in_it_reads_them_all(track_sources: TrackSources, tmp_path: Path,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    # `--record recordings/` twice: the first run is written into recordings/ itself, the second
    # into recordings/<UTC time>/ (runtime.recording.choose_directory). The README's pair of
    # commands once dropped the second run's 50 frames without a word.
    root = tmp_path / "recordings"
    first = write_recording(root, track_sources.recording_frames[:30])
    second = write_recording(root, track_sources.recording_frames[30:80])
    assert first == root and second.parent == root
    sources = open_sources(root)
    assert [(s.path, s.length) for s in sources] == [(root, 30), (second, 50)]
    code, _ = make(tmp_path, [root], "--frames", "80", "--json")
    m = json.loads(capfd.readouterr().out)
    assert code == 0 and m["counts"]["sources"] == 2
    assert m["counts"]["calibration"] + m["counts"]["heldout"] == 80
