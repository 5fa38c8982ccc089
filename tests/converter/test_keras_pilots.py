"""Keras 3 pilots however a team saves and logs them, the seeds' `mlruns` file store, and the
errors a new user meets: each named in one line, never a traceback, nothing left behind."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.cli import main
from runtime.manifest import load_manifest
from tests.converter.legacy_helpers import FIXTURES, register_file
from tests.converter.registry_helpers import register

pytestmark = pytest.mark.slow

SMALL = {"edge.preprocess": json.dumps({"width": 32, "height": 24})}


def run(argv: list[str], capfd: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)
    cap = capfd.readouterr()
    return code, cap.out + "\n" + cap.err


def sequential_pilot(lambda_layer: bool = False) -> Any:
    """A Keras 3 Sequential pilot (24x32 RGB -> steering), as most small pilots are written."""
    import keras

    layers: list[Any] = [keras.Input((24, 32, 3))]
    if lambda_layer:
        layers.append(keras.layers.Lambda(lambda x: x * 2.0 - 1.0, name="normalize"))
    layers += [
        keras.layers.Conv2D(4, 3, strides=2, activation="relu", name="conv"),
        keras.layers.Flatten(name="flat"),
        keras.layers.Dense(1, activation="tanh", name="steering"),
    ]
    model = keras.Sequential(layers, name="seq_pilot")
    keras.utils.set_random_seed(3)
    model.set_weights([np.random.default_rng(3).normal(0, 0.3, w.shape).astype(np.float32)
                       for w in model.get_weights()])
    return model


@pytest.mark.parametrize("how", ["keras-file", "h5-file", "tensorflow-flavor"])
def test_keras3_sequential_every_logging_style(tmp_path: Path, capfd: pytest.CaptureFixture[str], how: str) -> None:
    model = sequential_pilot()
    uri = register(tmp_path, model, how=how, tags=SMALL)
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx,tflite-fp32", "--no-log"], capfd)
    assert code == 0, text[-3000:]
    m = load_manifest(tmp_path / "b" / "m" / "v1")
    assert [o.name for o in m.outputs] == ["steering"]
    assert max(b.parity["max_abs"] for b in m.builds) <= 1e-4


def test_keras3_subclassed_model(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from tests.converter.broken_layers import SubclassedPilot

    model = SubclassedPilot(name="pilot")
    model(np.zeros((1, 24, 32, 3), np.float32))  # built, as a trained model is
    uri = register(tmp_path, model, how="keras-file", tags=SMALL)
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                      "--formats", "onnx,tflite-fp32", "--no-log",
                      "--custom-objects", "tests.converter.broken_layers:CUSTOM"], capfd)
    assert code == 0, text[-3000:]
    m = load_manifest(tmp_path / "b" / "m" / "v1")
    assert [o.meaning for o in m.outputs] == ["steering"]
    assert max(b.parity["max_abs"] for b in m.builds) <= 1e-4


def test_keras3_h5_lambda_is_named(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    uri = register(tmp_path, sequential_pilot(lambda_layer=True), how="h5-file", tags=SMALL)
    code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b")], capfd)
    assert code == 2
    assert "Lambda layer 'normalize'" in text and "--custom-objects" in text and "(unnamed)" not in text
    assert not (tmp_path / "b").exists()


def test_hdf5_that_is_not_a_model(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import h5py
    import tf_keras

    data = tmp_path / "src" / "telemetry.h5"
    data.parent.mkdir()
    with h5py.File(data, "w") as f:
        f["speed"] = np.arange(10.0)
    weights = tmp_path / "src" / "pilot.h5"
    tf_keras.Sequential([tf_keras.Input((4,)), tf_keras.layers.Dense(1)]).save_weights(str(weights))
    for f, expect in ((data, "not a saved Keras model"), (weights, "holds weights only")):
        sub = tmp_path / f.stem
        uri = register_file(sub.parent, [f], name=f.stem, source="file")
        code, text = run(["--name", f.stem, "--version", "1", "--tracking-uri", uri, "--output", str(sub)], capfd)
        assert code == 2 and expect in text, text[-2000:]


def test_mlruns_file_store(tmp_path: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """The seeds' training project tracks to ./mlruns: read without any setup; logging back follows
    MLflow's opt-in and says so; a store copied elsewhere still finds its artifacts."""
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # as the training project had to
    register_file(tmp_path, [FIXTURES / "donkey3_linear_tf223.h5"], uri="mlruns", preprocess={"width": 80, "height": 64})
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE")
    argv = ["--name", "pilot", "--version", "1", "--formats", "onnx", "--output", str(tmp_path / "b")]

    code, text = run([*argv, "--tracking-uri", "mlruns"], capfd)
    assert code == 1, text[-3000:]  # built; the write-back was refused as MLflow's rule says
    flat = " ".join(text.split())
    assert "MLFLOW_ALLOW_FILE_STORE=true" in flat and "--no-log" in flat and "mlflow migrate-filestore" in flat
    assert load_manifest(tmp_path / "b" / "pilot" / "v1").build("onnx").parity["max_abs"] <= 1e-4

    moved = tmp_path / "clone" / "mlruns"
    shutil.copytree(tmp_path / "mlruns", moved)
    shutil.rmtree(tmp_path / "mlruns")
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    code, text = run([*argv, "--tracking-uri", moved.as_uri(), "--force", "--json"], capfd)
    assert code == 0, text[-3000:]
    assert json.loads(text[:text.rindex("}") + 1])["mlflow_run_id"]

    code, text = run([*argv, "--tracking-uri", "./no-such-mlruns"], capfd)
    assert code == 2 and "no MLflow file store at" in text


def test_unexpected_error_is_one_line(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import keras

    from tests.converter.broken_layers import Tripwire

    model = keras.Sequential([keras.Input((24, 32, 3)), Tripwire(name="trip"), keras.layers.Flatten(),
                              keras.layers.Dense(1, name="steering")])
    uri = register(tmp_path, model, how="keras-file", tags=SMALL)
    argv = ["--name", "m", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
            "--custom-objects", "tests.converter.broken_layers:CUSTOM", "--formats", "onnx", "--no-log"]
    code, text = run(argv, capfd)
    assert code == 1
    lines = [ln for ln in text.splitlines() if "internal error" in ln]
    assert len(lines) == 1 and "(m v1)" in lines[0] and "tripwire fired" in lines[0] and "--debug" in lines[0]
    assert "Traceback" not in text
    assert not (tmp_path / "b").exists()
    code, text = run([*argv, "--debug"], capfd)
    assert code == 1 and "Traceback" in text


def test_custom_objects_module_that_raises(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    import sys

    uri = register(tmp_path, sequential_pilot(), how="keras-file", tags=SMALL)
    (tmp_path / "bad_layers.py").write_text("raise RuntimeError('needs a GPU')\n")
    sys.path.insert(0, str(tmp_path))
    try:
        code, text = run(["--name", "m", "--version", "1", "--tracking-uri", uri, "--custom-objects", "bad_layers:X",
                          "--output", str(tmp_path / "b")], capfd)
    finally:
        sys.path.remove(str(tmp_path))
    assert code == 2 and "importing bad_layers raised RuntimeError: needs a GPU" in text
    assert not (tmp_path / "b").exists()
