"""What every camera source provides, and the frame the capture thread hands to the loop."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np


class CameraError(RuntimeError):
    """A source cannot deliver frames right now (e.g. unplugged); live sources retry."""


class CameraConfigError(CameraError):
    """A source can never work as configured (bad URI, missing file, OpenCV without GStreamer)."""


@dataclass(frozen=True, slots=True)
class CameraFrame:
    """One captured frame.

    ``id`` counts every frame the camera published, from 1, across reconnects and loops of a
    file (so 0 never names a frame: the link's tag 0 means "not from a frame"). ``index`` is the
    frame's position in its source: the frame number in a video file, the image number in a
    folder (sorted by name), or the count since the device was (re)opened. ``t_capture`` is the
    ``time.monotonic()`` at which the frame became available: when the driver handed it over, or
    for a paced file its due time (its simulated exposure). ``input`` is the model input made by
    the camera's ``prepare`` function in the capture thread (``None`` without one), ready at
    ``t_ready``; it lives in a recycled buffer, valid until the next ``Camera.get``.
    """

    id: int
    t_capture: float
    image: np.ndarray
    index: int
    input: np.ndarray | None = None
    t_ready: float = 0.0


class FrameSource(ABC):
    """A blocking producer of BGR uint8 frames, driven by the capture thread.

    ``live`` sources (CSI, V4L2) are reopened after failures; finite sources (files, folders) end.
    ``pacing_s`` is the interval at which the capture thread publishes frames to imitate a
    camera (files with ``realtime=1``), or ``None`` when the source paces itself or is not paced.
    ``lossless`` (files with ``realtime=0``) makes the capture thread wait until the loop has taken
    each frame, so every frame is inferred exactly once (tests, calibration, benchmarks).
    """

    live: bool = False
    pacing_s: float | None = None
    lossless: bool = False

    def __init__(self, uri: str) -> None:
        self.uri = uri

    def check(self) -> None:  # noqa: B027 - optional hook
        """Raise :class:`CameraConfigError` if this source can never work; called once at start."""

    @abstractmethod
    def open(self) -> None:
        """Open the device or file; raise :class:`CameraError` if it is not available now."""

    @abstractmethod
    def read(self) -> tuple[np.ndarray, int] | None:
        """Block for the next frame: ``(BGR image, source index)``, or ``None`` at the end of a
        finite source / on a failed read of a live one."""

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice."""

    def describe(self) -> str:
        """The source's URI, for logs and stats."""
        return self.uri
