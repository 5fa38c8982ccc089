"""TensorRT 8.x calibration caches: reused only for the same TensorRT version, calibration set, ONNX
and input shape; anything else is detected (with the reason) and redone."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from calibration.trt_calibrator import (
    CalibrationCacheKey,
    CalibrationFeeds,
    batch_size_for,
    cache_paths,
    check_calibration_cache,
    header_code,
    make_entropy_calibrator,
    parse_header,
    write_calibration_cache,
)

KEY = CalibrationCacheKey(tensorrt="8.5.2.2", calibration_sha256="c" * 64, onnx_sha256="d" * 64,
                          input_shape=(1, 120, 160, 3))
# The layout TensorRT 8.x writes: a TRT-<version>-<algorithm> line, then "tensor: hex scale" lines.
CACHE_TEXT = b"TRT-8502-EntropyCalibration2\ninput_1: 3c010a14\nmodel/conv2d/Conv2D: 3d237c3a\n"


def test_header_codes_follow_tensorrt_versions() -> None:
    assert header_code("8.6.1") == "8601"
    assert header_code("8.5.2.2") == "8502"
    assert header_code("8.5.10") == "8510"
    assert parse_header(b"TRT-8601-EntropyCalibration2\nimages: 3b66eddc\n") == ("8601", "EntropyCalibration2")
    assert parse_header(b"not a cache") is None


def test_cache_written_here_is_reused(tmp_path: Path) -> None:
    cache, sidecar = cache_paths(tmp_path, KEY.onnx_sha256)
    write_calibration_cache(cache, CACHE_TEXT, KEY)
    assert cache.read_bytes() == CACHE_TEXT and json.loads(sidecar.read_text())["tensorrt"] == "8.5.2.2"
    check = check_calibration_cache(cache, KEY)
    assert check.usable, check.reason


@pytest.mark.parametrize(
    "other,words",
    [
        (replace(KEY, tensorrt="8.6.1"), "TensorRT version"),
        (replace(KEY, calibration_sha256="e" * 64), "calibration set"),
        (replace(KEY, onnx_sha256="f" * 64), "ONNX model"),
        (replace(KEY, input_shape=(1, 96, 160, 3)), "input shape"),
    ],
)
def test_cache_from_another_version_set_model_or_shape_is_redone(tmp_path: Path, other: CalibrationCacheKey,
                                                                  words: str) -> None:
    cache, _ = cache_paths(tmp_path, KEY.onnx_sha256)
    write_calibration_cache(cache, CACHE_TEXT, KEY)
    check = check_calibration_cache(cache, other)
    assert not check.usable and words in check.reason


def test_cache_without_sidecar_is_not_trusted(tmp_path: Path) -> None:
    cache, _ = cache_paths(tmp_path, KEY.onnx_sha256)
    cache.write_bytes(CACHE_TEXT)  # e.g. copied from another machine by hand
    check = check_calibration_cache(cache, KEY)
    assert not check.usable and "sidecar" in check.reason
    assert not check_calibration_cache(tmp_path / "absent.cache", KEY).usable


def test_header_disagreeing_with_sidecar_is_caught(tmp_path: Path) -> None:
    cache, _ = cache_paths(tmp_path, KEY.onnx_sha256)
    write_calibration_cache(cache, CACHE_TEXT.replace(b"8502", b"8601"), KEY)
    check = check_calibration_cache(cache, KEY)
    assert not check.usable and "8601" in check.reason
    write_calibration_cache(cache, CACHE_TEXT.replace(b"EntropyCalibration2", b"MinMaxCalibration"), KEY)
    assert "MinMaxCalibration" in check_calibration_cache(cache, KEY).reason
    write_calibration_cache(cache, b"garbage\n", KEY)
    assert "header" in check_calibration_cache(cache, KEY).reason


def test_corrupt_sidecar_is_not_trusted(tmp_path: Path) -> None:
    cache, sidecar = cache_paths(tmp_path, KEY.onnx_sha256)
    write_calibration_cache(cache, CACHE_TEXT, KEY)
    sidecar.write_text("{not json")
    assert "unreadable" in check_calibration_cache(cache, KEY).reason


def test_no_frames_and_no_valid_cache_is_refused_before_tensorrt(tmp_path: Path,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    cache, _ = cache_paths(tmp_path, KEY.onnx_sha256)
    write_calibration_cache(cache, CACHE_TEXT, replace(KEY, tensorrt="8.6.1"))
    with caplog.at_level(logging.WARNING), pytest.raises(ValueError, match="no usable calibration cache"):
        make_entropy_calibrator(None, cache, KEY)
    assert "recalibrating" in caplog.text and "TensorRT version differs" in caplog.text


def test_frames_must_match_the_model_input(tmp_path: Path) -> None:
    cache, _ = cache_paths(tmp_path, KEY.onnx_sha256)
    with pytest.raises(ValueError, match="shape"):
        make_entropy_calibrator(np.zeros((4, 96, 160, 3), np.float32), cache, KEY)


def test_batch_sizes() -> None:
    assert batch_size_for(1) == 1 and batch_size_for(5) == 5 and batch_size_for(500) == 8
    with pytest.raises(ValueError):
        batch_size_for(0)


MULTI = replace(KEY, inputs=(("img_in", (1, 120, 160, 3)), ("imu_in", (1, 6))))


def test_several_inputs_are_batched_together() -> None:
    feeds = CalibrationFeeds({"img_in": np.zeros((10, 120, 160, 3), np.float32),
                              "imu_in": np.arange(60, dtype=np.float64).reshape(10, 6)}, MULTI.shapes())
    assert feeds.count == 10 and feeds.nbytes(4) == {"img_in": 4 * 120 * 160 * 3 * 4, "imu_in": 4 * 6 * 4}
    b = feeds.batch(4, 4)
    assert b is not None and b["imu_in"].dtype == np.float32 and b["imu_in"][0, 0] == 24.0  # sample 4 of each
    assert feeds.batch(8, 4) is None  # not a whole batch: TensorRT stops
    assert feeds.resolve(["imu_in", "img_in"]) == {"imu_in": "imu_in", "img_in": "img_in"}
    with pytest.raises(ValueError, match=r"network's inputs \['img_in'\] are not the calibration data's"):
        feeds.resolve(["img_in"])  # a calibrator that would otherwise calibrate on nothing
    single = CalibrationFeeds({"": np.zeros((3, 120, 160, 3), np.float32)}, KEY.shapes())
    assert single.resolve(["input_1"]) == {"input_1": ""}


def test_several_inputs_must_all_be_given_with_matching_counts_and_shapes() -> None:
    img, imu = np.zeros((10, 120, 160, 3), np.float32), np.zeros((10, 6), np.float32)
    with pytest.raises(ValueError, match=r"lacks inputs \['imu_in'\]"):
        CalibrationFeeds({"img_in": img}, MULTI.shapes())
    with pytest.raises(ValueError, match=r"'imu_in' has shape \(10, 7\)"):
        CalibrationFeeds({"img_in": img, "imu_in": np.zeros((10, 7), np.float32)}, MULTI.shapes())
    with pytest.raises(ValueError, match="different sample counts"):
        CalibrationFeeds({"img_in": img, "imu_in": imu[:9]}, MULTI.shapes())


def test_the_inputs_are_part_of_the_cache_key(tmp_path: Path) -> None:
    assert "inputs" not in KEY.to_dict()  # single-input caches written before stay valid
    assert MULTI.to_dict()["inputs"] == {"img_in": [1, 120, 160, 3], "imu_in": [1, 6]}
    cache, _ = cache_paths(tmp_path, KEY.onnx_sha256)
    write_calibration_cache(cache, CACHE_TEXT, MULTI)
    assert check_calibration_cache(cache, MULTI).usable
    other = replace(MULTI, inputs=(("img_in", (1, 120, 160, 3)), ("imu_in", (1, 3))))
    assert "model inputs differs" in check_calibration_cache(cache, other).reason
    with pytest.raises(ValueError, match=r"needs CalibrationCacheKey\.inputs"):
        make_entropy_calibrator({"img_in": np.zeros((2, 120, 160, 3), np.float32)}, cache, KEY)
