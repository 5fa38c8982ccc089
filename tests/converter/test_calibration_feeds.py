"""INT8 calibration data for every input: layouts, sequences and vector values (recorded or reference)."""

from __future__ import annotations

import numpy as np
import pytest

from converter.calibration_feeds import model_feeds
from converter.reference import Reference
from runtime.manifest import InputSpec, Manifest, ModelInfo, OutputSpec, PreprocessSpec

PRE = PreprocessSpec(4, 3)


def _manifest(*inputs: InputSpec) -> Manifest:
    return Manifest(ModelInfo("m", "1", None, "models:/m-1", "keras"), list(inputs),
                    [OutputSpec("s", (1, 1), "steering")], [], "", "test")


def test_sequence_windows_nchw_and_vectors() -> None:
    images = np.arange(5 * 3 * 4 * 3, dtype=np.float32).reshape(5, 3, 4, 3)
    m = _manifest(
        InputSpec("seq", (1, 2, 3, 3, 4), "float32", "NTCHW", PRE, role="image_sequence", length=2),
        InputSpec("imu", (1, 6), "float32", "NC", role="imu"),
        InputSpec("mem", (1, 2), "float32", "NC", role="memory", length=1),
    )
    ref = Reference(np.zeros((3, 3, 4, 3), np.uint8), {}, "t", {"imu": np.ones((3, 6), np.float32)})
    got = model_feeds(m, images, {"mem": np.full((2, 2), 7.0, np.float32)}, ref)
    assert got["seq"].shape == (5, 2, 3, 3, 4)
    # sample 3 holds frames 2 then 3, channels first
    np.testing.assert_array_equal(got["seq"][3, 0], images[2].transpose(2, 0, 1))
    np.testing.assert_array_equal(got["seq"][3, 1], images[3].transpose(2, 0, 1))
    np.testing.assert_array_equal(got["seq"][0, 0], images[0].transpose(2, 0, 1))  # before the start: the first frame repeats
    assert got["imu"].shape == (5, 6) and np.all(got["imu"] == 1.0)  # reference values, repeated
    assert got["mem"].shape == (5, 2) and np.all(got["mem"] == 7.0)  # recorded values win


def test_an_input_without_values_is_named() -> None:
    m = _manifest(InputSpec("img", (1, 3, 4, 3), "float32", "NHWC", PRE),
                  InputSpec("b", (1, 2), "float32", "NC", role="behavior", labels=("l", "r")))
    with pytest.raises(ValueError, match="no calibration values for input 'b'"):
        model_feeds(m, np.zeros((2, 3, 4, 3), np.float32), {}, None)
