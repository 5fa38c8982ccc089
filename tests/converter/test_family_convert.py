"""Every donkeycar kind of the demo family through the whole toolchain (slow).

``convert-model`` pulls each ``dk_<kind>`` version 1 from a real sqlite registry and builds every
CPU format; then ``rc-car-sim`` serves a real pseudo-terminal, ``rc-runtime`` drives it from an
image folder of a drive the pilots never saw (with its IMU log as a ``file://`` replay, and a
behaviour), recording every input it feeds; the steering on the wire (tag = frame id) must equal
the Keras model's decoded steering on the same frame and the inputs the runtime recorded, within
the format's tolerance plus the link's 1/1000 rounding. The recorded inputs are checked too: the
sequence window, the memory of the commands the car really got, the IMU sample, the behaviour. For categorical outputs a reduced-precision build may pick a
neighbouring bin where two bins nearly tie: such flips must be rare and one bin wide.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from converter.demo.family import KINDS, Kind, decode, preprocess_frames
from converter.demo.family_data import drive_clip, write_imu_csv
from converter.demo.track import write_image_folder
from runtime.manifest import load_manifest
from runtime.recording import read_recording
from tests.conftest import checkout_env, python_module
from tests.converter.demo.family_helpers import FAMILY_TIMEOUT_S, seeded_family

# The first test trains all nine kinds (minutes on a shared laptop CPU), then converts each.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(FAMILY_TIMEOUT_S)]

FORMATS = ("onnx", "onnx-fp16", "tflite-fp32", "tflite-fp16")
BACKEND = {"onnx": "onnxruntime", "onnx-fp16": "onnxruntime", "tflite-fp32": "litert", "tflite-fp16": "litert"}
FORMAT_TOL = {"onnx": 1e-4, "tflite-fp32": 1e-4, "onnx-fp16": 1e-2, "tflite-fp16": 1e-2}
WIRE_TOL = 0.0006  # the link sends steering in 1/1000 units
MAX_FLIP_RATE = {"onnx": 0.0, "tflite-fp32": 0.0, "onnx-fp16": 0.05, "tflite-fp16": 0.05}
BIN_WIDTH = 2.0 / 14  # donkeycar's 15 angle bins over [-1, 1]
N_DRIVE = 90  # 3 s at 30 fps
# What a format cannot express names the op, and the rest of the kind's formats still build.
# TFLite's builtin ops have no MaxPool3D, and Keras 3's LSTM (a while loop over TensorLists) is not
# lowered to TFLite's fused LSTM: both would need Select TF ops, which the car's LiteRT lacks.
CANNOT = {
    ("3dcnn", "tflite-fp32"): "MaxPool3D",
    ("3dcnn", "tflite-fp16"): "MaxPool3D",
    ("lstm", "tflite-fp32"): "loop of layer(s) LSTM_",
    ("lstm", "tflite-fp16"): "loop of layer(s) LSTM_",
}
BUILT = [(k, f) for k in KINDS for f in FORMATS if (k, f) not in CANNOT]
EXTRA_INPUT = {"imu": "imu_in", "memory": "mem_in", "behavior": "xbehavior_in"}
BEHAVIOR = "Left_Lane"
PASS_THROUGH = """
[policy]
max_throttle = 1.0
max_reverse = 1.0
throttle_slew_rate = 0.0
"""


# kind x format -> what was measured (built, verified, driven): the table of the closing note.
TABLE: dict[str, dict[str, Any]] = {}


@pytest.fixture(scope="module", autouse=True)
def family_table(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Writes ``family_table.json`` (and logs it) into pytest's base temp directory at the end."""
    yield
    if TABLE:
        path = tmp_path_factory.getbasetemp() / "family_table.json"
        path.write_text(json.dumps(TABLE, indent=1, sort_keys=True))
        logging.getLogger(__name__).info("kind x format table in %s", path)


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


@dataclass
class DriveMedia:
    folder: Path  # the frames as PNGs, name order = frame order
    frames: np.ndarray  # (N, 120, 160, 3) uint8 BGR
    imu: np.ndarray  # (N, 6) the IMU replay's rows
    imu_csv: Path


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> DriveMedia:
    """A drive on a road and in a look no pilot was trained or validated on: frames and its IMU log."""
    clip = drive_clip(N_DRIVE, seed=900002)  # not a training or validation seed; left and right curves
    root = tmp_path_factory.mktemp("drive")
    write_image_folder(root / "frames", clip.frames)
    csv = write_imu_csv(root / "imu.csv", clip.imu)
    return DriveMedia(root / "frames", clip.frames, clip.imu, csv)


@pytest.mark.parametrize("key", list(KINDS))
def test_each_kind_converts_to_every_cpu_format_and_verifies(bundles: dict[str, Any], key: str) -> None:
    got = bundles[key]
    cannot = {f: op for (k, f), op in CANNOT.items() if k == key}
    assert got["code"] == (1 if cannot else 0), got["summary"]
    outcomes = {o["format"]: o for o in got["summary"]["formats"]}
    for fmt, op in cannot.items():
        assert outcomes[fmt]["status"] == "failed" and op in outcomes[fmt]["reason"], outcomes[fmt]
    m = load_manifest(got["bundle"])
    kind = KINDS[key]
    roles = {i.name: i.role for i in m.inputs}
    want = {"img_in": "image_sequence" if kind.sequence else "image"}
    if kind.extra:
        want[EXTRA_INPUT[kind.extra]] = kind.extra
    if kind.logged_as == "keras-savedmodel":  # the export names its one input "inputs"
        assert list(roles.values()) == list(want.values())
    else:
        assert roles == want
    img = m.camera_input
    assert img.preprocess is not None and img.preprocess.color == kind.color
    assert img.shape[-3:] == (120, 160, 1 if kind.color == "GRAY" else 3)  # dynamic size fixed at 160x120
    decoders = {(o.name, o.meaning): o.decode["kind"] for o in m.outputs}
    expect_kind = {"bins": "bins", "vector": "component", "scalar": "scalar"}[kind.outputs]
    assert {d for (_, meaning), d in decoders.items() if meaning in ("steering", "throttle")} == {expect_kind}
    assert sorted(b.format for b in m.builds) == sorted(f for f in FORMATS if f not in cannot)
    for b in m.builds:
        decoded = b.parity.get("decoded", {}).get("steering", {})
        TABLE[f"{key} {b.format}"] = {"built": True, "max_abs": b.parity["max_abs"],
                                      "steering_max_abs": decoded.get("max_abs"),
                                      "bin_flip_rate": decoded.get("bin_flip_rate")}
        assert b.parity["max_abs"] <= FORMAT_TOL[b.format], (b.format, b.parity)
    for fmt in cannot:
        TABLE[f"{key} {fmt}"] = {"built": False, "reason": outcomes[fmt]["reason"]}


@contextlib.contextmanager
def car_sim(tmp: Path) -> Iterator[tuple[str, Path]]:
    """``rc-car-sim`` on a pseudo-terminal (a process); yields (link path, JSON-lines command log)."""
    link, log = tmp / "rc-car", tmp / "car.jsonl"
    proc = subprocess.Popen([*python_module("runtime.sim.cli"), "--pty-link", str(link), "--log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env())
    try:
        deadline = time.monotonic() + 30
        while not link.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        yield str(link), log
    finally:
        proc.terminate()
        proc.communicate(timeout=20)


@dataclass
class Drive:
    """What one rc-runtime run over the car simulator left: the car's drive commands (in order) and
    the runtime's recording, by frame id."""

    wire: list[dict[str, Any]]
    records: dict[int, dict[str, Any]]


def run_drive(bundle: Path, fmt: str, kind: Kind, media: DriveMedia, tmp: Path) -> Drive:
    """``rc-runtime`` over the drive (with the kind's extra input), recording every input it fed."""
    cfg = tmp / "runtime.toml"
    cfg.write_text(PASS_THROUGH)
    # Frames in real time, as a camera gives them: the IMU replay runs on that clock, and the link
    # paces DRIVEs to what the line carries (faster than real time, some would be replaced).
    realtime = 1
    extra = {"imu": ["--imu", f"file://{media.imu_csv}"], "behavior": ["--behavior", BEHAVIOR]}.get(kind.extra or "", [])
    stats = tmp / "stats.json"
    with car_sim(tmp) as (link, log):
        run = subprocess.run(
            [*python_module("runtime.cli"), "--config", str(cfg), "--bundle", str(bundle), "--backend", BACKEND[fmt],
             "--format", fmt, "--camera", f"file://{media.folder}?realtime={realtime}", "--serial", link,
             "--deadline-ms", "1000", "--stats-json", str(stats), "--record", str(tmp / "rec"), *extra],
            capture_output=True, text=True, timeout=300, env=checkout_env({"TF_CPP_MIN_LOG_LEVEL": "2"}),
        )
        assert run.returncode == 0, run.stderr[-3000:]
        time.sleep(0.3)  # the last frames reach the simulator's log
    events = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    _, records = read_recording(json.loads(stats.read_text())["recording"]["dir"])
    return Drive([e for e in events if e.get("event") == "drive"], {r["frame_id"]: r for r in records})


def keras_inputs(kind: Kind, drive: Drive, frames: np.ndarray) -> dict[str, np.ndarray]:
    """The Keras model's inputs for every command on the wire: the frame the command's tag names
    (for sequences: the frames the runtime recorded in the window) and the vectors it recorded."""
    recs = [drive.records[c["tag"]] for c in drive.wire]
    src = {r["frame_id"]: r["source_index"] for r in drive.records.values()}
    if kind.sequence:
        idx = np.array([[src[i] for i in r["inputs"]["img_in"]["frame_ids"]] for r in recs])
        x = preprocess_frames(frames[idx.reshape(-1)], kind.color)
        feeds = {"img_in": x.reshape(*idx.shape, *x.shape[1:])}
    else:
        feeds = {"img_in": preprocess_frames(frames[[r["source_index"] for r in recs]], kind.color)}
    if kind.extra:
        name = EXTRA_INPUT[kind.extra]
        feeds[name] = np.array([r["inputs"][name] for r in recs], np.float32)
    return feeds


def keras_steering(kind: Kind, model: Any, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The Keras model's decoded steering (donkeycar's decoding) for each row of ``feeds``."""
    out = model.predict_on_batch(feeds)
    out = out if isinstance(out, list | tuple) else [out]
    steering, _ = decode(kind, dict(zip(model.output_names, (np.asarray(o) for o in out), strict=True)))
    return steering


def check_fed_inputs(kind: Kind, drive: Drive, media: DriveMedia) -> None:
    """What the runtime fed, against what it should have: the window of the last frames, the
    commands the car really got, the IMU sample of the frame's time, the configured behaviour."""
    order = sorted(drive.records)  # the frames the loop handled, in order
    for c in drive.wire:
        r = drive.records[c["tag"]]
        assert r["sent"], r
        if kind.sequence:
            p = order.index(r["frame_id"])
            assert r["inputs"]["img_in"]["frame_ids"] == order[p - 2 : p + 1]  # the last 3, oldest first
        elif kind.extra == "memory":
            # What the car was under after each of the last 3 handled frames, oldest first (zeros
            # before the start): a frame's command if it reached the car, else the one before it
            # (the link withholds DRIVE until the car confirms ARM, and paces it to the line).
            got = {w["tag"] for w in drive.wire}
            under, carried = [], (0.0, 0.0)
            for fid in order:
                q = drive.records[fid]
                carried = (q["steering"], q["throttle"]) if fid in got else carried
                under.append(carried)
            p = order.index(r["frame_id"])
            want = [v for i in range(p - 3, p) for v in (under[i] if i >= 0 else (0.0, 0.0))]
            np.testing.assert_allclose(r["inputs"]["mem_in"], want, atol=WIRE_TOL)
        elif kind.extra == "imu":
            rows = np.abs(media.imu - np.asarray(r["inputs"]["imu_in"], np.float32)).max(axis=1)
            near = int(np.argmin(rows))
            assert rows[near] < 1e-4 and abs(near - r["source_index"]) <= 3, (near, r["source_index"])
        elif kind.extra == "behavior":
            assert r["inputs"]["xbehavior_in"] == [1.0, 0.0]  # Left_Lane


def compare(kind: Kind, got: np.ndarray, want: np.ndarray) -> dict[str, float]:
    """Wire steering vs the Keras decoded steering (clipped to the wire's range)."""
    err = np.abs(got - np.clip(want, -1, 1))
    res = {"max_abs": float(err.max()), "n": float(len(err)), "flip_rate": 0.0, "max_flip": 0.0}
    if kind.outputs == "bins":
        flips = err > WIRE_TOL
        res |= {"flip_rate": float(flips.mean()), "max_flip": float(err[flips].max()) if flips.any() else 0.0}
    return res


def _runtime_feeds(kind: Kind) -> bool:
    if kind.extra is None and not kind.sequence:
        return True
    try:
        import runtime.inputs  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize(("key", "fmt"), BUILT)
def test_the_wire_carries_the_keras_models_steering(
    family: dict[str, Any], bundles: dict[str, Any], media: DriveMedia, key: str, fmt: str, tmp_path: Path
) -> None:
    kind = KINDS[key]
    if not _runtime_feeds(kind):
        pytest.skip(f"this runtime feeds one camera image only (no runtime.inputs): {key} needs "
                    f"{kind.extra or 'image_sequence'}")
    assert bundles[key]["code"] in (0, 1), bundles[key]["summary"]
    drive = run_drive(bundles[key]["bundle"], fmt, kind, media, tmp_path)
    tags = [c["tag"] for c in drive.wire]
    # In real time a loaded machine may skip a frame; commands stay in frame order, one per frame.
    assert tags == sorted(set(tags)) and len(tags) >= 0.8 * N_DRIVE, tags
    check_fed_inputs(kind, drive, media)
    want = keras_steering(kind, family["kind_by_name"][key]["model"], keras_inputs(kind, drive, media.frames))
    assert np.std(want) > 0.05  # a pilot that steers through the curves, not a constant
    res = compare(kind, np.array([c["steering"] for c in drive.wire]), want)
    TABLE.setdefault(f"{key} {fmt}", {})["driven"] = res
    if kind.outputs == "bins":
        assert res["flip_rate"] <= MAX_FLIP_RATE[fmt], res
        assert res["max_flip"] <= BIN_WIDTH + WIRE_TOL, res  # a flip is to a neighbouring bin
    else:
        assert res["max_abs"] <= FORMAT_TOL[fmt] + WIRE_TOL, res
