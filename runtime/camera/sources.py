"""The concrete sources: CSI (GStreamer), V4L2, video file, image folder. All via OpenCV."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.camera.base import CameraConfigError, CameraError, FrameSource
from runtime.camera.uri import CameraURI, parse_camera_uri

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")
DEFAULT_FILE_FPS = 30.0


def opencv_has_gstreamer() -> bool:
    """True when this OpenCV was built with GStreamer (``cv2.getBuildInformation()``), which ``csi://``
    needs.
    """
    for line in cv2.getBuildInformation().splitlines():
        if line.strip().startswith("GStreamer:"):
            return "YES" in line.split(":", 1)[1]
    return False


def csi_pipeline(sensor: int, width: int, height: int, fps: int, flip: int, out_width: int, out_height: int) -> str:
    """nvarguscamerasrc -> NVMM -> nvvidconv (scale + flip on the VIC) -> BGR appsink keeping 1 buffer."""
    return (
        f"nvarguscamerasrc sensor-id={sensor} ! "
        f"video/x-raw(memory:NVMM),width={width},height={height},framerate={fps}/1 ! "
        f"nvvidconv flip-method={flip} ! video/x-raw,width={out_width},height={out_height},format=BGRx ! "
        "videoconvert ! video/x-raw,format=BGR ! appsink drop=1 max-buffers=1 sync=false"
    )


class _CaptureSource(FrameSource):
    """Shared cv2.VideoCapture handling."""

    def __init__(self, uri: str) -> None:
        super().__init__(uri)
        self._cap: Any = None
        self._index = 0

    def _open_capture(self, target: str | int, api: int) -> None:
        self.close()
        cap = cv2.VideoCapture(target, api)
        if not cap.isOpened():
            cap.release()
            raise CameraError(f"{self.uri}: OpenCV could not open {target!r}")
        self._cap, self._index = cap, 0

    def read(self) -> tuple[np.ndarray, int] | None:
        if self._cap is None:
            return None
        ok, img = self._cap.read()
        if not ok or img is None:
            return None
        i = self._index
        self._index += 1
        return img, i

    def close(self) -> None:
        if self._cap is not None:
            self._cap.release()
            self._cap = None


class CsiSource(_CaptureSource):
    """A Jetson CSI camera through GStreamer's ``nvarguscamerasrc`` (``csi://N``): capture at
    ``width`` x ``height`` and ``fps``, scaled to ``out_width`` x ``out_height`` and flipped on the VIC.
    """

    live = True

    def __init__(self, u: CameraURI) -> None:
        super().__init__(u.uri)
        w, h = int(u.opt("width", 1280)), int(u.opt("height", 720))
        self.pipeline = csi_pipeline(
            int(u.target), w, h, int(u.opt("fps", 30)), int(u.opt("flip", 0)),
            int(u.opt("out_width", w)), int(u.opt("out_height", h)),
        )

    def check(self) -> None:
        """Raise :class:`CameraConfigError` (with the JetPack OpenCV fix) when OpenCV has no GStreamer."""
        if not opencv_has_gstreamer():
            raise CameraConfigError(
                f"{self.uri} needs OpenCV built with GStreamer, but this OpenCV ({cv2.__version__}, "
                f"{Path(cv2.__file__).parent}) has none; on the Jetson use JetPack's system OpenCV: "
                "create the venv with --system-site-packages and `pip uninstall opencv-python "
                "opencv-python-headless` (see jetson/install.sh)"
            )

    def open(self) -> None:
        """Open the GStreamer pipeline; :class:`CameraError` when OpenCV cannot."""
        self._open_capture(self.pipeline, cv2.CAP_GSTREAMER)


class V4l2Source(_CaptureSource):
    """A V4L2 device (``v4l2:///dev/videoN``) with optional ``width``, ``height``, ``fps`` and ``fourcc``
    (4 characters, e.g. MJPG; :class:`CameraConfigError` otherwise).
    """

    live = True

    def __init__(self, u: CameraURI) -> None:
        super().__init__(u.uri)
        self.device = u.target
        self.props: list[tuple[int, float]] = []
        fourcc = str(u.opt("fourcc", ""))
        if fourcc:
            if len(fourcc) != 4:
                raise CameraConfigError(f"{u.uri}: fourcc must have 4 characters, e.g. MJPG or YUYV")
            self.props.append((cv2.CAP_PROP_FOURCC, float(cv2.VideoWriter.fourcc(*fourcc))))
        for key, prop in (("width", cv2.CAP_PROP_FRAME_WIDTH), ("height", cv2.CAP_PROP_FRAME_HEIGHT),
                          ("fps", cv2.CAP_PROP_FPS)):
            if key in u.options:
                self.props.append((prop, float(u.options[key])))

    def open(self) -> None:
        """Open the device, apply the requested properties and a 1-frame driver buffer (no stale queued
        frames); :class:`CameraError` when the device is missing or OpenCV cannot open it.
        """
        if not os.path.exists(self.device):
            raise CameraError(f"{self.device} does not exist (camera unplugged?)")
        self._open_capture(self.device, cv2.CAP_V4L2)
        for prop, value in self.props:
            self._cap.set(prop, value)
        # Keep the driver's queue short: an old buffered frame is a stale frame.
        self._cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)


def _file_pacing(u: CameraURI, native_fps: float) -> tuple[float | None, bool]:
    realtime = bool(u.opt("realtime", True))
    fps = float(u.opt("fps", 0.0)) or native_fps or DEFAULT_FILE_FPS
    return (1.0 / fps if realtime else None), not realtime


class VideoFileSource(_CaptureSource):
    """A video file. ``loop=1`` starts over at the end; ``realtime=1`` (default) publishes frames at
    the file's frame rate (or ``fps=``) and lets the loop drop frames like a camera would;
    ``realtime=0`` publishes every frame and waits for the loop to take it (no drops)."""

    def __init__(self, u: CameraURI) -> None:
        super().__init__(u.uri)
        self.path = Path(u.target)
        self.loop = bool(u.opt("loop", False))
        self._u = u

    def check(self) -> None:
        """:class:`CameraConfigError` when the file does not exist; opens it once to read its frame rate
        for pacing (``CameraError`` when OpenCV cannot decode it).
        """
        if not self.path.is_file():
            raise CameraConfigError(f"{self.uri}: no video file or image folder at {self.path}")
        self.open()
        native = float(self._cap.get(cv2.CAP_PROP_FPS) or 0.0)
        self.close()
        self.pacing_s, self.lossless = _file_pacing(self._u, native if 0 < native < 1000 else 0.0)

    def open(self) -> None:
        """Open the file from its first frame; :class:`CameraError` when OpenCV cannot."""
        self._open_capture(str(self.path), cv2.CAP_ANY)

    def read(self) -> tuple[np.ndarray, int] | None:
        """The next ``(BGR uint8 image, frame number)``; with ``loop=1`` the file restarts at its end, else
        None there.
        """
        got = super().read()
        if got is None and self.loop and self._index > 0:
            self.open()  # reopening is more reliable than seeking for many codecs
            got = super().read()
        return got


class ImageFolderSource(FrameSource):
    """A directory of images in name order (``.jpg .jpeg .png .bmp``); options as for video files.
    Unreadable images are skipped with a warning."""

    def __init__(self, u: CameraURI) -> None:
        super().__init__(u.uri)
        self.path = Path(u.target)
        self.loop = bool(u.opt("loop", False))
        self.pacing_s, self.lossless = _file_pacing(u, 0.0)
        self.files: list[Path] = []
        self._pos = 0

    def check(self) -> None:
        """List the images; :class:`CameraConfigError` when the folder has none."""
        self.files = sorted(p for p in self.path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not self.files:
            raise CameraConfigError(f"{self.uri}: no {'/'.join(IMAGE_SUFFIXES)} images in {self.path}")

    def open(self) -> None:
        """Start at the first image."""
        self._pos = 0

    def read(self) -> tuple[np.ndarray, int] | None:
        """The next readable ``(BGR uint8 image, position in name order)``, or None at the end (without
        ``loop=1``).
        """
        tried = 0
        while tried <= len(self.files):
            if self._pos >= len(self.files):
                if not self.loop:
                    return None
                self._pos = 0
            i = self._pos
            self._pos += 1
            tried += 1
            img = cv2.imread(str(self.files[i]), cv2.IMREAD_COLOR)
            if img is not None:
                return img, i
            log.warning("%s: cannot read %s; skipping it", self.uri, self.files[i].name)
        return None

    def close(self) -> None:
        """Rewind (no resources are held)."""
        self._pos = 0


class MemorySource(FrameSource):
    """Frames already in memory (benchmarks, tools): every frame (``lossless``) or paced like a
    camera (``pacing_s``). Not reachable by URI: construct it and pass it to :class:`Camera`."""

    def __init__(self, frames: list[np.ndarray], lossless: bool = True, pacing_s: float | None = None,
                 loop: bool = False) -> None:
        super().__init__(f"memory://{len(frames)}-frames")
        self.frames, self.lossless, self.pacing_s, self.loop = frames, lossless, pacing_s, loop
        self._pos = 0

    def check(self) -> None:
        """:class:`CameraConfigError` when there are no frames."""
        if not self.frames:
            raise CameraConfigError("memory source has no frames")

    def open(self) -> None:
        """Start at the first frame."""
        self._pos = 0

    def read(self) -> tuple[np.ndarray, int] | None:
        """The next ``(frame, index)`` as given (not copied), or None at the end (without ``loop``)."""
        if self._pos >= len(self.frames):
            if not self.loop:
                return None
            self._pos = 0
        i = self._pos
        self._pos += 1
        return self.frames[i], i

    def close(self) -> None:
        """Rewind (no resources are held)."""
        self._pos = 0


def make_source(uri: str) -> FrameSource:
    """URI -> source object (not yet opened; :meth:`FrameSource.check` not yet called)."""
    u = parse_camera_uri(uri)
    if u.kind == "csi":
        return CsiSource(u)
    if u.kind == "v4l2":
        return V4l2Source(u)
    if Path(u.target).is_dir():
        return ImageFolderSource(u)
    return VideoFileSource(u)
