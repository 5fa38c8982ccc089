"""A bounded run that never drove says so: every command older than the watchdog deadline -> exit 4,
one line naming the measured camera-to-command latency against the deadline, ``never_drove`` in the
stats JSON and the same line on the systemd status line.

The model is a real ONNX model run by ONNX Runtime on one thread, made slow on purpose (two
1024 x 1024 matrix products, 4.3 GFLOP: about 120 ms here, still > 20 ms on the fastest core), so
that no command can make the smallest deadline the config allows (5 ms) on any machine.
"""

from __future__ import annotations

import json
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from runtime.cli import main
from runtime.sim import CarSimulator
from runtime.stats import LoopStats, never_drove, never_drove_line
from tests.runtime.helpers import host_neutrals
from tests.runtime.multi_input import image_input
from tests.runtime.perception_bundles import write_bundle

SIDE = 1024
MIN_DEADLINE_MS = 5  # [watchdog] deadline_ms's lower bound (runtime/config.py)
FRAMES = 4


def slow_onnx(image: dict[str, Any]) -> bytes:
    """The image's mean spread over a SIDE x SIDE matrix, multiplied by a fixed one twice; steering
    and throttle are 0 times that (finite, so every command is valid and only its age stops it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    c = numpy_helper.from_array
    w = (np.random.default_rng(0).standard_normal((SIDE, SIDE)) / SIDE).astype(np.float32)
    inits = [c(np.asarray([SIDE, SIDE], np.int64), "square"), c(w, "w"), c(np.asarray([1, 1], np.int64), "shape11"),
             c(np.asarray(0.0, np.float32), "zero")]
    mk = helper.make_node
    nodes = [mk("ReduceMean", ["image"], ["m"], axes=[1, 2, 3], keepdims=1), mk("Reshape", ["m", "shape11"], ["m11"]),
             mk("Expand", ["m11", "square"], ["x"]), mk("MatMul", ["x", "w"], ["y1"]), mk("MatMul", ["y1", "w"], ["y2"]),
             mk("ReduceMean", ["y2"], ["s"], axes=[0, 1], keepdims=1),
             mk("Mul", ["s", "zero"], ["steering"]), mk("Mul", ["s", "zero"], ["throttle"])]
    graph = helper.make_graph(
        nodes, "slow_pilot", [helper.make_tensor_value_info("image", TensorProto.FLOAT, image["shape"])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 1]) for n in ("steering", "throttle")], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


@pytest.fixture(scope="module")
def slow_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    image = image_input("image")
    outputs = [{"name": n, "shape": [1, 1], "meaning": n, "decode": {"kind": "scalar"}} for n in ("steering", "throttle")]
    return write_bundle(tmp_path_factory.mktemp("slow"), "slow_pilot", slow_onnx(image), [image], outputs)


@pytest.fixture
def systemd_socket(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A datagram socket standing in for systemd's, named by ``$NOTIFY_SOCKET`` (a short path: the
    sun_path limit is 108 bytes)."""
    with tempfile.TemporaryDirectory(prefix="nd") as d, socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(f"{d}/notify")
        sock.setblocking(False)
        monkeypatch.setenv("NOTIFY_SOCKET", f"{d}/notify")
        monkeypatch.delenv("WATCHDOG_USEC", raising=False)
        yield sock


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(65536).decode())
        except BlockingIOError:
            return out


def runtime_args(bundle: Path, clip_video: Path, port: str, stats: Path, deadline_ms: float) -> list[str]:
    return ["--bundle", str(bundle), "--backend", "onnxruntime", "--threads", "1",
            "--camera", f"file://{clip_video}?realtime=0", "--serial", port, "--max-frames", str(FRAMES),
            "--deadline-ms", str(deadline_ms), "--stats-json", str(stats)]


def test_a_run_with_no_command_in_time_exits_4_and_says_why(
    slow_bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], systemd_socket: socket.socket,
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    stats = tmp_path / "stats.json"
    code = main(runtime_args(slow_bundle, clip_video, port, stats, MIN_DEADLINE_MS))

    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("rc-runtime:")]
    assert code == 4, err
    assert len(err) == 1, err
    line = err[0].removeprefix("rc-runtime: ")
    summary = json.loads(stats.read_text())
    assert summary["never_drove"] is True and summary["commands"] == 0 and summary["stale"] == FRAMES
    late = summary["stale_ms"]
    assert late["count"] == FRAMES and late["p50"] > MIN_DEADLINE_MS
    assert line.startswith(f"no command was in time: {FRAMES} frames, {FRAMES} stale, "
                           f"camera-to-command p50 {late['p50']:.1f} ms > deadline {MIN_DEADLINE_MS} ms; ")
    assert "[watchdog] deadline_ms" in line and "--deadline-ms" in line
    assert f"STATUS={line}" in received(systemd_socket)
    assert not car.commands()  # nothing drove the car
    assert car.wait_for(lambda s: s.state == "disarmed" and len(host_neutrals(s)) >= 1, 1.0)


def test_the_same_run_with_a_deadline_it_can_make_drives_and_exits_0(
    slow_bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    stats = tmp_path / "stats.json"
    assert main(runtime_args(slow_bundle, clip_video, port, stats, 1000)) == 0
    assert "no command was in time" not in capsys.readouterr().err
    summary = json.loads(stats.read_text())
    assert summary["never_drove"] is False and summary["commands"] == FRAMES
    assert car.commands()


def stale_summary(end_reason: str, frames: int) -> dict[str, object]:
    st = LoopStats(capacity=8)
    st.frames = frames
    for _ in range(frames):
        st.add_stale(0.2)
    return {**st.summary({"end_reason": end_reason}), "watchdog": {"deadline_ms": 100.0}}


@pytest.mark.parametrize(("end_reason", "frames", "judged"), [
    ("max_frames", 3, True), ("duration", 3, True), ("camera_ended", 3, True),
    ("stopped", 3, False),  # a signal ended it: not judged
    ("max_frames", 0, False),  # nothing was inferred: nothing to say about latency
])
def test_which_runs_count_as_never_drove(end_reason: str, frames: int, judged: bool) -> None:
    s = stale_summary(end_reason, frames)
    assert s["never_drove"] is judged and never_drove(s) is judged
    line = never_drove_line(s)
    assert (line is not None) is judged
    if line:
        assert "camera-to-command p50 200.0 ms > deadline 100 ms" in line
