"""Real sources for calibration sets: frames of the synthetic track as a video file, an image
folder and a recording written by the runtime's own Recorder (the ``--record`` format)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from converter.demo.track import drive_sequence, write_image_folder, write_video
from runtime.events import Events
from runtime.manifest import PreprocessSpec
from runtime.recording import Recorder

DEMO_SPEC = PreprocessSpec(width=160, height=120)  # the demo pilot's: RGB, 1/255, no crop


@dataclass(frozen=True)
class TrackSources:
    video: Path  # 150 frames, 160x120 .mp4
    folder: Path  # 100 frames, 160x120 .png
    recording: Path  # 100 frames, 320x240 JPEG (a camera larger than the model input)
    recording_frames: np.ndarray

    @property
    def all(self) -> list[Path]:
        return [self.video, self.folder, self.recording]


def write_recording(path: Path, frames: np.ndarray, fps: float = 30.0) -> Path:
    """A recording as ``rc-runtime --record`` writes it, through the runtime's Recorder."""
    # A queue larger than the clip: the Recorder sheds images when its writer lags, which is
    # right on the car and wrong for a fixture that must hold every frame.
    rec = Recorder(path, {"model": {"name": "rc_pilot", "version": "3"}}, Events(), queue_size=4 * len(frames))
    for i, frame in enumerate(frames):
        rec.add({"frame_id": i + 1, "source_index": i, "t_capture": 100.0 + i / fps, "steering": 0.0,
                 "throttle": 0.0, "valid": True, "sent": True}, frame)
    rec.close({"frames": len(frames)})
    return rec.dir


@pytest.fixture(scope="session")
def track_sources(tmp_path_factory: pytest.TempPathFactory) -> TrackSources:
    root = tmp_path_factory.mktemp("calibration-sources")
    a, _, _ = drive_sequence(150, seed=21)
    b, _, _ = drive_sequence(100, seed=22)
    c, _, _ = drive_sequence(100, seed=23, width=320, height=240)
    video = write_video(root / "drive_a.mp4", a)
    write_image_folder(root / "drive_b", b)
    recording = write_recording(root / "drive_c", c)
    return TrackSources(video, root / "drive_b", recording, c)
