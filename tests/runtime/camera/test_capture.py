"""Capture thread on real files and folders: newest frame only, ids, drops, end, reconnect."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from runtime.camera import (
    Camera,
    CameraConfigError,
    CameraError,
    FrameSource,
    open_camera,
    opencv_has_gstreamer,
)
from runtime.camera.sources import VideoFileSource, make_source
from runtime.camera.uri import parse_camera_uri
from runtime.events import Events
from tests.runtime.helpers import N_FRAMES


def take_all(cam: Camera, timeout: float = 5.0) -> list:
    frames = []
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        f = cam.get(0.5)
        if f is None:
            if cam.ended:
                break
            continue
        frames.append(f)
    return frames


def test_every_frame_mode_delivers_each_frame_once_in_order(clip_video: Path, clip_decoded: list[np.ndarray]) -> None:
    with open_camera(f"file://{clip_video}?realtime=0") as cam:
        frames = take_all(cam)
        assert cam.ended
        st = cam.stats()
    assert [f.id for f in frames] == list(range(1, N_FRAMES + 1))
    assert [f.index for f in frames] == list(range(N_FRAMES))
    assert all(np.array_equal(f.image, ref) for f, ref in zip(frames, clip_decoded, strict=True))
    assert st["captured"] == st["delivered"] == N_FRAMES and st["dropped"] == 0
    ts = [f.t_capture for f in frames]
    assert ts == sorted(ts)


def test_realtime_keeps_only_the_newest_frame_and_counts_drops(clip_video: Path) -> None:
    # 200 fps source, a consumer 6x slower: most frames are dropped, none is seen twice.
    with open_camera(f"file://{clip_video}?realtime=1&fps=200") as cam:
        got = []
        while not cam.ended:
            f = cam.get(0.5)
            if f is not None:
                got.append(f)
                time.sleep(0.03)
        st = cam.stats()
    ids = [f.id for f in got]
    assert ids == sorted(set(ids))  # strictly increasing: never twice
    assert st["dropped"] > N_FRAMES // 3
    assert st["captured"] == N_FRAMES == st["delivered"] + st["dropped"]


def test_realtime_paces_at_the_file_rate(clip_video: Path) -> None:
    with open_camera(f"file://{clip_video}?realtime=1&fps=100") as cam:
        frames = take_all(cam)
        st = cam.stats()
    # Paced like a camera: on a loaded machine a frame may be dropped (counted), so the frames
    # taken span the intervals between their own source indices, 10 ms each.
    assert st["captured"] == N_FRAMES == st["delivered"] + st["dropped"] and len(frames) == st["delivered"]
    intervals = frames[-1].index - frames[0].index
    assert intervals >= N_FRAMES // 2 and [f.index for f in frames] == sorted({f.index for f in frames})
    span = frames[-1].t_capture - frames[0].t_capture
    # generous bounds for a loaded machine (47 intervals: 0.3 s < span < 1.5 s)
    assert 0.3 * intervals / (N_FRAMES - 1) < span < 1.5


def test_loop_restarts_the_file_and_ids_keep_counting(clip_video: Path) -> None:
    with open_camera(f"file://{clip_video}?realtime=0&loop=1") as cam:
        frames = [cam.get(2.0) for _ in range(N_FRAMES + 5)]
    assert all(f is not None for f in frames)
    assert [f.id for f in frames if f] == list(range(1, N_FRAMES + 6))
    assert [f.index for f in frames[N_FRAMES:] if f] == [0, 1, 2, 3, 4]


def test_image_folder_in_name_order_skipping_unreadable_files(tmp_path: Path, clip_folder: Path) -> None:
    folder = tmp_path / "imgs"
    folder.mkdir()
    files = sorted(clip_folder.iterdir())[:5]
    for i, f in enumerate(files):
        (folder / f"{i:03d}{f.suffix}").write_bytes(f.read_bytes())
    (folder / "002b.png").write_bytes(b"not a png")
    (folder / "notes.txt").write_text("ignored")
    with open_camera(f"file://{folder}?realtime=0") as cam:
        frames = take_all(cam)
    assert len(frames) == 5
    assert [f.index for f in frames] == [0, 1, 2, 4, 5]  # 002b.png (index 3) skipped
    first = cv2.imread(str(files[0]))
    assert first is not None and np.array_equal(frames[0].image, first)


def test_missing_files_and_empty_folders_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(CameraConfigError, match="no video file or image folder"):
        open_camera(f"file://{tmp_path}/nope.mp4")
    with pytest.raises(CameraConfigError, match=r"no \.jpg/\.jpeg/\.png/\.bmp images"):
        open_camera(f"file://{tmp_path}")


@pytest.mark.skipif(opencv_has_gstreamer(), reason="this OpenCV has GStreamer; the error path cannot be shown")
def test_csi_without_gstreamer_says_how_to_fix_it() -> None:
    with pytest.raises(CameraConfigError, match=r"needs OpenCV built with GStreamer.*JetPack's system OpenCV"):
        open_camera("csi://0")


def test_a_missing_v4l2_device_is_retried_not_fatal() -> None:
    events = Events()
    with open_camera("v4l2:///dev/video-rc-test-missing", events, reconnect_interval_s=0.02) as cam:
        assert cam.get(0.2) is None
        assert not cam.ended
        time.sleep(0.1)
        st = cam.stats()
    assert st["failures"] >= 3
    assert events.summary()["camera.disconnected"]["episodes"] == 1  # one episode, many retries


class Unpluggable(FrameSource):
    """A real video source behind a cable the test can pull: no camera can be unplugged here."""

    live = True

    def __init__(self, inner: VideoFileSource) -> None:
        super().__init__("unpluggable://" + inner.uri)
        self.inner = inner
        self.plugged = threading.Event()
        self.plugged.set()

    def check(self) -> None:
        self.inner.check()
        self.pacing_s = self.inner.pacing_s

    def open(self) -> None:
        if not self.plugged.is_set():
            raise CameraError("no such device")
        self.inner.open()

    def read(self) -> tuple[np.ndarray, int] | None:
        return self.inner.read() if self.plugged.is_set() else None

    def close(self) -> None:
        self.inner.close()


def test_reconnects_after_an_unplug(clip_video: Path) -> None:
    src = Unpluggable(VideoFileSource(parse_camera_uri(f"file://{clip_video}?realtime=1&fps=100&loop=1")))
    events = Events()
    with Camera(src, events, reconnect_interval_s=0.02).start() as cam:
        before = [cam.get(1.0) for _ in range(3)]
        src.plugged.clear()
        time.sleep(0.05)
        while cam.get(0.05) is not None:  # what was captured before the pull
            pass
        assert cam.get(0.2) is None and events.active("camera.disconnected")
        src.plugged.set()
        after = cam.get(2.0)
        st = cam.stats()
    assert all(before) and after is not None
    assert after.id > max(f.id for f in before if f)
    assert after.index == 0  # the device was reopened
    assert st["reconnects"] == 1 and not events.active("camera.disconnected")
    assert events.summary()["camera.disconnected"]["episodes"] == 1


def test_make_source_picks_by_uri(clip_video: Path, clip_folder: Path) -> None:
    assert type(make_source(str(clip_video))).__name__ == "VideoFileSource"
    assert type(make_source(str(clip_folder))).__name__ == "ImageFolderSource"
    assert type(make_source("csi://0")).__name__ == "CsiSource"
    assert type(make_source("/dev/video0")).__name__ == "V4l2Source"


def test_prepared_inputs_are_never_overwritten_while_the_loop_holds_them(clip_video: Path) -> None:
    from runtime.manifest import PreprocessSpec
    from runtime.preprocess import Preprocessor, preprocess_frame

    spec = PreprocessSpec(width=160, height=120, crop_top=20)
    # 200 fps into a consumer that holds each frame for 15 ms: the capture thread keeps filling
    # buffers (and dropping frames) while the loop reads the one it holds.
    with open_camera(f"file://{clip_video}?realtime=1&fps=200", prepare=lambda: Preprocessor(spec)) as cam:
        checked = 0
        while not cam.ended:
            f = cam.get(0.5)
            if f is None:
                continue
            assert f.input is not None and f.t_ready >= f.t_capture
            snapshot = f.input.copy()
            time.sleep(0.015)
            assert np.array_equal(f.input, snapshot)
            assert np.array_equal(f.input, preprocess_frame(f.image, spec))
            checked += 1
        assert cam.stats()["dropped"] > 0
    assert checked >= 5


def test_memory_source_every_frame_and_paced() -> None:
    from runtime.camera import MemorySource

    frames = [np.full((4, 4, 3), i, np.uint8) for i in range(10)]
    with Camera(MemorySource(frames)) as cam:
        got = take_all(cam)
    assert [int(f.image[0, 0, 0]) for f in got] == list(range(10))
    with Camera(MemorySource(frames, lossless=False, pacing_s=0.01)) as cam:
        got = take_all(cam)
    assert 0.05 < got[-1].t_capture - got[0].t_capture < 1.0


class CrashingOnce(Unpluggable):
    """A live camera whose driver raises once mid-stream (e.g. cv2.error on a corrupt buffer)."""

    def __init__(self, inner: VideoFileSource) -> None:
        super().__init__(inner)
        self.reads = 0

    def read(self) -> tuple[np.ndarray, int] | None:
        self.reads += 1
        if self.reads == 5:
            raise cv2.error("corrupt buffer from the driver")
        return super().read()


def test_a_live_camera_that_crashes_is_reopened_not_ended(clip_video: Path) -> None:
    src = CrashingOnce(VideoFileSource(parse_camera_uri(f"file://{clip_video}?realtime=1&fps=100&loop=1")))
    events = Events()
    with Camera(src, events, reconnect_interval_s=0.02).start() as cam:
        frames = [cam.get(1.0) for _ in range(12)]
        st = cam.stats()
    assert all(f is not None for f in frames) and not cam.ended
    assert st["reconnects"] == 1 and events.summary()["camera.disconnected"]["episodes"] == 1
