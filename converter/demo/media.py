"""Demo drive media for the runtime and calibration: a video, an image folder and the true labels.

numpy + OpenCV only (no TensorFlow), like :mod:`converter.demo.track`.
"""

from __future__ import annotations

import csv
import logging
from pathlib import Path

from converter.demo.track import drive_sequence, drive_states, write_image_folder, write_video

log = logging.getLogger(__name__)

VIDEO_NAME = "drive.mp4"
FRAMES_DIR = "drive_frames"
LABELS_NAME = "drive_labels.csv"


def write_drive_media(
    directory: str | Path, n_frames: int = 300, seed: int = 7, fps: float = 30.0
) -> dict[str, Path]:
    """Write ``drive.mp4``, ``drive_frames/000000.png``... and ``drive_labels.csv`` into ``directory``.

    The CSV has one row per frame: ``frame, curvature, offset, heading, steering, throttle`` (the
    true state and targets, see :mod:`converter.demo.track`). Returns the three paths.
    """
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    frames, steering, throttle = drive_sequence(n_frames, seed, fps=fps)
    states = drive_states(n_frames, seed, fps)
    video = write_video(out / VIDEO_NAME, frames, fps=fps)
    write_image_folder(out / FRAMES_DIR, frames)
    labels = out / LABELS_NAME
    with labels.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["frame", "curvature", "offset", "heading", "steering", "throttle"])
        for i in range(n_frames):
            w.writerow(
                [i]
                + [f"{v:.6f}" for v in (states.curvature[i], states.offset[i], states.heading[i])]
                + [f"{steering[i]:.6f}", f"{throttle[i]:.6f}"]
            )
    log.info("wrote %d drive frames to %s (%s, %s/, %s)", n_frames, out, VIDEO_NAME, FRAMES_DIR, LABELS_NAME)
    return {"video": video, "frames": out / FRAMES_DIR, "labels": labels}
