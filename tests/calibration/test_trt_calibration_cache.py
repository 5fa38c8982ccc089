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
    batch_size_for,
    cache_paths,
    check_calibration_cache,
    header_code,
    make_entropy_calibrator,
    parse_header,
    write_calibration_cache,
)

KEY = CalibrationCacheKey(tensorrt="8.5.2.2", calibration_sha256="c" * 64, onnx_sha256="d" * 64,
                          input_shapes={"input_1": (1, 120, 160, 3)})
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
        (replace(KEY, input_shapes={"input_1": (1, 96, 160, 3)}), "input shapes"),
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
