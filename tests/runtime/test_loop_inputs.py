"""The loop feeds every input role: sequences, memory, IMU, behaviour, on real ONNX Runtime
bundles (tests/runtime/multi_input.py), through a real pty to the car simulator. Each command on
the wire is checked against the model's function of the inputs the runtime should have fed."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.assembly import run
from runtime.cli import main
from runtime.imu import read_imu_csv
from runtime.manifest import PreprocessSpec
from runtime.preprocess import preprocess_frame
from runtime.recording import read_recording
from runtime.recording import write_imu_csv as write_imu_csv_from
from runtime.sim import CarSimulator
from tests.runtime.helpers import WIRE_TOL, make_config
from tests.runtime.imu.helpers import imu_log, write_imu_csv
from tests.runtime.multi_input import PREPROCESS, image_input, predict, vector_input, write_bundle

SPEC = PreprocessSpec.from_dict(PREPROCESS)
LABELS = ["left", "straight", "right"]


def folder_frames(clip_folder: Path, clip_frames: np.ndarray) -> list[np.ndarray]:
    return list(clip_frames[: len(list(clip_folder.iterdir()))])


def wire(car: CarSimulator, summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The DRIVEs the car got, once the run has disarmed it. The link holds DRIVE until the car has
    confirmed ARM (protocol v2), so on a loaded machine the first frame or two may not be driven:
    at least half of the run's commands must be, and every one must be right."""
    car.wait_for(lambda s: s.state == "disarmed" and len(s.commands()) >= summary["written"], 3.0)
    cmds = car.commands()
    tags = [c["tag"] for c in cmds]
    assert car.state == "disarmed" and len(cmds) >= max(1, summary["commands"] // 2) and tags == sorted(set(tags)), tags
    return cmds


def handled(summary: dict[str, Any], n: int, at_least: int = 3) -> list[dict[str, Any]]:
    """The recording's rows: one per frame the loop handled, in order. A camera paced in real time
    keeps only its newest frame, so on a loaded machine it drops those the loop had no time for
    (counted, never inferred twice; on a starved 2-core machine more than half were seen dropped):
    every one of the source's ``n`` frames was published once and either handled or dropped, and the
    last one is always handled (the source ends only once it is taken). How many were handled is the
    machine's speed, not a rule: only enough to check something (``at_least``) is asked for.
    Frames are matched to the source by the rows' ``source_index``, never by position or by id."""
    cam = summary["camera"]
    _, records = read_recording(summary["recording"]["dir"])
    rows = list(records)
    ids, idx = [r["frame_id"] for r in rows], [r["source_index"] for r in rows]
    assert cam["captured"] == n == cam["delivered"] + cam["dropped"] and len(rows) == cam["delivered"] >= at_least, cam
    assert ids == sorted(set(ids)) and idx == sorted(set(idx)) and set(idx) <= set(range(n)) and idx[-1] == n - 1, idx
    return rows


@pytest.mark.parametrize("layout", ["NTHWC", "NTCHW"])
def test_a_sequence_pilot_waits_in_neutral_then_gets_the_last_frames_oldest_first(
    tmp_path: Path, clip_folder: Path, clip_frames: np.ndarray, sim: tuple[CarSimulator, str], layout: str,
) -> None:
    car, port = sim
    inputs = [image_input(length=3, layout=layout)]
    bundle = write_bundle(tmp_path, "seq", inputs)
    frames = folder_frames(clip_folder, clip_frames)
    cfg = make_config(bundle, f"file://{clip_folder}?realtime=1&fps=50", link=port, deadline_ms=1000.0)
    cfg.record.dir = str(tmp_path / "rec")
    summary = run(cfg)
    n = len(frames)
    rows = handled(summary, n, at_least=4)  # 2 in neutral, then windows
    # The provider's rule: the window holds the last 3 frames the loop handled (a frame the camera
    # dropped is not in it), oldest first; it starts again after a gap longer than the deadline;
    # until it is full the car stays in neutral. Replayed here from the recording's capture times.
    gap_s = cfg.watchdog.deadline_ms / 1000.0
    windows: dict[int, list[dict[str, Any]]] = {}  # frame id -> the rows of its window
    since: list[dict[str, Any]] = []
    for prev, r in zip([None, *rows], rows, strict=False):
        if prev is not None and r["t_capture"] - prev["t_capture"] > gap_s:
            since = []
        since = [*since, r][-3:]
        if len(since) == 3:
            windows[r["frame_id"]] = since
    waiting = [r["frame_id"] not in windows for r in rows]
    assert waiting[:2] == [True, True] and [bool(r["not_ready"]) for r in rows] == waiting
    assert summary["inputs_not_ready"] == sum(waiting) and summary["frames"] == summary["commands"] == len(windows)
    ev = summary["events"]["input.not_ready"]
    assert ev["occurrences"] == sum(waiting) and not ev["active"]
    assert ev["episodes"] == sum(1 for a, b in itertools.pairwise([False, *waiting]) if b and not a)
    cmds = wire(car, summary)
    tags = [c["tag"] for c in cmds]
    assert tags[-1] == rows[-1]["frame_id"] and set(tags) <= set(windows)  # never a drive before the window is full
    frame_layout = "NHWC" if layout == "NTHWC" else "NCHW"
    pre = [preprocess_frame(f, SPEC, frame_layout)[0] for f in frames]
    by_id = {r["frame_id"]: r for r in rows}
    reversed_error = []
    for c in cmds:
        win = windows[c["tag"]]
        # the recording names the same frames (the provider's own account, checked, not used)
        assert by_id[c["tag"]]["inputs"]["img_in"] == {"frame_ids": [r["frame_id"] for r in win]}
        window = np.stack([pre[r["source_index"]] for r in win])[None]  # oldest first
        s, t = predict(inputs, {"img_in": window})
        assert abs(c["steering"] - s) <= WIRE_TOL and abs(c["throttle"] - t) <= WIRE_TOL, (c, s, t)
        reversed_error.append(abs(predict(inputs, {"img_in": window[:, ::-1]})[0] - c["steering"]))
    assert np.mean(reversed_error) > 5 * WIRE_TOL  # newest last, not first: the order is what is checked


def test_a_memory_pilot_remembers_the_commands_really_sent(
    tmp_path: Path, clip_folder: Path, clip_frames: np.ndarray, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    inputs = [image_input(), vector_input("mem_in", "memory", 6, length=3)]
    bundle = write_bundle(tmp_path, "mem", inputs)
    frames = folder_frames(clip_folder, clip_frames)
    cfg = make_config(bundle, f"file://{clip_folder}?realtime=1&fps=50", link=port, deadline_ms=1000.0)
    cfg.record.dir = str(tmp_path / "rec")
    summary = run(cfg)
    rows = handled(summary, len(frames))
    # the memory is always ready: every frame handled is inferred and handed to the link
    assert summary["frames"] == summary["commands"] == len(rows) and summary["stale"] == 0
    by_tag = {c["tag"]: c for c in wire(car, summary)}
    assert set(by_tag) <= {r["frame_id"] for r in rows}
    history = [0.0] * 6  # the car starts in neutral
    for r in rows:  # a frame the camera dropped was never handled: it sends nothing, the memory skips it
        assert r["inputs"]["mem_in"] == pytest.approx(history, abs=1e-6)  # float32 of what was sent
        img = preprocess_frame(frames[r["source_index"]], SPEC)
        s, t = predict(inputs, {"img_in": img, "mem_in": np.asarray([history], np.float32)})
        c = by_tag.get(r["frame_id"])
        if c is not None:
            assert abs(c["steering"] - s) <= WIRE_TOL and abs(c["throttle"] - t) <= WIRE_TOL
        # what the car is under after this frame: its command if it went out, else still neutral
        # (before the car confirms ARM the link withholds DRIVE and memory must not count it)
        history = [*history[2:], r["steering"], r["throttle"]] if c is not None else [*history[2:], 0.0, 0.0]


def test_an_imu_pilot_gets_the_sample_nearest_each_frame(
    tmp_path: Path, clip_folder: Path, clip_frames: np.ndarray, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    inputs = [image_input(), vector_input("imu_in", "imu", 6, order=["ax", "ay", "az", "gx", "gy", "gz"])]
    bundle = write_bundle(tmp_path, "imu", inputs)
    t_csv, v_csv = imu_log(n=300, rate_hz=100.0)  # 3 s, longer than the drive
    csv = write_imu_csv(tmp_path / "imu.csv", t_csv, v_csv)
    frames = folder_frames(clip_folder, clip_frames)
    cfg = make_config(bundle, f"file://{clip_folder}?realtime=1&fps=50", link=port)
    cfg.imu.uri = f"file://{csv}"
    cfg.record.dir = str(tmp_path / "rec")
    summary = run(cfg)
    # paced like a camera on a busy machine: a frame may be dropped or late, the rest must drive
    rows = handled(summary, len(frames))
    assert 0 < summary["commands"] == len(rows) - summary["stale"] - summary["inputs_not_ready"]
    assert summary["imu"]["samples"] == 300
    cmds = wire(car, summary)
    header, _ = read_recording(summary["recording"]["dir"])
    assert header["imu"] == f"file://{csv}" and [i["role"] for i in header["inputs"]] == ["image", "imu"]
    t0 = rows[0]["t_capture"]  # the replay's row 0 is the first frame
    by_id = {r["frame_id"]: r for r in rows}
    for r in rows:
        if r["inputs"]["imu_in"] is None:
            assert r["not_ready"] == "imu_in"
            continue
        got = np.asarray(r["inputs"]["imu_in"], np.float32)
        row = round(float(got[0]) * 100.0)  # ax identifies the row (imu_log)
        np.testing.assert_allclose(got, v_csv[row], atol=1e-6)
        # the nearest row to the frame on the replay clock: within half a period
        assert abs((t_csv[row] - t_csv[0]) - (r["t_capture"] - t0)) <= 0.005 + 2e-6
    for c in cmds:
        r = by_id[c["tag"]]
        img = preprocess_frame(frames[r["source_index"]], SPEC)
        s, _ = predict(inputs, {"img_in": img, "imu_in": np.asarray([r["inputs"]["imu_in"]], np.float32)})
        assert abs(c["steering"] - s) <= WIRE_TOL
    # the drive's IMU values come back out as a replay CSV, on the same clock
    fed = [r for r in rows if r["inputs"]["imu_in"] is not None]
    t_out, v_out = read_imu_csv(write_imu_csv_from(summary["recording"]["dir"], tmp_path / "replay.csv"))
    assert len(t_out) == len(fed) and t_out[0] == 0.0
    np.testing.assert_allclose(v_out, [r["inputs"]["imu_in"] for r in fed], atol=1e-6)
    np.testing.assert_allclose(t_out, [r["t_capture"] - fed[0]["t_capture"] for r in fed], atol=2e-6)


def test_a_stale_imu_means_neutral_and_an_event(
    tmp_path: Path, clip_folder: Path, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    bundle = write_bundle(tmp_path, "imu", [image_input(), vector_input("imu_in", "imu", 6)])
    t_csv, v_csv = imu_log(n=20, rate_hz=100.0)  # 0.2 s of IMU for a 0.48 s drive
    cfg = make_config(bundle, f"file://{clip_folder}?realtime=1&fps=50", link=port)
    cfg.imu.uri = f"file://{write_imu_csv(tmp_path / 'imu.csv', t_csv, v_csv)}"
    t_start = time.monotonic()
    summary = run(cfg)
    assert 0 < summary["commands"] < summary["camera"]["delivered"]
    # each frame handled was driven, waited for its IMU sample, or (a loaded machine) went stale
    assert summary["inputs_not_ready"] == summary["camera"]["delivered"] - summary["commands"] - summary["stale"]
    ev = summary["events"]["imu.stale"]
    assert ev["episodes"] == 1 and "no IMU sample for" in ev["last_detail"]
    cmds = wire(car, summary)
    last_drive = max(c["t"] for c in cmds)
    neutrals = [e["t"] for e in car.events if e["event"] == "neutral" and e["t"] > last_drive]
    assert neutrals and neutrals[0] - last_drive < 0.2  # the car is stopped, not left driving
    assert last_drive - t_start < 10.0


def test_a_behavior_pilot_gets_the_configured_one_hot(
    tmp_path: Path, clip_folder: Path, clip_frames: np.ndarray, sim: tuple[CarSimulator, str],
) -> None:
    car, port = sim
    inputs = [image_input(), vector_input("behavior_in", "behavior", 3, labels=LABELS)]
    bundle = write_bundle(tmp_path, "beh", inputs)
    frames = folder_frames(clip_folder, clip_frames)
    cfg = make_config(bundle, f"file://{clip_folder}?realtime=1&fps=50", link=port, deadline_ms=1000.0, max_frames=12)
    cfg.model.behavior = "right"
    cfg.record.dir = str(tmp_path / "rec")
    summary = run(cfg)
    # max_frames counts frames the loop handled: with frames dropped by the paced camera those run
    # past source frame 12, so each command's frame is found by its id in the recording
    _, records = read_recording(summary["recording"]["dir"])
    source_index = {r["frame_id"]: r["source_index"] for r in records}
    delivered = summary["camera"]["delivered"]  # 12, unless the camera dropped so many that the clip ended first
    assert summary["end_reason"] == ("max_frames" if delivered == 12 else "camera_ended") and delivered <= 12
    assert summary["frames"] == summary["commands"] == len(source_index) == delivered
    for c in wire(car, summary):
        img = preprocess_frame(frames[source_index[c["tag"]]], SPEC)
        s, _ = predict(inputs, {"img_in": img, "behavior_in": np.asarray([[0, 0, 1]], np.float32)})
        assert abs(c["steering"] - s) <= WIRE_TOL
        assert abs(predict(inputs, {"img_in": img, "behavior_in": np.asarray([[1, 0, 0]], np.float32)})[0] - s) > 0.01


@pytest.mark.parametrize(
    ("inputs", "flags", "message"),
    [
        ([vector_input("behavior_in", "behavior", 3, labels=LABELS)], ["--behavior", "reverse"],
         "behavior 'reverse' is not one of the model's labels (left, straight, right); fix --behavior"),
        ([vector_input("behavior_in", "behavior", 3, labels=LABELS)], [],
         "behavior input 'behavior_in'; choose one of left, straight, right with --behavior NAME"),
        ([vector_input("imu_in", "imu", 6)], [], "IMU input 'imu_in'; give an IMU source with --imu URI"),
        ([vector_input("imu_in", "imu", 6)], ["--imu", "file://nope/imu.csv"],
         "IMU source file://nope/imu.csv: nope/imu.csv not found"),
        ([vector_input("imu_in", "imu", 6)], ["--imu", "mpu6050://41"], "mpu6050://41: /dev/i2c-41 not found"),
        ([vector_input("lidar_in", "lidar", 8)], [], "unknown role 'lidar'"),
        ([{**image_input("seq_in", length=3), "shape": [1, -1, 20, 32, 3]}], [], "must be fixed and positive"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_neutral(
    tmp_path: Path, clip_folder: Path, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str],
    inputs: list[dict[str, Any]], flags: list[str], message: str,
) -> None:
    car, port = sim
    bundle = write_bundle(tmp_path, "bad", [image_input(), *inputs])
    code = main(["--bundle", str(bundle), "--backend", "onnxruntime", "--camera", f"file://{clip_folder}",
                 "--serial", port, *flags])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and "\n" not in err, err
    assert car.wait_for(lambda s: s.output.neutral and any(e["event"] == "neutral" for e in s.events), 2.0)
    assert car.commands() == []
