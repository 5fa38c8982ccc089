"""Role image_sequence: the last T preprocessed frames, oldest first, not ready until full."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from runtime.inputs import ImageSequenceProvider, InputError
from runtime.preprocess import Preprocessor, preprocess_frame
from tests.runtime.inputs.conftest import SPEC, MakeFrame

T = 3


def nchw(pre: Preprocessor) -> Callable[[np.ndarray], np.ndarray]:
    return lambda img: np.ascontiguousarray(pre(img).transpose(0, 3, 1, 2))


def test_not_ready_until_full_then_oldest_first(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageSequenceProvider("img_in", (1, T, 40, 80, 3), Preprocessor(SPEC), gap_s=1.0)
    expected = [preprocess_frame(f, SPEC)[0] for f in road_frames]
    t0 = 100.0
    for i, img in enumerate(road_frames):
        x = p.fill(make_frame(img, t_capture=t0 + 0.05 * i))
        if i < T - 1:
            assert x is None
            assert p.event == "input.not_ready" and f"{i + 1} of {T}" in p.detail
            continue
        assert x is not None and x.shape == (1, T, 40, 80, 3) and x.dtype == np.float32
        np.testing.assert_array_equal(x[0], np.stack(expected[i - T + 1 : i + 1]))  # wraps the ring twice
        assert x.flags.c_contiguous and np.shares_memory(x, p._ring)  # a view: no copy per frame
        assert p.recorded() == {"frame_ids": [i - T + 2, i - T + 3, i + 1]}


def test_ntchw_layout(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageSequenceProvider("img_in", (1, T, 3, 40, 80), nchw(Preprocessor(SPEC)), gap_s=1.0)
    for i, img in enumerate(road_frames[:4]):
        x = p.fill(make_frame(img, t_capture=10.0 + 0.05 * i))
    assert x is not None
    want = np.stack([preprocess_frame(f, SPEC)[0].transpose(2, 0, 1) for f in road_frames[1:4]])
    np.testing.assert_array_equal(x[0], want)


def test_a_gap_longer_than_the_deadline_restarts_the_window(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageSequenceProvider("img_in", (1, T, 40, 80, 3), Preprocessor(SPEC), gap_s=0.1)
    times = [0.0, 0.05, 0.10, 0.15, 0.40, 0.45, 0.50]  # a 250 ms camera stall after the 4th frame
    ready = [p.fill(make_frame(img, t_capture=t)) is not None for img, t in zip(road_frames, times, strict=False)]
    assert ready == [False, False, True, True, False, False, True]
    assert p.restarts == 1
    x = p.out
    np.testing.assert_array_equal(x[0], np.stack([preprocess_frame(f, SPEC)[0] for f in road_frames[4:7]]))


def test_reset_empties_the_window(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageSequenceProvider("img_in", (1, 2, 40, 80, 3), Preprocessor(SPEC), gap_s=1.0)
    assert p.fill(make_frame(road_frames[0], 0.0)) is None
    assert p.fill(make_frame(road_frames[1], 0.01)) is not None
    p.reset()
    assert p.fill(make_frame(road_frames[2], 0.02)) is None


def test_a_frame_of_the_wrong_shape_is_an_error(road_frames: np.ndarray, make_frame: MakeFrame) -> None:
    p = ImageSequenceProvider("img_in", (1, T, 3, 40, 80), Preprocessor(SPEC), gap_s=1.0)  # NTCHW fed NHWC
    with pytest.raises(ValueError, match="img_in"):
        p.fill(make_frame(road_frames[0]))


def test_a_shape_without_a_time_axis_is_refused() -> None:
    with pytest.raises(InputError, match="img_in"):
        ImageSequenceProvider("img_in", (1, 40), Preprocessor(SPEC), gap_s=1.0)
