"""Every on-car command the docs give runs, without a traceback, in the venv it is run in: under
``make test-runtime-py310`` that is Python 3.10 with only the ``runtime`` extra (no rich, MLflow,
TensorFlow), like the car's venv with only the ``jetson`` extra (tests/jetson/test_car_install.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import checkout_env, python_module

REPO = Path(__file__).resolve().parents[2]
DOCS = (REPO / "README.md").read_text() + (REPO / "jetson" / "README.md").read_text()


@pytest.fixture
def pty_link(tmp_path: Path) -> Iterator[Path]:
    master, slave = os.openpty()
    link = tmp_path / "rc-car"
    link.symlink_to(os.ttyname(slave))
    os.close(slave)
    yield link
    os.close(master)


def _run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=checkout_env(), timeout=120, stdin=subprocess.DEVNULL)


def _no_traceback(res: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in res.stdout + res.stderr, res.stdout + res.stderr


def test_the_documented_on_car_commands_are_the_ones_tested() -> None:
    for documented in ("rc-runtime --config /etc/rc-car/runtime.toml --check",
                       "rc-runtime --bundle builds/rc_pilot/v3 --camera csi://0 --serial /dev/rc-car",
                       "rc-runtime --config /etc/rc-car/runtime.toml", "rc-car-sim --pty-link /tmp/rc-car",
                       "convert-model --bundle builds/rc_pilot/v3 --formats trt-fp16"):
        assert documented in DOCS, documented


def test_help_of_the_car_commands() -> None:
    for module in ("runtime.cli", "runtime.sim.cli"):
        res = _run(python_module(module, "--help"))
        assert res.returncode == 0 and "usage:" in res.stdout, res.stderr
    res = _run(["bash", str(REPO / "jetson" / "install.sh"), "--help"])
    assert res.returncode == 0 and "install.sh" in res.stdout


def test_check_with_the_car_config(bundle: Path, drive_video: Path, pty_link: Path, tmp_path: Path) -> None:
    """The jetson default config with only the car's paths changed, checked as the docs say."""
    text = (REPO / "jetson" / "config" / "runtime.toml").read_text()
    cfg = tmp_path / "runtime.toml"
    cfg.write_text(text.replace('"/opt/rc-car/bundles/current"', f'"{bundle}"')
                   .replace('"/dev/rc-car"', f'"{pty_link}"').replace("/var/lib/rc-car", str(tmp_path))
                   .replace('uri = "csi://0', f'uri = "{drive_video}"  # "csi://0'))
    res = _run(python_module("runtime.cli", "--config", str(cfg), "--check"))
    _no_traceback(res)
    assert res.returncode == 0, res.stdout + res.stderr


def test_drive_command_without_gstreamer_is_one_line(bundle: Path, pty_link: Path) -> None:
    res = _run(python_module("runtime.cli", "--bundle", str(bundle), "--camera", "csi://0", "--serial", str(pty_link),
                             "--max-frames", "1"))
    _no_traceback(res)
    try:
        import cv2

        gstreamer = "GStreamer:                   YES" in cv2.getBuildInformation()
    except ImportError:
        gstreamer = False
    if gstreamer:
        pytest.skip("this OpenCV has GStreamer: csi:// would try a real camera")
    lines = [line for line in res.stderr.splitlines() if line.startswith("rc-runtime:")]
    assert res.returncode == 2 and len(lines) == 1 and "csi" in lines[0].lower(), res.stderr


def test_convert_model_on_the_car_is_one_line(bundle: Path, tmp_path: Path) -> None:
    copy = tmp_path / "v3"
    shutil.copytree(bundle, copy)  # it would extend the bundle in place
    res = _run(python_module("converter.cli", "--bundle", str(copy), "--formats", "trt-fp16"))
    _no_traceback(res)
    try:
        import rich  # noqa: F401
    except ImportError:  # the car's venv: it says what to run instead
        assert res.returncode == 2 and "rc-runtime --config /etc/rc-car/runtime.toml --check" in res.stderr
