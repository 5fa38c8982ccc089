"""A PyTorch pilot saved while still in training mode, logged with mlflow.pytorch.log_model (pt2)
or traced with torch.jit.trace: the file bakes BatchNorm's batch statistics and random Dropout in,
and neither ``ExportedProgram.module()`` nor ``eval()`` on a traced module can undo it. It is refused
with the fix (exit 2, nothing written); the same pilot saved after ``model.eval()`` converts and
matches PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (the torch extra; see README)")

import torch
from torch import nn

from converter.cli import main
from converter.demo.registration import tracking


class _BNPilot(nn.Module):
    """Conv + BatchNorm + Dropout -> tanh (steering, throttle), on (1, 3, 32, 48) frames."""

    def __init__(self) -> None:
        super().__init__()
        self.f = nn.Sequential(nn.Conv2d(3, 4, 3, 2), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                               nn.Dropout(0.3), nn.Linear(4 * 15 * 23, 2))

    def forward(self, image: Any) -> Any:
        return torch.tanh(self.f(image))


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path, Any]:
    """v1: logged in training mode (the mistake); v2: the same weights after model.eval()."""
    import mlflow

    root = tmp_path_factory.mktemp("train-mode")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    torch.manual_seed(0)
    model = _BNPilot()
    for _ in range(3):  # a little training moves BatchNorm's running statistics off their defaults
        model(torch.rand(8, 3, 32, 48))
    example = np.random.default_rng(0).random((1, 3, 32, 48), dtype=np.float32)
    with tracking(uri):
        mlflow.set_experiment("train-mode")
        with mlflow.start_run():
            mlflow.pytorch.log_model(model.train(), name="model", input_example=example, registered_model_name="bn_pilot")
        with mlflow.start_run():
            mlflow.pytorch.log_model(model.eval(), name="model", input_example=example, registered_model_name="bn_pilot")
    return uri, root, model


def _convert(uri: str, out: Path, version: str) -> int:
    return main(["--name", "bn_pilot", "--version", version, "--tracking-uri", uri, "--output", str(out),
                 "--formats", "onnx", "--no-log", "--n-samples", "8",
                 "--outputs", "output=steering:component:0"])


@pytest.mark.slow  # its registry logs two torch.export programs to MLflow (~14 s)
def test_program_exported_in_training_mode_is_refused(registry: tuple[str, Path, Any], tmp_path: Path,
                                                      capfd: pytest.CaptureFixture[str]) -> None:
    uri, _, _ = registry
    assert _convert(uri, tmp_path / "b", "1") == 2
    err = [line for line in capfd.readouterr().err.splitlines() if line.startswith("error:")]
    assert len(err) == 1, err
    assert "training mode" in err[0] and "aten.batch_norm" in err[0] and "aten.dropout" in err[0], err[0]
    assert "model.eval()" in err[0], err[0]
    assert not (tmp_path / "b").exists() or not any((tmp_path / "b").iterdir())


@pytest.mark.slow
def test_same_pilot_logged_in_eval_mode_converts_and_matches_pytorch(registry: tuple[str, Path, Any],
                                                                     tmp_path: Path) -> None:
    import onnxruntime as ort

    uri, _, model = registry
    assert _convert(uri, tmp_path / "b", "2") == 0
    x = np.random.default_rng(1).random((1, 3, 32, 48), dtype=np.float32)
    sess = ort.InferenceSession(str(tmp_path / "b" / "bn_pilot" / "v2" / "model.onnx"))
    got = sess.run(None, {sess.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        want = model.eval()(torch.from_numpy(x)).numpy()
    assert float(np.max(np.abs(got - want))) < 1e-4


def _traced(model: Any, dest: Path) -> Path:
    torch.jit.trace(model, torch.rand(1, 3, 32, 48), check_trace=False).save(str(dest))
    return dest


def test_torchscript_traced_in_training_mode_is_refused_and_in_eval_mode_loads(tmp_path: Path) -> None:
    from converter.errors import ModelLoadError
    from converter.sources.hints import SourceHints
    from converter.sources.torch_load import load_torch
    from converter.sources.torch_source import TorchSource

    torch.manual_seed(0)
    model = _BNPilot()
    hints = SourceHints(input_hw=(32, 48), output_names=["output"], workdir=tmp_path / "w")
    with pytest.raises(ModelLoadError) as e:
        TorchSource(load_torch(_traced(model.train(), tmp_path / "train.pt")), hints)
    assert "traced in training mode" in str(e.value) and "aten.batch_norm" in str(e.value)
    assert "aten.dropout" in str(e.value) and "model.eval() before torch.jit.trace" in str(e.value)
    src = TorchSource(load_torch(_traced(model.eval(), tmp_path / "eval.pt")), hints)
    x = np.random.default_rng(2).random((2, 3, 32, 48), dtype=np.float32)
    with torch.no_grad():
        want = model(torch.from_numpy(x)).numpy()
    assert float(np.max(np.abs(src.predict({src.input_names[0]: x})["output"] - want))) < 1e-5
