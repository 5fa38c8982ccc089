"""Fixtures for the provider tests: real road frames and a frame factory."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import numpy as np
import pytest

from runtime.camera.base import CameraFrame
from runtime.manifest import PreprocessSpec

SPEC = PreprocessSpec(width=80, height=60, crop_top=20)


@pytest.fixture(scope="session")
def road_frames() -> np.ndarray:
    """Eight real frames of the synthetic road (BGR uint8, 120x160)."""
    from converter.demo.track import drive_sequence

    frames, _, _ = drive_sequence(8, seed=3)
    return np.asarray(frames)


MakeFrame = Callable[..., CameraFrame]


@pytest.fixture
def make_frame() -> MakeFrame:
    """CameraFrame(id counting from 1, t_capture = now unless given, image, input=None unless given)."""
    ids = itertools.count(1)

    def make(image: np.ndarray, t_capture: float | None = None, x: np.ndarray | None = None) -> CameraFrame:
        i = next(ids)
        return CameraFrame(i, time.monotonic() if t_capture is None else t_capture, image, i - 1, x)

    return make
