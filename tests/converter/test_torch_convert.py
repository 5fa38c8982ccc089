"""`convert-model` on PyTorch and ONNX models in a real MLflow registry: the JetRacer-style pilot
logged by `mlflow.pytorch.log_model` (MLflow 3's pt2 and MLflow 2's pickle) and by `mlflow.onnx`,
converted to ONNX and TFLite with parity against PyTorch itself, NCHW end to end."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.cli import main
from runtime.backends import open_backend
from runtime.manifest import load_manifest, verified_path
from runtime.preprocess import preprocess_frame
from tests.converter.torch_models import H, W, frames, nchw, seeded_registry, torch, torch_out

pytestmark = pytest.mark.slow
FORMATS = "onnx,onnx-fp16,tflite-fp32,tflite-fp16"
LIMITS = {"onnx": 1e-4, "tflite-fp32": 1e-4, "onnx-fp16": 1e-2, "tflite-fp16": 1e-2}


@pytest.fixture(scope="module")
def jetracer_registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return seeded_registry(tmp_path_factory.mktemp("jetracer-registry"))


def _convert(tmp: Path, uri: str, name: str, version: str, *extra: str, capfd: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any]]:
    code = main(["--name", name, "--version", version, "--tracking-uri", uri, "--output", str(tmp / "b"),
                 "--formats", FORMATS, "--json", *extra])
    out = capfd.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def _pytorch_model(registry: dict[str, Any], version: str) -> Any:
    import mlflow.pytorch

    from converter.demo.registration import tracking

    with tracking(registry["uri"]):
        return mlflow.pytorch.load_model(f"models:/jetracer_pilot/{version}")


@pytest.mark.parametrize("version", ["1", "2"])  # 1: data/model.pt2, 2: data/model.pth (pickle)
def test_pytorch_versions_convert_with_parity_against_pytorch(
    tmp_path: Path, jetracer_registry: dict[str, Any], version: str, capfd: pytest.CaptureFixture[str]
) -> None:
    code, summary = _convert(tmp_path, jetracer_registry["uri"], "jetracer_pilot", version, capfd=capfd)
    assert code == 0, summary
    bundle = tmp_path / "b" / "jetracer_pilot" / f"v{version}"
    m = load_manifest(bundle)
    (inp,) = m.inputs
    assert (inp.name, inp.role, inp.layout, inp.shape) == ("image", "image", "NCHW", (1, 3, H, W))
    assert m.model.flavor.startswith("pt2:" if version == "1" else "torch:")
    assert [(o.name, o.meaning, o.decode["kind"], o.decode["index"]) for o in m.outputs] == [
        ("xy", "steering", "component", 0), ("xy", "throttle", "component", 1)]
    assert [b.format for b in m.builds] == FORMATS.split(",")
    for b in m.builds:
        verified_path(bundle, b)
        assert b.parity["max_abs"] <= LIMITS[b.format], (b.format, b.parity)
    onnx_tc = m.build("onnx").toolchain
    assert onnx_tc["torch"].startswith("2.") and int(onnx_tc["opset"]) >= 18
    assert "onnx2tf" in m.build("tflite-fp32").toolchain
    # The bundle's builds, fed by the runtime's own NCHW preprocessing, give what PyTorch gives.
    model = _pytorch_model(jetracer_registry, "2")  # the nn.Module itself (v1 holds its torch.export program)
    f = frames(6, seed=11)
    want = torch_out(model, nchw(f))
    for fmt, backend in (("onnx", "onnxruntime"), ("tflite-fp32", "litert"), ("tflite-fp16", "litert")):
        with open_backend(bundle, backend, fmt) as be:
            got = np.concatenate([be.infer(preprocess_frame(fr, m.preprocess, "NCHW"))["xy"] for fr in f])
        assert float(np.max(np.abs(got - want))) <= LIMITS[fmt], fmt


def test_registered_mlflow_onnx_model_converts(tmp_path: Path, jetracer_registry: dict[str, Any],
                                                capfd: pytest.CaptureFixture[str]) -> None:
    import mlflow
    import mlflow.onnx
    import onnx

    from converter.demo.jetracer_seed import edge_tags
    from converter.demo.registration import tracking
    from converter.sources import SourceHints, find_model_file, load_source

    art = tmp_path / "export"
    (art / "data").mkdir(parents=True)
    model = _pytorch_model(jetracer_registry, "2")
    torch.save(model, str(art / "data" / "model.pth"))
    src = load_source(find_model_file(art), hints=SourceHints(output_names=["xy"], input_hw=(H, W),
                                                              workdir=tmp_path / "work"))
    onnx_model = onnx.load(str(src.onnx_path(18)))  # type: ignore[attr-defined]
    uri = jetracer_registry["uri"]
    with tracking(uri), mlflow.start_run():
        info = mlflow.onnx.log_model(onnx_model, name="onnx_model", registered_model_name="jetracer_onnx")
    from mlflow import MlflowClient

    client = MlflowClient(uri, registry_uri=uri)
    metrics = jetracer_registry["metrics"]
    for k, v in edge_tags(metrics["steering_gain"], metrics["steering_bias"]).items():
        client.set_model_version_tag("jetracer_onnx", str(info.registered_model_version), k, v)
    code, summary = _convert(tmp_path, uri, "jetracer_onnx", str(info.registered_model_version), capfd=capfd)
    assert code == 0, summary
    m = load_manifest(tmp_path / "b" / "jetracer_onnx" / f"v{info.registered_model_version}")
    assert m.model.flavor.startswith("onnx:") and m.inputs[0].layout == "NCHW"
    for b in m.builds:
        assert b.parity["max_abs"] <= LIMITS[b.format], (b.format, b.parity)


def test_state_dict_artifact_needs_and_takes_model_class(tmp_path: Path, jetracer_registry: dict[str, Any],
                                                        capfd: pytest.CaptureFixture[str]) -> None:
    """A checkpoint logged with mlflow.log_artifact (the seeds' way): exit 2 naming --model-class, then converts."""
    from mlflow import MlflowClient

    from converter.demo.jetracer_seed import edge_tags

    uri = jetracer_registry["uri"]
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.create_experiment("ckpt", artifact_location=(tmp_path / "art").as_uri())
    run = client.create_run(exp)
    ckpt = tmp_path / "upload" / "checkpoint.pt"
    ckpt.parent.mkdir()
    torch.save({"epoch": 2, "model_state_dict": _pytorch_model(jetracer_registry, "2").state_dict()}, str(ckpt))
    client.log_artifact(run.info.run_id, str(ckpt), artifact_path="checkpoints")
    client.create_registered_model("jetracer_ckpt")
    client.create_model_version("jetracer_ckpt", f"{run.info.artifact_uri}/checkpoints", run_id=run.info.run_id)
    metrics = jetracer_registry["metrics"]
    for k, v in edge_tags(metrics["steering_gain"], metrics["steering_bias"]).items():
        client.set_model_version_tag("jetracer_ckpt", "1", k, v)
    code = main(["--name", "jetracer_ckpt", "--version", "1", "--tracking-uri", uri, "--output", str(tmp_path / "b"),
                 "--formats", "onnx", "--no-log"])
    err = capfd.readouterr().err
    assert code == 2 and "--model-class" in err
    assert not (tmp_path / "b" / "jetracer_ckpt" / "v1").exists()
    code, summary = _convert(tmp_path, uri, "jetracer_ckpt", "1", "--model-class",
                             "converter.demo.jetracer_net:quick_resnet18", "--no-log", capfd=capfd)
    assert code == 0, summary
