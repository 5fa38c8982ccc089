"""Where calibration frames come from: runtime recordings, video files, image folders.

Each source lists its frames in time order (``length``) and decodes only the ones asked for, as
the camera-like HxWx3 uint8 BGR frames OpenCV delivers. A recording is what ``rc-runtime
--record`` writes (see ``runtime.recording``); a folder of recordings (``--record`` makes one per
run), and every recording nested in another, counts as one source per recording.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.recording import FRAMES_DIR, HEADER, RecordingError, read_recording

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")


class SourceError(ValueError):
    """A source that cannot be used; the message names it and the fix."""


def natural_key(name: str) -> list[Any]:
    """``img_2.jpg`` before ``img_10.jpg`` (donkeycar tubs and many cameras number without padding)."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


@dataclass
class CalibrationSource:
    kind: str  # recording | video | images
    path: Path
    length: int = 0
    fps: float | None = None
    _files: list[Path] = field(default_factory=list, repr=False)
    _inputs: list[dict[str, Any]] = field(default_factory=list, repr=False)  # a recording's, per frame

    def recorded_inputs(self, position: int) -> dict[str, Any]:
        """The non-image inputs the runtime fed the model with this frame (a recording only; empty
        for videos, image folders and recordings made before inputs were recorded)."""
        return self._inputs[position] if self._inputs else {}

    def frames(self, positions: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        """``(position, frame)`` for the asked positions, in time order, one at a time (a long 1080p
        drive never sits in memory); a frame that cannot be decoded is left out."""
        wanted = sorted(set(positions))
        if self.kind == "video":
            yield from self._video_frames(wanted)
            return
        for p in wanted:
            img = cv2.imread(str(self._files[p]), cv2.IMREAD_COLOR)
            if img is not None:
                yield p, img

    def describe(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "path": str(self.path.resolve()), "frames_available": self.length}
        if self.fps:
            d["fps"] = round(self.fps, 3)
        return d

    def _video_frames(self, wanted: list[int]) -> Iterator[tuple[int, np.ndarray]]:
        # Sequential decoding: seeking in mp4v/MJPG files is not frame-exact in every OpenCV build.
        cap = cv2.VideoCapture(str(self.path))
        try:
            todo, i = set(wanted), 0
            while todo and cap.grab():
                if i in todo:
                    ok, img = cap.retrieve()
                    if ok and img is not None:
                        yield i, img
                    todo.discard(i)
                i += 1
        finally:
            cap.release()


def open_sources(path: Path) -> list[CalibrationSource]:
    """The source(s) at ``path``: a video, a recording, an image folder, or a folder of recordings,
    and every recording nested below a folder at any depth: ``rc-runtime --record DIR`` writes its
    first run into DIR itself and each later run into ``DIR/<UTC time>``, so a recording can hold
    others (skipping them silently lost those drives). Image subfolders are not read: a warning
    names them."""
    if not path.exists():
        raise SourceError(f"{path}: no such file or folder")
    if path.is_file():
        return [_video(path)]
    found = []
    if (path / HEADER).is_file():
        found.append(_recording(path))
    else:
        images = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES),
                        key=lambda p: natural_key(p.name))
        if images:
            found.append(CalibrationSource("images", path, len(images), _files=images))
    nested, image_dirs = _below(path)
    if nested:
        log.info("%s: %d recording(s) below it: %s", path, len(nested), ", ".join(str(d.relative_to(path)) for d in nested))
    found.extend(_recording(d) for d in nested)
    if image_dirs:
        log.warning("%s: image subfolder(s) not read: %s; give them as sources of their own to use them", path,
                    ", ".join(str(d.relative_to(path)) for d in image_dirs))
    if found:
        return found
    raise SourceError(
        f"{path}: not a recording ({HEADER} missing), and holds no images ({', '.join(IMAGE_SUFFIXES)}) "
        "or recordings; give a --record directory, a video file or an image folder"
    )


def _below(root: Path) -> tuple[list[Path], list[Path]]:
    """(recordings, image folders that are not recordings) below ``root``, at any depth, in natural
    order of their names (``--record`` names runs by UTC time: the order they were driven). A
    recording's own ``frames/`` folder is its images, never searched."""
    recordings: list[Path] = []
    image_dirs: list[Path] = []
    for d in sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: natural_key(p.name)):
        if (root / HEADER).is_file() and d.name == FRAMES_DIR:
            continue
        if (d / HEADER).is_file():
            recordings.append(d)
        elif any(p.suffix.lower() in IMAGE_SUFFIXES for p in d.iterdir()):
            image_dirs.append(d)
        more, more_images = _below(d)
        recordings += more
        image_dirs += more_images
    return recordings, image_dirs


def _recording(path: Path) -> CalibrationSource:
    try:
        _, records = read_recording(path)
        rows = [(r.get("t_capture") or 0.0, int(r.get("frame_id", 0)), r["image"], r.get("inputs") or {})
                for r in records if r.get("image")]
    except (RecordingError, OSError, ValueError, KeyError) as e:
        raise SourceError(f"{path}: unreadable recording ({e}); is it a complete rc-runtime --record directory?") from None
    rows.sort(key=lambda r: (r[0], r[1]))  # capture time, then frame id: the camera's order
    kept = [(path / name, inputs) for _, _, name, inputs in rows if (path / name).is_file()]
    files = [f for f, _ in kept]
    if not files:
        raise SourceError(f"{path}: the recording has no saved images (was --record-every too large?)")
    if len(files) < len(rows):
        log.warning("%s: %d recorded images are missing on disk; using the %d present", path, len(rows) - len(files), len(files))
    return CalibrationSource("recording", path, len(files), _files=files, _inputs=[i for _, i in kept])


def _video(path: Path) -> CalibrationSource:
    if path.suffix.lower() in IMAGE_SUFFIXES:
        raise SourceError(f"{path}: a single image; give the folder that holds the images")
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            raise SourceError(f"{path}: OpenCV cannot open it as a video (readable here: {', '.join(VIDEO_SUFFIXES)} "
                              "with mp4v/MJPG; pip's OpenCV has no H.264 decoder on some systems)")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or None
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        if n <= 0:  # some containers do not say: count what decodes
            n = 0
            while cap.grab():
                n += 1
    finally:
        cap.release()
    if n == 0:
        raise SourceError(f"{path}: no frame could be decoded")
    return CalibrationSource("video", path, n, fps=fps)
