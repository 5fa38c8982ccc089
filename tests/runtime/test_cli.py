"""rc-runtime as the car runs it: signals, bad input, stats JSON, and no TensorFlow/MLflow."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.manifest import load_manifest
from runtime.sim import CarSimulator
from tests.conftest import checkout_env, python_module
from tests.runtime.helpers import first_neutral_after, host_neutrals

DEADLINE_S = 0.1
MARGIN_S = 0.12  # scheduling slack on a loaded 2-core machine; still below the car's 250 ms failsafe


def rc_runtime() -> list[str]:
    """rc-runtime of the checkout under test (``python -m runtime.cli``, with ``checkout_env()``)."""
    return python_module("runtime.cli")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_sends_neutral_before_exit(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path, sig: signal.Signals
) -> None:
    car, port = sim
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [*rc_runtime(), "--bundle", str(bundle), "--camera", f"file://{clip_video}?loop=1&realtime=1",
         "--serial", port, "--backend", "litert", "--stats-json", str(stats)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=checkout_env(),
    )
    try:
        assert car.wait_for(lambda s: len(s.commands()) >= 10, 60.0), proc.stderr
        t_sig = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    t_n = first_neutral_after(car, t_sig)
    assert t_n is not None and t_n - t_sig <= DEADLINE_S + MARGIN_S
    assert not [c for c in car.commands() if c["t"] > t_n]  # nothing moved it after the neutral
    assert proc.returncode == 0, err
    assert car.wait_for(lambda s: s.state == "disarmed", 1.0) and car.output.neutral
    summary = json.loads(stats.read_text())
    assert summary["end_reason"] == "stopped"
    assert "frames" in out and "camera_to_command" in out


def test_stats_json_keys(bundle: Path, clip_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    stats = tmp_path / "out" / "stats.json"
    code = main(["--bundle", str(bundle), "--camera", f"file://{clip_video}?realtime=0", "--serial", "null://",
                 "--max-frames", "12", "--stats-json", str(stats), "--backend", "onnxruntime"])
    assert code == 0
    s = json.loads(stats.read_text())
    assert {"frames", "commands", "stale", "invalid_outputs", "backend_errors", "duration_s", "fps", "stages_ms",
            "end_reason", "camera", "model", "watchdog", "events", "link"} <= set(s)
    assert set(s["stages_ms"]) == {"frame_age", "preprocess", "inference", "policy", "write", "camera_to_command"}
    assert {"captured", "delivered", "dropped", "reconnects"} <= set(s["camera"])
    assert s["frames"] == 12 and s["model"]["build"]["format"] == "onnx"
    assert "fps" in capsys.readouterr().out


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if line.startswith("rc-runtime:")]
    assert len(err) == 1
    return err[0]


def test_a_corrupted_model_is_refused_and_the_car_stays_neutral(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    car, port = sim
    bad = tmp_path / "bundle"
    shutil.copytree(bundle, bad)
    onnx = bad / load_manifest(bad).build("onnx").file
    data = bytearray(onnx.read_bytes())
    data[len(data) // 2] ^= 0xFF
    onnx.write_bytes(bytes(data))
    code = main(["--bundle", str(bad), "--backend", "onnxruntime", "--camera", f"file://{clip_video}", "--serial", port])
    assert code == 2
    assert "sha256" in one_line_error(capsys)
    assert car.wait_for(lambda s: s.state == "disarmed" and len(host_neutrals(s)) >= 1, 1.0)
    assert not car.commands()


@pytest.mark.parametrize(
    ("args", "msg"),
    [
        (["--camera", "rtsp://cam"], "unknown scheme"),
        (["--camera", "file:///nonexistent/drive.mp4"], "no video file or image folder"),
        (["--serial", "bogus://x"], "unsupported link URL"),
        (["--deadline-ms", "0"], "deadline_ms"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    bundle: Path, clip_video: Path, args: list[str], msg: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["--bundle", str(bundle), "--camera", f"file://{clip_video}", "--serial", "null://"]
    assert main(base + args) == 2
    assert msg in one_line_error(capsys)


def test_bad_config_and_missing_bundle(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "runtime.toml"
    cfg.write_text("[camera]\nurl = 'csi://0'\n")
    assert main(["--config", str(cfg)]) == 2
    assert "unknown key 'url'; did you mean 'uri'" in one_line_error(capsys)
    assert main(["--bundle", str(tmp_path / "none"), "--serial", "null://", "--camera", "csi://0"]) == 2
    assert "manifest.json not found" in one_line_error(capsys)


def test_the_runtime_imports_neither_tensorflow_nor_mlflow() -> None:
    code = (
        "import sys, runtime.cli, runtime.loop, runtime.camera, runtime.recording, runtime.backends.litert_backend, "
        "runtime.backends.onnxruntime_backend\n"
        "bad = sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'mlflow', 'tf_keras'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=checkout_env())


def test_systemd_notifications_over_a_real_notify_socket(
    bundle: Path, clip_video: Path, tmp_path: Path, sim: tuple[CarSimulator, str]
) -> None:
    import socket

    car, port = sim
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(30.0)
    env = checkout_env({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "200000"})  # ping every 0.1 s
    proc = subprocess.Popen(
        [*rc_runtime(), "--bundle", str(bundle), "--camera", f"file://{clip_video}?realtime=1&fps=30",
         "--serial", port, "--backend", "onnxruntime", "--duration", "1.0"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    messages: list[str] = []
    try:
        while not messages or messages[-1] != "STOPPING=1":
            messages.append(sock.recv(256).decode())
        proc.wait(20)
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0
    lifecycle = [m for m in messages if not m.startswith("STATUS=")]  # STATUS= lines: the car link's health
    assert lifecycle[0] == "READY=1"  # after the first inference and the car's first STATUS, before any ping
    assert "STATUS=car link: car armed" in messages
    assert messages.count("WATCHDOG=1") >= 3
    assert car.commands()
