"""Shared fixtures for the runtime tests: the demo bundle, a generated drive as a video file and
as an image folder, reference model outputs for those frames, and a car simulator on a real pty."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.sim import CarSimulator, start_pty_simulator
from tests.runtime.helpers import N_FRAMES


@pytest.fixture(scope="session")
def bundle(demo_bundle: Path) -> Path:
    """The demo model's bundle as convert-model makes it (tests/conftest.py)."""
    return Path(demo_bundle)


@pytest.fixture(scope="session")
def clip_frames() -> np.ndarray:
    from converter.demo.track import drive_sequence

    frames, _, _ = drive_sequence(N_FRAMES, seed=7)
    return frames


@pytest.fixture(scope="session")
def clip_video(tmp_path_factory: pytest.TempPathFactory, clip_frames: np.ndarray) -> Path:
    from converter.demo.track import write_video

    return write_video(tmp_path_factory.mktemp("video") / "drive.mp4", clip_frames, fps=30)


@pytest.fixture(scope="session")
def clip_decoded(clip_video: Path) -> list[np.ndarray]:
    """The frames as OpenCV decodes them from the file (mp4v is lossy: the camera sees these)."""
    cap = cv2.VideoCapture(str(clip_video))
    out = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        out.append(img)
    cap.release()
    assert len(out) == N_FRAMES
    return out


@pytest.fixture(scope="session")
def clip_folder(tmp_path_factory: pytest.TempPathFactory, clip_frames: np.ndarray) -> Path:
    from converter.demo.track import write_image_folder

    folder = tmp_path_factory.mktemp("images") / "frames"
    write_image_folder(folder, clip_frames[:24], ext=".png")
    return folder


@pytest.fixture
def sim() -> Iterator[tuple[CarSimulator, str]]:
    """A car simulator on the master side of a fresh pty; the runtime opens the returned path."""
    simulator, path = start_pty_simulator()
    try:
        yield simulator, path
    finally:
        simulator.stop()
