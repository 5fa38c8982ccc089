"""Every donkeycar kind of the demo family through the whole toolchain (slow).

``convert-model`` pulls each ``dk_<kind>`` version 1 from a real sqlite registry and builds every
CPU format; then ``rc-car-sim`` serves a real pseudo-terminal, ``rc-runtime`` drives it from an
image folder of a drive the pilots never saw, and the steering on the wire (tag = frame id) must
equal the Keras model's decoded steering for the same frame, within the format's tolerance plus
the link's 1/1000 rounding. For categorical outputs a reduced-precision build may pick a
neighbouring bin where two bins nearly tie: such flips must be rare and one bin wide.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.demo.family import KINDS, Kind, decode, preprocess_frames
from converter.demo.family_data import drive_clip, sequence_index
from converter.demo.track import write_image_folder
from runtime.manifest import load_manifest
from tests.converter.demo.family_helpers import seeded_family

pytestmark = pytest.mark.slow

FORMATS = ("onnx", "onnx-fp16", "tflite-fp32", "tflite-fp16")
BACKEND = {"onnx": "onnxruntime", "onnx-fp16": "onnxruntime", "tflite-fp32": "tflite", "tflite-fp16": "tflite"}
FORMAT_TOL = {"onnx": 1e-4, "tflite-fp32": 1e-4, "onnx-fp16": 1e-2, "tflite-fp16": 1e-2}
WIRE_TOL = 0.0006  # the link sends steering in 1/1000 units
MAX_FLIP_RATE = {"onnx": 0.0, "tflite-fp32": 0.0, "onnx-fp16": 0.05, "tflite-fp16": 0.05}
BIN_WIDTH = 2.0 / 14  # donkeycar's 15 angle bins over [-1, 1]
N_DRIVE = 40
# Kinds the runtime can feed today: one camera image, no extra input.
DRIVEN = [k for k, kind in KINDS.items() if kind.extra is None and not kind.sequence]
PASS_THROUGH = """
[policy]
max_throttle = 1.0
max_reverse = 1.0
throttle_slew_rate = 0.0
"""


def _bin(path: str) -> list[str]:
    script = Path(sys.executable).parent / path
    return [str(script)] if script.exists() else [sys.executable, "-m", {"rc-runtime": "runtime.cli",
                                                                          "rc-car-sim": "runtime.sim.cli"}[path]]


@pytest.fixture(scope="module")
def family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return seeded_family(tmp_path_factory)


@pytest.fixture(scope="module")
def bundles(family: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """``convert-model`` per kind, every CPU format in one call: {kind: {"code", "summary", "bundle"}}."""
    from converter.cli import main

    out = tmp_path_factory.mktemp("bundles")
    result = {}
    for key, kind in KINDS.items():
        stdout = io.StringIO()
        with contextlib.redirect_stdout(stdout):
            code = main(["--tracking-uri", family["tracking_uri"], "--name", kind.name, "--version", "1",
                         "--formats", ",".join(FORMATS), "--output", str(out), "--no-log", "--json"])
        text = stdout.getvalue()
        result[key] = {"code": code, "summary": json.loads(text) if text.strip().startswith("{") else text,
                       "bundle": out / kind.name / "v1"}
    return result


@pytest.fixture(scope="module")
def drive(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, np.ndarray]:
    """A drive on a road and in a look no pilot was trained or validated on, as an image folder."""
    clip = drive_clip(N_DRIVE, seed=424242)
    folder = tmp_path_factory.mktemp("drive") / "frames"
    write_image_folder(folder, clip.frames)
    return folder, clip.frames


def keras_steering(kind: Kind, model: Any, frames: np.ndarray) -> np.ndarray:
    """The Keras model's decoded steering per frame, preprocessed as the car does."""
    x = preprocess_frames(frames, kind.color)
    if kind.sequence:
        x = x[sequence_index(np.zeros(len(frames), int), 3)]
    out = model.predict_on_batch({"img_in": x})
    out = out if isinstance(out, list | tuple) else [out]
    steering, _ = decode(kind, dict(zip(model.output_names, (np.asarray(o) for o in out), strict=True)))
    return steering


@pytest.mark.parametrize("key", list(KINDS))
def test_each_kind_converts_to_every_cpu_format_and_verifies(bundles: dict[str, Any], key: str) -> None:
    got = bundles[key]
    assert got["code"] == 0, got["summary"]
    m = load_manifest(got["bundle"])
    kind = KINDS[key]
    roles = {i.name: i.role for i in m.inputs}
    want = {"img_in": "image_sequence" if kind.sequence else "image"}
    if kind.extra:
        want[{"imu": "imu_in", "memory": "mem_in", "behavior": "xbehavior_in"}[kind.extra]] = kind.extra
    assert roles == want
    img = m.input
    assert img.preprocess is not None and img.preprocess.color == kind.color
    assert img.shape[-3:] == (120, 160, 1 if kind.color == "GRAY" else 3)  # dynamic size fixed at 160x120
    decoders = {(o.name, o.meaning): o.decode["kind"] for o in m.outputs}
    expect_kind = {"bins": "bins", "vector": "component", "scalar": "scalar"}[kind.outputs]
    assert {d for (_, meaning), d in decoders.items() if meaning in ("steering", "throttle")} == {expect_kind}
    assert sorted(b.format for b in m.builds) == sorted(FORMATS)
    for b in m.builds:
        assert b.parity["max_abs"] <= FORMAT_TOL[b.format], (b.format, b.parity)


@contextlib.contextmanager
def car_sim(tmp: Path) -> Iterator[tuple[str, Path]]:
    """``rc-car-sim`` on a pseudo-terminal (a process); yields (link path, JSON-lines command log)."""
    link, log = tmp / "rc-car", tmp / "car.jsonl"
    proc = subprocess.Popen([*_bin("rc-car-sim"), "--pty-link", str(link), "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while not link.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        yield str(link), log
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


def drive_commands(bundle: Path, fmt: str, folder: Path, tmp: Path) -> list[dict[str, Any]]:
    """Run ``rc-runtime`` over the drive; the car's accepted drive commands, in order."""
    cfg = tmp / "runtime.toml"
    cfg.write_text(PASS_THROUGH)
    with car_sim(tmp) as (link, log):
        run = subprocess.run(
            [*_bin("rc-runtime"), "--config", str(cfg), "--bundle", str(bundle), "--backend", BACKEND[fmt],
             "--format", fmt, "--camera", f"file://{folder}?realtime=0", "--serial", link,
             "--deadline-ms", "1000", "--stats-json", str(tmp / "stats.json")],
            capture_output=True, text=True, timeout=300, env=os.environ | {"TF_CPP_MIN_LOG_LEVEL": "2"},
        )
        assert run.returncode == 0, run.stderr[-3000:]
        time.sleep(0.3)  # the last frames reach the simulator's log
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [e for e in events if e.get("event") == "drive"]


def compare(kind: Kind, wire: list[dict[str, Any]], ref: np.ndarray, fmt: str) -> dict[str, float]:
    """Wire steering vs the Keras decoded steering of the frame each command names."""
    got = np.array([c["steering"] for c in wire])
    want = np.clip(ref[[c["tag"] - 1 for c in wire]], -1, 1)
    err = np.abs(got - want)
    if kind.outputs != "bins":
        return {"max_abs": float(err.max()), "flip_rate": 0.0, "n": float(len(wire))}
    flips = err > WIRE_TOL
    return {"max_abs": float(err.max()), "flip_rate": float(flips.mean()), "n": float(len(wire)),
            "max_flip": float(err[flips].max()) if flips.any() else 0.0}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("key", DRIVEN)
def test_the_wire_carries_the_keras_models_steering(
    family: dict[str, Any], bundles: dict[str, Any], drive: tuple[Path, np.ndarray], key: str, fmt: str,
    tmp_path: Path,
) -> None:
    assert bundles[key]["code"] == 0, bundles[key]["summary"]
    folder, frames = drive
    kind = KINDS[key]
    wire = drive_commands(bundles[key]["bundle"], fmt, folder, tmp_path)
    assert [c["tag"] for c in wire] == list(range(1, N_DRIVE + 1))  # every frame once, in order
    ref = keras_steering(kind, family["kind_by_name"][key]["model"], frames)
    assert np.std(ref) > 0.05  # a pilot that steers, not a constant
    res = compare(kind, wire, ref, fmt)
    if kind.outputs == "bins":
        assert res["flip_rate"] <= MAX_FLIP_RATE[fmt], res
        assert res["max_flip"] <= BIN_WIDTH + WIRE_TOL, res  # a flip is to a neighbouring bin
    else:
        assert res["max_abs"] <= FORMAT_TOL[fmt] + WIRE_TOL, res
