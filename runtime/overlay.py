"""The overlay for people (``--record DIR --overlay``): each drawn frame shows the drivable mask
tinted, the centreline, the look-ahead point, the detector's boxes and the verdict, written as
``overlay.mp4`` (mp4v, what OpenCV's pip wheels encode) or, when no video writer opens, as JPEGs in
``overlay/``. Only the recorder's writer thread calls this, so the drive loop is never slowed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

log = logging.getLogger(__name__)

VIDEO, JPEG_DIR = "overlay.mp4", "overlay"
OVERLAY_FPS = 10.0  # nominal: one drawn frame per ``overlay_every`` recorded ones
TINT = np.array([0, 160, 0], np.float32)  # BGR green over the drivable pixels
RED, YELLOW, CYAN, WHITE = (0, 0, 255), (0, 220, 255), (255, 255, 0), (255, 255, 255)


def draw_overlay(image: np.ndarray, data: dict[str, Any]) -> np.ndarray:
    """A drawn copy of the BGR frame ``image`` (H, W, 3 uint8). ``data`` (from the loop): ``mask`` (Hm, Wm)
    bool drivable, covering the frame below row ``mask_top``; ``centreline`` and ``lookahead`` as
    [row, column] frame pixels; ``safety`` (the verdict as recorded: boxes in frame pixels); ``held``,
    ``sent``, ``steering``, ``throttle``. Missing keys are not drawn."""
    out = image.copy()
    h, w = out.shape[:2]
    mask = data.get("mask")
    if mask is not None and mask.size:
        top = round(float(data.get("mask_top", 0.0)))
        big = cv2.resize(mask.astype(np.uint8), (w, h - top), interpolation=cv2.INTER_NEAREST).astype(bool)
        region = out[top:]
        region[big] = (region[big] * 0.55 + TINT * 0.45).astype(np.uint8)
    for v, u in data.get("centreline") or []:
        cv2.circle(out, (round(u), round(v)), 2, CYAN, -1)
    look = data.get("lookahead")
    if look:
        cv2.circle(out, (round(look[1]), round(look[0])), 4, RED, 2)
    safety = data.get("safety") or {}
    for d in safety.get("detections") or []:
        x1, y1, x2, y2 = (round(c) for c in d["box"])
        color = RED if d.get("in_path") else YELLOW
        cv2.rectangle(out, (x1, y1), (x2, y2), color, 1)
        cv2.putText(out, f"{d['label']} {d['score']:.2f}", (x1, max(8, y1 - 2)), cv2.FONT_HERSHEY_PLAIN, 0.7, color, 1)
    held = data.get("held")
    if held:
        text, color = f"NEUTRAL: {held}", RED
    elif data.get("sent"):
        text, color = f"DRIVE s={data.get('steering', 0.0):+.2f} t={data.get('throttle', 0.0):.2f}", WHITE
    else:
        text, color = "NEUTRAL", YELLOW
    cv2.putText(out, text, (3, h - 4), cv2.FONT_HERSHEY_PLAIN, 0.8, color, 1)
    return out


class OverlayWriter:
    """Writes drawn frames into ``directory``: ``overlay.mp4`` (via a partial file renamed on
    :meth:`close`), or JPEGs in ``overlay/`` when OpenCV cannot open an mp4v writer. Not thread-safe:
    the recorder's writer thread owns it."""

    def __init__(self, directory: Path, jpeg_quality: int = 85) -> None:
        self.directory, self.jpeg_quality = directory, jpeg_quality
        self._video: cv2.VideoWriter | None = None
        self._size: tuple[int, int] | None = None
        self._tmp = directory / f".{VIDEO}.partial.mp4"
        self.frames = 0
        self.kind = ""  # "mp4" or "jpeg" once the first frame is written

    def write(self, image: np.ndarray, data: dict[str, Any], frame_id: int) -> None:
        """Draw one frame and append it (a frame of another size than the first goes to JPEG)."""
        drawn = draw_overlay(image, data)
        size = (drawn.shape[1], drawn.shape[0])
        if self._size is None:
            self._size = size
            video = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter.fourcc(*"mp4v"), OVERLAY_FPS, size)
            if video.isOpened():
                self._video, self.kind = video, "mp4"
            else:
                log.warning("no mp4v video writer in this OpenCV; the overlay is written as JPEGs in %s/", JPEG_DIR)
                self.kind = "jpeg"
        if self._video is not None and size == self._size:
            self._video.write(drawn)
        else:
            folder = self.directory / JPEG_DIR
            folder.mkdir(exist_ok=True)
            ok, buf = cv2.imencode(".jpg", drawn, [cv2.IMWRITE_JPEG_QUALITY, self.jpeg_quality])
            if not ok:
                raise OSError("overlay JPEG encoding failed")
            (folder / f"{frame_id:08d}.jpg").write_bytes(buf.tobytes())
        self.frames += 1

    def close(self) -> str | None:
        """Finish the video (rename it into place); the overlay's path relative to the directory, or None."""
        if self._video is not None:
            self._video.release()
            self._video = None
            os.replace(self._tmp, self.directory / VIDEO)
            return VIDEO
        return JPEG_DIR if self.frames else None
