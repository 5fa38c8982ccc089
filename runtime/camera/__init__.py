"""Camera sources behind one interface, chosen by URI (``csi://0``, ``v4l2:///dev/video0``,
``file://x.mp4?loop=1&realtime=1``, a folder of images). See :mod:`runtime.camera.uri`."""

from __future__ import annotations

from collections.abc import Callable

from runtime.camera.base import CameraConfigError, CameraError, CameraFrame, FrameSource
from runtime.camera.capture import Camera, Prepare
from runtime.camera.sources import MemorySource, make_source, opencv_has_gstreamer
from runtime.camera.uri import CameraURI, parse_camera_uri
from runtime.events import Events

__all__ = [
    "Camera",
    "CameraConfigError",
    "CameraError",
    "CameraFrame",
    "CameraURI",
    "FrameSource",
    "MemorySource",
    "Prepare",
    "make_source",
    "open_camera",
    "opencv_has_gstreamer",
    "parse_camera_uri",
]


def open_camera(
    uri: str, events: Events | None = None, reconnect_interval_s: float = 0.5,
    prepare: Callable[[], Prepare] | None = None,
) -> Camera:
    """A started :class:`Camera` for ``uri``; :class:`CameraConfigError` if it can never work.
    ``prepare`` makes a per-buffer preprocessing function (``lambda: Preprocessor(spec)``)."""
    return Camera(make_source(uri), events, reconnect_interval_s, prepare).start()
