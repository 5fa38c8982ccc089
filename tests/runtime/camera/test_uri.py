"""Camera URIs: schemes, options, and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.camera import CameraConfigError, parse_camera_uri
from runtime.camera.sources import csi_pipeline


@pytest.mark.parametrize(
    ("uri", "kind", "target", "options"),
    [
        ("csi://0", "csi", "0", {}),
        ("csi://1?width=1920&height=1080&fps=30&flip=2", "csi", "1", {"width": 1920, "height": 1080, "fps": 30, "flip": 2}),
        ("v4l2:///dev/video0?fourcc=MJPG&fps=60", "v4l2", "/dev/video0", {"fourcc": "MJPG", "fps": 60}),
        ("/dev/video2", "v4l2", "/dev/video2", {}),
        ("file:///data/x.mp4?loop=1&realtime=0", "file", "/data/x.mp4", {"loop": True, "realtime": False}),
        ("file://rel/x.mp4?fps=12.5", "file", "rel/x.mp4", {"fps": 12.5}),
        ("/data/frames", "file", "/data/frames", {}),
        ("file:///data/my%20drive.mp4", "file", "/data/my drive.mp4", {}),
    ],
)
def test_parse(uri: str, kind: str, target: str, options: dict[str, object]) -> None:
    u = parse_camera_uri(uri)
    assert (u.kind, u.target, u.options) == (kind, str(Path(target)) if kind == "file" else target, options)


@pytest.mark.parametrize(
    ("uri", "msg"),
    [
        ("", "empty"),
        ("rtsp://cam/stream", "unknown scheme 'rtsp'"),
        ("csi://front", "needs a sensor number"),
        ("csi://0?widht=640", "unknown option 'widht'"),
        ("file://x.mp4?loop=maybe", "loop='maybe' is not a valid bool"),
        ("v4l2:///dev/video0?fps=-1", "must not be negative"),
        ("v4l2://video0", "absolute device path"),
    ],
)
def test_errors(uri: str, msg: str) -> None:
    with pytest.raises(CameraConfigError, match=msg):
        parse_camera_uri(uri)


def test_csi_pipeline_keeps_one_buffer_and_drops() -> None:
    p = csi_pipeline(0, 1280, 720, 60, 0, 320, 240)
    assert p.startswith("nvarguscamerasrc sensor-id=0 ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=60/1")
    assert "nvvidconv flip-method=0 ! video/x-raw,width=320,height=240,format=BGRx" in p
    assert p.endswith("appsink drop=1 max-buffers=1 sync=false")
