"""``rc-runtime --check``: a real bundle, a real video file and a real pty; the report on a ready car
and one line per problem otherwise; the port is never opened (nothing reaches the pty's other end)."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import checkout_env, python_module


@pytest.fixture
def pty_port(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    """A pty pair: the master (the car's end, read by the test) and a /dev/rc-car-like link to the slave."""
    master, slave = os.openpty()
    link = tmp_path / "rc-car"
    link.symlink_to(os.ttyname(slave))
    os.close(slave)
    fcntl.fcntl(master, fcntl.F_SETFL, fcntl.fcntl(master, fcntl.F_GETFL) | os.O_NONBLOCK)
    yield master, link
    os.close(master)


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(python_module("runtime.cli", "--check", *args), capture_output=True, text=True,
                          env=checkout_env(), timeout=120)


def _nothing_written(master: int) -> bool:
    try:
        return os.read(master, 4096) == b""
    except BlockingIOError:
        return True
    except OSError:  # EIO: no process has the slave open, so nobody wrote to it
        return True


def test_check_reports_a_ready_car_without_opening_the_link(bundle: Path, drive_video: Path, pty_port: tuple[int, Path]) -> None:
    master, port = pty_port
    res = _check("--bundle", str(bundle), "--camera", str(drive_video), "--serial", str(port))
    assert res.returncode == 0, res.stderr
    out = res.stdout.splitlines()
    assert [line.split(":")[1].strip() for line in out[:4]] == ["bundle", "model", "camera", "port"], res.stdout
    assert "match their sha256" in out[0] and "opens and infers" in out[1]
    assert "160x120" in out[2] and "is a tty" in out[3] and "(not opened)" in out[3]
    assert out[-1].startswith("rc-runtime --check: ready")
    assert _nothing_written(master)  # no NEUTRAL, no ARM, not even the guard's: the port stayed shut
    assert "deadline guard" not in res.stderr


def test_check_names_every_problem_on_its_own_line(bundle: Path, tmp_path: Path) -> None:
    bad = tmp_path / "bundle"
    shutil.copytree(bundle, bad)
    onnx = bad / "model.onnx"
    data = bytearray(onnx.read_bytes())
    data[-1] ^= 0xFF
    onnx.write_bytes(bytes(data))
    regular = tmp_path / "not-a-tty"
    regular.write_text("")
    res = _check("--bundle", str(bad), "--camera", str(tmp_path / "missing.mp4"), "--serial", str(regular),
                 "--format", "tflite-fp32")
    assert res.returncode == 2, res.stdout + res.stderr
    problems = [line for line in res.stderr.splitlines() if line.startswith("rc-runtime --check:")]
    assert [p.split(":")[1].strip() for p in problems] == ["bundle", "camera", "port"], res.stderr
    assert "model.onnx" in problems[0] and "sha256" in problems[0]
    assert "missing.mp4" in problems[1]
    assert "is not a tty" in problems[2]
    assert "ok: model:" in res.stdout  # the tflite build it would run is intact and loads
    assert res.stdout.splitlines()[-1].startswith("rc-runtime --check: 3 problem(s)")


def test_check_a_missing_port_and_a_bad_config(bundle: Path, drive_video: Path, tmp_path: Path) -> None:
    res = _check("--bundle", str(bundle), "--camera", str(drive_video), "--serial", str(tmp_path / "rc-car"))
    assert res.returncode == 2
    assert [line for line in res.stderr.splitlines() if "--check:" in line] == [
        f"rc-runtime --check: port: {tmp_path / 'rc-car'} does not exist: is the car's board plugged in "
        "(udev makes /dev/rc-car)?"]
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[guard]\nallow_soft_deadlin = true\n")
    res = _check("--config", str(cfg))
    assert res.returncode == 2 and "unknown key 'allow_soft_deadlin'" in res.stderr and res.stdout == ""
