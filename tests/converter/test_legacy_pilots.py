"""Pilots written by the old toolchains (tests/converter/fixtures/legacy/MANIFEST.md) convert, and
their builds match what the old toolchain computed, or they get the named error."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.cli import main
from runtime.manifest import load_manifest
from tests.converter.legacy_helpers import FIXTURES, build_errors, register_file

pytestmark = pytest.mark.slow

DONKEY_PRE = {"width": 80, "height": 64}  # the fixtures' small input; scale 1/255 as donkeycar's
BC_PRE = {"width": 32, "height": 24}


def run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    cap = capfd.readouterr()
    return code, cap.out + "\n" + cap.err


@pytest.mark.parametrize("stem, decoders, source", [
    ("donkey3_linear_tf223", {"steering": "scalar", "throttle": "scalar"}, "folder"),
    ("donkey3_categorical_tf223", {"steering": "bins", "throttle": "bins"}, "file"),
])
def test_donkeycar_tf2_pilot_converts(tmp_path: Path, capfd: pytest.CaptureFixture[str], stem: str,
                                      decoders: dict[str, str], source: str) -> None:
    """donkeycar's own output names are recognised (no --outputs); the file is the version's source
    for the categorical one."""
    uri = register_file(tmp_path, [FIXTURES / f"{stem}.h5"], source=source, preprocess=DONKEY_PRE)
    code, text = run(["--name", "pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx,tflite-fp32,tflite-fp16", "--no-log"], capfd)
    assert code == 0, text[-3000:]
    bundle = tmp_path / "b" / "pilot" / "v1"
    m = load_manifest(bundle)
    assert m.model.flavor == f"h5:{stem}.h5"
    assert {o.meaning: o.decode["kind"] for o in m.outputs} == decoders
    errors = build_errors(bundle, FIXTURES / f"{stem}.npz")
    assert errors["onnx"] <= 1e-5 and errors["tflite-fp32"] <= 1e-5, errors
    assert errors["tflite-fp16"] <= 1e-2, errors


def test_keras2_lambda_pilot_named_then_converted(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    uri = register_file(tmp_path, [FIXTURES / "bc_lambda_keras216.h5"], preprocess=BC_PRE)
    argv = ["--name", "pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
            "--formats", "onnx,tflite-fp32", "--no-log"]
    code, text = run(argv, capfd)
    assert code == 2
    assert "Keras 2.1.6" in text and "Lambda layer 'normalize'" in text and "--custom-objects" in text
    assert "Traceback" not in text
    assert not (tmp_path / "b").exists()  # not even an empty builds/pilot/

    # The stand-in scales raw pixels itself: a --scale on top would scale them twice.
    code, text = run([*argv, "--custom-objects", "tests.converter.legacy_layers:LAMBDA", "--scale", "0.00392"], capfd)
    assert code == 2 and "rescales pixels itself (layer 'normalize')" in text and "drop that scale" in text, text
    assert not (tmp_path / "b").exists()

    code, text = run([*argv, "--custom-objects", "tests.converter.legacy_layers:LAMBDA"], capfd)
    assert code == 0, text[-3000:]
    bundle = tmp_path / "b" / "pilot" / "v1"
    pre = load_manifest(bundle).camera_input.preprocess
    assert pre is not None and pre.scale == 1.0  # the stand-in rescales: raw pixels in
    errors = build_errors(bundle, FIXTURES / "bc_lambda_keras216.npz")
    assert max(errors.values()) <= 1e-4, errors


def test_keras1_pilot_names_version_and_fix(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    uri = register_file(tmp_path, [FIXTURES / "bc_lambda_keras122.h5"], preprocess=BC_PRE)
    code, text = run(["--name", "pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--custom-objects", "tests.converter.legacy_layers:LAMBDA", "--no-log"], capfd)
    assert code == 2
    assert "written by Keras 1.2.2" in text and "keras==2.1.6" in text and "'normalize'" in text
    assert "pop expected" not in text and "Traceback" not in text


def test_keras1_pilot_resaved_as_told_converts(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    """The re-save recipe in the Keras 1 error works: the result matches Keras 1.2.2's own outputs."""
    uri = register_file(tmp_path, [FIXTURES / "bc_lambda_keras122_resaved_keras216.h5"], preprocess=BC_PRE)
    code, text = run(["--name", "pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx,tflite-fp32", "--custom-objects", "tests.converter.legacy_layers:LAMBDA",
                      "--no-log"], capfd)
    assert code == 0, text[-3000:]
    errors = build_errors(tmp_path / "b" / "pilot" / "v1", FIXTURES / "bc_lambda_keras122.npz")
    assert max(errors.values()) <= 1e-4, errors


@pytest.mark.parametrize("source", ["runs", "nested"])
def test_other_version_sources(tmp_path: Path, capfd: pytest.CaptureFixture[str], source: str) -> None:
    uri = register_file(tmp_path, [FIXTURES / "donkey3_linear_tf223.h5"], source=source, preprocess=DONKEY_PRE)
    code, text = run(["--name", "pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx", "--no-log"], capfd)
    assert code == 0, text[-3000:]


def test_several_model_files_need_model_file(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    files = [FIXTURES / "donkey3_linear_tf223.h5", FIXTURES / "donkey3_categorical_tf223.h5"]
    uri = register_file(tmp_path, files, preprocess=DONKEY_PRE)
    argv = ["--name", "pilot", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
            "--formats", "onnx", "--no-log"]
    code, text = run(argv, capfd)
    assert code == 2
    assert "2 model files" in text and "donkey3_linear_tf223.h5" in text and "--model-file" in text
    code, text = run([*argv, "--model-file", "donkey3_linear_tf223.h5"], capfd)
    assert code == 0, text[-3000:]
