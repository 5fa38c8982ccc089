"""Reusing an existing bundle: only one made from the same inputs (its key), and of that only the
builds whose files still match their sha256; a damaged build is rebuilt, never carried over."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from converter.cache import reusable_manifest
from runtime.manifest import BuildEntry, InputSpec, Manifest, ModelInfo, OutputSpec, PreprocessSpec, TensorIO


def bundle(tmp: Path, key: str = "k1") -> Manifest:
    builds = []
    for fmt, file in (("onnx", "model.onnx"), ("tflite-fp32", "model_fp32.tflite")):
        data = f"{fmt} bytes".encode()
        (tmp / file).write_bytes(data)
        io = {"image": TensorIO("image", "float32"), "angle": TensorIO("angle", "float32")}
        builds.append(BuildEntry(fmt, "fp32", file, hashlib.sha256(data).hexdigest(), len(data), io))
    m = Manifest(ModelInfo("rc_pilot", "3", "r", "models:/m-1", "keras"),
                 [InputSpec("image", (1, 120, 160, 3), "float32", "NHWC", PreprocessSpec(160, 120))],
                 [OutputSpec("angle", (1, 1), "steering")], builds, "2026-11-30T12:00:00+00:00", "0.4.0",
                 source={"key": key})
    (tmp / "manifest.json").write_text(m.dumps())
    return m


def test_same_key_reuses_every_intact_build(tmp_path: Path) -> None:
    written = bundle(tmp_path)
    m = reusable_manifest(tmp_path, "k1")
    assert m is not None and m.to_dict() == written.to_dict()


def test_a_damaged_build_is_dropped_and_logged(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bundle(tmp_path)
    (tmp_path / "model_fp32.tflite").write_bytes(b"truncated")
    (tmp_path / "model.onnx").unlink()
    (tmp_path / "model.onnx").write_bytes(b"onnx bytes")  # rewritten with the same bytes: still intact
    with caplog.at_level(logging.WARNING, logger="converter.cache"):
        m = reusable_manifest(tmp_path, "k1")
    assert m is not None and [b.format for b in m.builds] == ["onnx"]
    assert [r.getMessage() for r in caplog.records] == [
        "not reusing tflite-fp32: tflite-fp32: model_fp32.tflite sha256 "
        f"{hashlib.sha256(b'truncated').hexdigest()[:12]}… does not match the manifest's "
        f"{hashlib.sha256(b'tflite-fp32 bytes').hexdigest()[:12]}…; the file was modified or corrupted, "
        "re-copy the bundle"]


def test_another_key_or_no_bundle_reuses_nothing(tmp_path: Path) -> None:
    assert reusable_manifest(tmp_path, "k1") is None  # no manifest.json
    bundle(tmp_path, key="k0")
    assert reusable_manifest(tmp_path, "k1") is None
    (tmp_path / "manifest.json").write_text("{broken")
    assert reusable_manifest(tmp_path, "k0") is None
