"""Role image: the capture thread's buffer handed on as is, or the frame preprocessed here."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.inputs import ImageProvider
from runtime.preprocess import Preprocessor, preprocess_frame
from tests.runtime.inputs.conftest import SPEC, MakeFrame

SHAPE = (1, 40, 80, 3)


def test_frame_input_is_fed_without_a_copy(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    ready = Preprocessor(SPEC)(road_frames[0])  # what the capture thread made
    p = ImageProvider("img_in", SHAPE, Preprocessor(SPEC), use_frame_input=True)
    assert p.fill(make_frame(road_frames[0], x=ready)) is ready


def test_preprocesses_the_frame_itself_otherwise(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageProvider("img_in", SHAPE, Preprocessor(SPEC), use_frame_input=False)
    for img in road_frames[:3]:
        other = Preprocessor(SPEC)(img)  # made for another spec: must not be used
        other += 1.0
        x = p.fill(make_frame(img, x=other))
        assert x is not None and x.dtype == np.float32
        np.testing.assert_array_equal(x, preprocess_frame(img, SPEC))
    assert p.recorded() is None  # the recorded frame image is this input


def test_a_shape_that_disagrees_with_the_model_is_an_error(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageProvider("img_in", (1, 60, 80, 3), Preprocessor(SPEC))
    with pytest.raises(ValueError, match=r"img_in.*\(1, 40, 80, 3\).*\(1, 60, 80, 3\)"):
        p.fill(make_frame(road_frames[0]))
