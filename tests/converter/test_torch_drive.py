"""The PyTorch pilot drives: `convert-model` bundle -> `rc-runtime` (ONNX Runtime and LiteRT, NCHW
preprocessing) -> serial frames over a real pty -> `rc-car-sim`. Every steering command on the
wire is PyTorch's own x decoded with the manifest's gain and bias, for the frame it names."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.cli import main as convert_main
from converter.demo.track import generate_dataset, write_image_folder
from runtime.manifest import load_manifest
from tests.converter.torch_models import nchw, quick_pilot, seeded_registry, torch_out

pytestmark = pytest.mark.slow
WIRE_TOL = 0.0006  # a wire unit is 1/1000 and the link rounds to it
FP32_TOL = 1e-4  # the builds' parity limit against PyTorch, plus the wire's rounding below


def _script(name: str) -> list[str]:
    path = Path(sys.executable).parent / name
    return [str(path)] if path.exists() else [sys.executable, "-m", {"rc-runtime": "runtime.cli",
                                                                      "rc-car-sim": "runtime.sim.cli"}[name]]


@pytest.fixture(scope="module")
def jetracer_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("jetracer-drive")
    reg = seeded_registry(root)
    code = convert_main(["--name", "jetracer_pilot", "--version", "1", "--tracking-uri", reg["uri"],
                         "--output", str(root / "builds"), "--formats", "onnx,tflite-fp32", "--no-log"])
    assert code == 0
    return root / "builds" / "jetracer_pilot" / "v1"


@pytest.mark.parametrize("backend", ["onnxruntime", "litert"])
def test_pytorch_pilot_drives_the_simulator(jetracer_bundle: Path, tmp_path: Path, backend: str) -> None:
    m = load_manifest(jetracer_bundle)
    assert m.inputs[0].layout == "NCHW"
    steer = m.output_by_meaning("steering")
    assert steer is not None and steer.decode["kind"] == "component"
    gain, bias = steer.decode["gain"], steer.decode["bias"]
    f, _, _ = generate_dataset(24, seed=21)  # random road states: curves both ways
    write_image_folder(tmp_path / "frames", f)
    link, log = tmp_path / "rc-car", tmp_path / "car.jsonl"
    sim = subprocess.Popen([*_script("rc-car-sim"), "--pty-link", str(link), "--log", str(log)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not link.exists() and time.monotonic() < deadline and sim.poll() is None:
            time.sleep(0.05)
        assert link.exists(), f"rc-car-sim made no link (exit {sim.poll()})"
        run = subprocess.run(
            [*_script("rc-runtime"), "--bundle", str(jetracer_bundle), "--camera", f"file://{tmp_path / 'frames'}?realtime=1&fps=30",
             "--serial", str(link), "--backend", backend, "--deadline-ms", "1000",
             "--stats-json", str(tmp_path / "stats.json")],
            capture_output=True, text=True, timeout=300, env={**os.environ},
        )
        assert run.returncode == 0, run.stderr[-2000:]
        time.sleep(0.3)  # the simulator logs the last frames it read
    finally:
        os.killpg(sim.pid, signal.SIGTERM)
        sim.communicate(timeout=20)
    stats = json.loads((tmp_path / "stats.json").read_text())
    # a paced camera keeps only the newest frame: on a loaded machine one may be dropped
    assert stats["end_reason"] == "camera_ended" and stats["frames"] >= len(f) // 2
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    drives: list[dict[str, Any]] = [e for e in events if e["event"] == "drive"]
    # The link holds DRIVE until the car confirms ARM (protocol v2): the first frame or two may go
    # undriven; at least half must be driven, in order, and every driven one must be right.
    tags = [d["tag"] for d in drives]
    assert len(tags) >= len(f) // 2 and tags == sorted(set(tags)) and set(tags) <= set(range(1, len(f) + 1)), tags
    want = np.clip(torch_out(quick_pilot(), nchw(f))[:, 0] * gain + bias, -1, 1)
    got = np.array([d["steering"] for d in drives])
    assert float(np.max(np.abs(got - want[np.array(tags) - 1]))) <= WIRE_TOL + FP32_TOL * abs(gain)
    assert float(np.std(want)) > 0.05  # the frames really steer left and right
