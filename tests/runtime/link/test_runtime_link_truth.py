"""rc-runtime end to end on the link's truth (issue 12): a run that never reached the car fails
with one line, a held port is refused naming its holder, READY=1 waits for the car, the health
shows in the stats and on the systemd status line, and a second signal changes nothing. Each test
failed on the v1 runtime (it exited 0 / sent READY=1 / exited 130)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.cli import main
from runtime.link import SerialDriveLink
from runtime.sim import CarSimulator, open_pty


def rc_runtime() -> list[str]:
    script = Path(sys.executable).parent / "rc-runtime"
    return [str(script)] if script.exists() else [sys.executable, "-m", "runtime.cli"]


@pytest.fixture
def silent_port() -> Iterator[str]:
    """A serial port with nothing behind it that answers (a wrong port, a board without firmware)."""
    master, slave, path = open_pty()
    os.set_blocking(master, False)
    try:
        yield path
    finally:
        os.close(master)
        os.close(slave)


def one_line(err: str) -> str:
    lines = [line for line in err.strip().splitlines() if line.startswith("rc-runtime:")]
    assert len(lines) == 1, err
    return lines[0]


def args(bundle: Path, clip_video: Path, port: str, *extra: str) -> list[str]:
    return ["--bundle", str(bundle), "--camera", f"file://{clip_video}?realtime=0", "--serial", port,
            "--backend", "onnxruntime", *extra]


def test_a_bounded_run_that_never_reached_the_car_fails_with_one_line(
    bundle: Path, clip_video: Path, silent_port: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    stats = tmp_path / "stats.json"
    code = main(args(bundle, clip_video, silent_port, "--max-frames", "20", "--stats-json", str(stats)))
    err = one_line(capsys.readouterr().err)
    assert code == 3 and "never reached the car" in err and "no STATUS" in err, err
    summary = json.loads(stats.read_text())
    link = summary["link"]
    assert link["reached_car"] is False and link["health"] == "no_status" and link["status_frames"] == 0
    assert link["withheld_unarmed"] > 0  # no DRIVE went to a car that never confirmed ARM
    # ... and the run's own counts say so: handed to the link, none written.
    assert summary["commands"] > 0 and summary["written"] == 0
    assert summary["watchdog"]["commands"] == summary["commands"] and summary["watchdog"]["written"] == 0


def test_a_missing_port_fails_the_bounded_run_naming_it(
    bundle: Path, clip_video: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(args(bundle, clip_video, str(tmp_path / "ttyACM9"), "--max-frames", "10"))
    err = one_line(capsys.readouterr().err)
    assert code == 3 and "ttyACM9 does not exist" in err, err


@pytest.mark.parametrize("port", ["/dev/null"])
def test_a_port_that_is_not_a_serial_port_is_bad_input(
    bundle: Path, clip_video: Path, port: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(args(bundle, clip_video, port, "--max-frames", "5")) == 2
    assert "not a serial port" in one_line(capsys.readouterr().err)


def test_a_port_held_by_another_runtime_is_refused_naming_it(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _, port = sim
    first = SerialDriveLink(port)
    first.open()
    try:
        assert main(args(bundle, clip_video, port, "--max-frames", "5")) == 2
        err = one_line(capsys.readouterr().err)
        assert f"in use by pid {os.getpid()}" in err and "stop that process first" in err, err
    finally:
        first.close()


def test_a_run_with_the_car_reports_it_and_exits_0(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path
) -> None:
    car, port = sim
    stats = tmp_path / "stats.json"
    assert main(args(bundle, clip_video, port, "--max-frames", "30", "--stats-json", str(stats))) == 0
    link = json.loads(stats.read_text())["link"]
    assert link["reached_car"] is True and link["health"] in ("ok", "disarmed") and link["status_frames"] > 0
    tags = [c["tag"] for c in car.commands()]
    assert len(tags) == len(set(tags))  # at most one DRIVE per camera frame


def _notifications(bundle: Path, clip_video: Path, port: str, tmp_path: Path) -> tuple[list[str], int]:
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(60.0)
    env = {**os.environ, "NOTIFY_SOCKET": path}
    proc = subprocess.Popen([*rc_runtime(), *args(bundle, clip_video, port, "--duration", "1.0")], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    messages: list[str] = []
    try:
        while not messages or messages[-1] != "STOPPING=1":
            messages.append(sock.recv(256).decode())
        proc.wait(30)
    finally:
        sock.close()
        if proc.poll() is None:
            proc.kill()
    return messages, proc.returncode


def test_ready_waits_for_the_car_and_the_status_line_names_the_link(
    bundle: Path, clip_video: Path, silent_port: str, tmp_path: Path
) -> None:
    messages, code = _notifications(bundle, clip_video, silent_port, tmp_path)
    assert "READY=1" not in messages and code == 3
    assert any(m.startswith("STATUS=car link: no STATUS from the car") for m in messages), messages


def test_sigterm_then_sigint_still_stops_cleanly(
    bundle: Path, clip_video: Path, sim: tuple[CarSimulator, str], tmp_path: Path
) -> None:
    car, port = sim
    stats = tmp_path / "stats.json"
    proc = subprocess.Popen(
        [*rc_runtime(), "--bundle", str(bundle), "--camera", f"file://{clip_video}?loop=1&realtime=1",
         "--serial", port, "--backend", "onnxruntime", "--stats-json", str(stats)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert car.wait_for(lambda s: len(s.commands()) >= 10, 60.0)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.002)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "loop.crashed" not in err and "KeyboardInterrupt" not in err
    assert car.wait_for(lambda s: s.state == "disarmed", 1.0) and car.output.neutral
    summary = json.loads(stats.read_text())
    assert summary["end_reason"] == "stopped"
    assert "frame.stale" not in summary["events"] and summary["stale"] == 0  # shutdown is not staleness
