"""A PyTorch state dict whose forward takes (image, speed) converts (a shape per input: the image's
from --input-size, the speed's from its role wheel_speed, or --input-shape) and drives rc-car-sim
with a wheel-speed replay: every steering on the wire is PyTorch's for that frame at that speed."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.cli import main as convert_main
from converter.demo.track import generate_dataset, write_image_folder
from runtime.manifest import load_manifest
from runtime.preprocess import preprocess_frame

torch = pytest.importorskip("torch")
from tests.conftest import car_sim_process, checkout_env, python_module  # noqa: E402
from tests.converter.speed_net import SPEED_GAIN, trained  # noqa: E402

pytestmark = pytest.mark.slow
MODEL_CLASS = "tests.converter.speed_net:SpeedNet"
SPEED = 2.0  # m/s, the replayed speed
TOL = 0.0006 + 1e-4  # the wire's rounding (1/1000) plus fp32 parity


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A sqlite registry with speed_pilot v1: the state dict logged with log_artifact."""
    from mlflow import MlflowClient

    root = tmp_path_factory.mktemp("speed-registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("speed", artifact_location=(root / "art").as_uri()))
    ckpt = root / "upload" / "model.pth"
    ckpt.parent.mkdir()
    torch.save(trained().state_dict(), str(ckpt))
    client.log_artifact(run.info.run_id, str(ckpt), artifact_path="model")
    client.create_registered_model("speed_pilot")
    client.create_model_version("speed_pilot", f"{run.info.artifact_uri}/model", run_id=run.info.run_id)
    return {"uri": uri, "root": root}


def _convert(reg: dict[str, Any], out: Path, *extra: str) -> int:
    return convert_main(["--name", "speed_pilot", "--version", "1", "--tracking-uri", reg["uri"], "--output", str(out),
                         "--formats", "onnx", "--no-log", "--model-class", MODEL_CLASS, "--input-size", "64x48",
                         "--outputs", "steering=steering,throttle=throttle", *extra])


def test_a_speed_input_without_a_role_or_shape_is_named_with_the_flags(
        registry: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    # the old message asked for the --input-size that was passed
    assert _convert(registry, tmp_path / "b", "--inputs", "image=image") == 2
    err = capfd.readouterr().err.strip().splitlines()[-1]
    assert "does not record the shape of input 'speed'" in err and "--inputs speed=ROLE" in err
    assert "--input-shape speed=1x1" in err and not (tmp_path / "b" / "speed_pilot").exists()


def test_converts_with_the_roles_shape_and_drives_the_simulator(
        registry: dict[str, Any], tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    assert _convert(registry, tmp_path / "b", "--inputs", "image=image,speed=wheel_speed") == 0, capfd.readouterr().err
    bundle = tmp_path / "b" / "speed_pilot" / "v1"
    m = load_manifest(bundle)
    assert [(i.name, i.role, i.shape) for i in m.inputs] == [("image", "image", (1, 3, 48, 64)),
                                                             ("speed", "wheel_speed", (1, 1))]
    assert m.build("onnx").parity["max_abs"] <= 1e-4
    f, _, _ = generate_dataset(16, seed=21)
    write_image_folder(tmp_path / "frames", f)
    speeds = tmp_path / "speed.csv"  # a steady 2 m/s for a minute: never stale during the run
    speeds.write_text("t,speed\n" + "".join(f"{i * 0.01:.2f},{SPEED}\n" for i in range(6000)))
    link, log = tmp_path / "rc-car", tmp_path / "car.jsonl"
    with car_sim_process(link, log):
        run = subprocess.run(
            python_module("runtime.cli", "--bundle", str(bundle), "--camera",
                          f"file://{tmp_path / 'frames'}?realtime=1&fps=30", "--serial", str(link),
                          "--backend", "onnxruntime", "--deadline-ms", "1000", "--wheel-speed", f"file://{speeds}",
                          "--stats-json", str(tmp_path / "stats.json")),
            capture_output=True, text=True, timeout=300, env=checkout_env(),
        )
        assert run.returncode == 0, run.stderr[-2000:]
        time.sleep(0.3)  # the simulator logs the last frames it read
    stats = json.loads((tmp_path / "stats.json").read_text())
    assert stats["end_reason"] == "camera_ended" and stats["wheel_speed"]["lookups"] >= len(f) // 2
    drives = [e for e in map(json.loads, log.read_text().splitlines()) if e["event"] == "drive"]
    tags = [d["tag"] for d in drives]  # frames may be dropped or go undriven before ARM: half at least
    assert len(tags) >= len(f) // 2 and set(tags) <= set(range(1, len(f) + 1)), tags
    x = np.concatenate([preprocess_frame(fr, m.preprocess, "NCHW") for fr in f])
    with torch.no_grad():
        want = trained()(torch.from_numpy(x), torch.full((len(f), 1), SPEED))[0].numpy()[:, 0]
    got = np.array([d["steering"] for d in drives])
    assert float(np.max(np.abs(got - np.clip(want[np.array(tags) - 1], -1, 1)))) <= TOL
    assert SPEED * SPEED_GAIN > 100 * TOL  # a speed of 0 (not fed) would be far off
