"""The synthetic track: determinism, label conventions, geometry in the pixels, video/image I/O."""

from __future__ import annotations

import csv
import sys

import cv2
import numpy as np
import pytest

from converter.demo import track
from converter.demo.media import FRAMES_DIR, LABELS_NAME, VIDEO_NAME, write_drive_media
from tests.conftest import checkout_env


def test_track_module_does_not_import_tensorflow() -> None:
    # Runtime tests, calibration and benchmarks import track.py: it must stay numpy + OpenCV.
    import subprocess

    code = "import sys, converter.demo.track, converter.demo.media; print('tensorflow' in sys.modules, 'keras' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=checkout_env()).stdout
    assert out.strip() == "False False"


def test_generate_dataset_is_deterministic_and_well_formed() -> None:
    a = track.generate_dataset(24, seed=3)
    b = track.generate_dataset(24, seed=3)
    c = track.generate_dataset(24, seed=4)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[0], c[0])
    frames, steering, throttle = a
    assert frames.shape == (24, 120, 160, 3) and frames.dtype == np.uint8
    assert steering.shape == throttle.shape == (24,)
    assert steering.dtype == throttle.dtype == np.float32
    small = track.generate_dataset(2, seed=0, width=80, height=60)[0]
    assert small.shape == (2, 60, 80, 3)


def test_labels_follow_the_documented_conventions() -> None:
    rng = np.random.default_rng(0)
    k, d, h = track.random_states(20_000, rng)
    s, t = track.steering_target(k, d, h), track.throttle_target(k, d, h)
    assert s.min() >= -1 and s.max() <= 1 and t.min() >= 0 and t.max() <= 1
    assert s.std() > 0.25 and t.std() > 0.1  # both labels really vary over the state space
    assert track.steering_target(0.0, 0.0, 0.0) == 0.0
    assert track.steering_target(0.5, 0.0, 0.0) > 0.2  # road bends right: steer right
    assert track.steering_target(0.0, 0.2, 0.0) < -0.2  # car right of centre: steer left
    assert track.steering_target(0.0, 0.0, 0.2) < -0.2  # car points right: steer left
    np.testing.assert_allclose(track.steering_target(-k, -d, -h), -s, atol=1e-6)  # mirror symmetry
    np.testing.assert_allclose(track.throttle_target(-k, -d, -h), t, atol=1e-6)
    assert track.throttle_target(0.0, 0.0, 0.0) == pytest.approx(0.8)
    assert track.throttle_target(0.8, 0.0, 0.0) < track.throttle_target(0.4, 0.0, 0.0) < 0.8  # slower in curves
    # Smooth: a small step in the state moves the labels a little.
    eps = 1e-3
    assert np.max(np.abs(track.steering_target(k + eps, d, h) - s)) < 0.01
    assert np.max(np.abs(track.throttle_target(k, d + eps, h) - t)) < 0.01


def _plain() -> track.Appearance:
    """Black ground, white edge lines, no texture, noise or lighting: geometry only."""
    return track.Appearance(
        floor=(0.0, 0.0, 0.0), road=(0.0, 0.0, 0.0), line=(255.0, 255.0, 255.0), sky=(0.0, 0.0, 0.0),
        center_line=False, horizon=0.3, tex_amp=0.0, tex_freq=(1.0, 1.0, 1.0), tex_phase=(0.0, 0.0, 0.0),
        shadow_at=0.0, shadow_len=0.0, gain=1.0, tilt=0.0, noise=0.0,
    )  # fmt: skip


def _line_centres(row: np.ndarray) -> list[float]:
    """Centres of the bright runs in one grey image row."""
    bright = np.concatenate([[False], row > 100, [False]]).astype(np.int8)
    starts, ends = np.flatnonzero(np.diff(bright) == 1), np.flatnonzero(np.diff(bright) == -1)
    return [(a + b - 1) / 2 for a, b in zip(starts, ends, strict=True)]


@pytest.mark.parametrize(("offset", "heading"), [(0.0, 0.0), (0.1, 0.0), (-0.15, 0.0), (0.0, 0.1)])
def test_lane_lines_are_where_the_camera_model_puts_them(offset: float, heading: float) -> None:
    w, h = 160, 120
    img = track._render(0.0, offset, heading, _plain(), np.random.default_rng(0), w, h)
    gray = cv2.cvtColor(img, cv2.COLOR_BGR2GRAY)
    v = 60  # about 0.9 m ahead: both edge lines in view
    f = track.FOCAL_FRACTION * w
    z = f * track.CAMERA_HEIGHT / (v + 0.5 - 0.3 * h)
    centre = -offset - heading * z
    expected = [w / 2 - 0.5 + f * (centre + e) / z for e in (-track.LANE_HALF_WIDTH, track.LANE_HALF_WIDTH)]
    found = _line_centres(gray[v])
    assert len(found) == 2, found
    np.testing.assert_allclose(found, expected, atol=1.0)


def test_curvature_shows_in_the_far_field_and_mirrors() -> None:
    rng = np.random.default_rng(1)
    left = track._render(-0.6, 0.0, 0.0, _plain(), rng, 160, 120)
    right = track._render(0.6, 0.0, 0.0, _plain(), rng, 160, 120)
    far = 0.3 * 120 + 10  # ~1.6 m ahead
    lc, rc = _line_centres(cv2.cvtColor(left, cv2.COLOR_BGR2GRAY)[int(far)]), _line_centres(
        cv2.cvtColor(right, cv2.COLOR_BGR2GRAY)[int(far)]
    )
    assert np.mean(rc) > 80 > np.mean(lc)  # a right bend runs off to the right of the image
    assert np.abs(cv2.flip(left, 1).astype(int) - right.astype(int)).mean() < 2.0


def test_drive_sequence_is_smooth_and_deterministic() -> None:
    frames, steering, _ = track.drive_sequence(90, seed=5)
    again = track.drive_sequence(90, seed=5)
    np.testing.assert_array_equal(frames, again[0])
    assert frames.shape == (90, 120, 160, 3)
    assert np.max(np.abs(np.diff(steering))) < 0.1  # continuous at 30 fps
    st = track.drive_states(900, seed=5)
    assert np.abs(st.offset).max() <= track.OFFSET_RANGE and np.abs(st.heading).max() <= track.HEADING_RANGE
    assert np.ptp(st.curvature) > 0.5  # both straights and curves in a 30 s drive
    assert np.all(np.diff(st.distance) > 0)
    # consecutive frames look alike (a video of it looks like driving), distant ones do not
    step = np.abs(frames[1:].astype(int) - frames[:-1].astype(int)).mean()
    far = np.abs(frames[60:].astype(int) - frames[:-60].astype(int)).mean()
    assert step < far


@pytest.mark.parametrize("suffix", [".mp4", ".avi"])
def test_write_video_round_trips_through_opencv(tmp_path, suffix: str) -> None:
    frames = track.drive_sequence(20, seed=2)[0]
    path = track.write_video(tmp_path / f"drive{suffix}", frames, fps=30)
    cap = cv2.VideoCapture(str(path))
    got = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        got.append(frame)
    cap.release()
    assert len(got) == 20
    assert got[0].shape == (120, 160, 3)
    assert np.abs(np.stack(got).astype(int) - frames.astype(int)).mean() < 12  # lossy, but the same pictures
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"drive{suffix}"]  # no partial file left


def test_write_video_refuses_unknown_containers(tmp_path) -> None:
    with pytest.raises(ValueError, match=r"\.mp4 \(mp4v\) or \.avi"):
        track.write_video(tmp_path / "drive.mkv", np.zeros((2, 8, 8, 3), np.uint8))
    assert list(tmp_path.iterdir()) == []


def test_write_image_folder_round_trips_in_order(tmp_path) -> None:
    frames = track.generate_dataset(12, seed=1)[0]
    paths = track.write_image_folder(tmp_path / "frames", frames)
    names = sorted(p.name for p in (tmp_path / "frames").iterdir())
    assert names == [p.name for p in paths] and names[0] == "000000.png" and names[-1] == "000011.png"
    for p, f in zip(sorted((tmp_path / "frames").iterdir()), frames, strict=True):
        np.testing.assert_array_equal(cv2.imread(str(p)), f)  # PNG is lossless


def test_write_drive_media(tmp_path) -> None:
    out = write_drive_media(tmp_path, n_frames=15, seed=3)
    assert out["video"] == tmp_path / VIDEO_NAME and out["video"].stat().st_size > 0
    assert len(list((tmp_path / FRAMES_DIR).glob("*.png"))) == 15
    with (tmp_path / LABELS_NAME).open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 15 and rows[0]["frame"] == "0"
    _, steering, _ = track.drive_sequence(15, seed=3)
    assert float(rows[7]["steering"]) == pytest.approx(float(steering[7]), abs=1e-5)
