"""Typed TOML config: validated, unknown keys are errors, CLI flags override."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.cli_args import build_parser, config_from_args
from runtime.config import ConfigError, load_config

EXAMPLE = Path(__file__).resolve().parents[2] / "runtime" / "runtime.example.toml"


def write(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "runtime.toml"
    p.write_text(text)
    return p


def test_the_example_config_loads_with_the_defaults() -> None:
    cfg = load_config(EXAMPLE)
    assert cfg.model.backend == "auto" and cfg.watchdog.deadline_ms == 100.0
    assert cfg.link.uri == "/dev/rc-car" and cfg.policy.max_throttle == 0.5
    assert cfg.policy.constant_throttle is None


def test_unknown_key_is_an_error_with_a_suggestion(tmp_path: Path) -> None:
    p = write(tmp_path, "[policy]\nmax_throtle = 0.3\n")
    with pytest.raises(ConfigError, match=r"\[policy\] unknown key 'max_throtle'; did you mean 'max_throttle'"):
        load_config(p)


def test_unknown_section_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown section \[camer\]; did you mean \[camera\]"):
        load_config(write(tmp_path, "[camer]\nuri = 'csi://0'\n"))


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("[watchdog]\ndeadline_ms = 'fast'\n", r"\[watchdog\] deadline_ms = 'fast' must be a float"),
        ("[run]\nmax_frames = 1.5\n", r"max_frames = 1.5 must be an int"),
        ("[model]\nthreads = true\n", r"threads = True must be an int"),
        ("[watchdog]\ndeadline_ms = 5000\n", r"deadline_ms = 5000.0 must be in \[5, 1000\]"),
        ("[model]\nbackend = 'cuda'\n", r"backend = 'cuda'; choose from"),
        ("[policy]\nmax_throttle = 2\n", r"\[policy\] policy.max_throttle = 2.0 must be in \[0, 1\]"),
        ("[policy\n", r"not valid TOML"),
    ],
)
def test_bad_values_name_the_key(tmp_path: Path, text: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        load_config(write(tmp_path, text))


def test_ints_are_accepted_for_floats(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, "[watchdog]\ndeadline_ms = 80\n")).watchdog.deadline_ms == 80.0


def test_cli_flags_override_the_file(tmp_path: Path) -> None:
    p = write(tmp_path, "[model]\nbundle = 'a'\nbackend = 'litert'\n[camera]\nuri = 'csi://0'\n[policy]\nmax_throttle = 0.3\n")
    args = build_parser().parse_args(
        ["--config", str(p), "--bundle", "b", "--camera", "file://x.mp4", "--max-throttle", "0.2", "--max-frames", "5"]
    )
    cfg = config_from_args(args)
    assert cfg.model.bundle == "b" and cfg.model.backend == "litert"  # not given on the CLI: the file's
    assert cfg.camera.uri == "file://x.mp4" and cfg.policy.max_throttle == 0.2 and cfg.run.max_frames == 5


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")


def test_the_jetson_default_config_loads() -> None:
    path = EXAMPLE.parents[1] / "jetson" / "config" / "runtime.toml"
    if not path.is_file():
        pytest.skip("jetson/config/runtime.toml is not in this checkout")
    cfg = load_config(path)
    assert cfg.link.uri == "/dev/rc-car" and cfg.policy.max_throttle <= 0.5


def test_imu_and_behavior_from_the_file_and_the_flags(tmp_path: Path) -> None:
    p = write(tmp_path, "[model]\nbehavior = 'left'\n[imu]\nuri = 'mpu6050://1?addr=0x68'\n")
    cfg = load_config(p)
    assert cfg.model.behavior == "left" and cfg.imu.uri == "mpu6050://1?addr=0x68"
    cfg = config_from_args(build_parser().parse_args(["--config", str(p), "--imu", "file://imu.csv", "--behavior", "right"]))
    assert cfg.imu.uri == "file://imu.csv" and cfg.model.behavior == "right"
    assert load_config(None).imu.uri == "" and load_config(None).model.behavior == ""


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("[imu]\nuri = 'bno055://1'\n", r"\[imu\] uri: IMU URI 'bno055://1': unknown scheme 'bno055'; use file://imu.csv"),
        ("[imu]\nuri = 'mpu6050://1?adr=0x68'\n", r"\[imu\] uri: .*unknown option 'adr'"),
        ("[imu]\ndevice = 'x'\n", r"\[imu\] unknown key 'device'"),
        ("[model]\nbehaviour = 'left'\n", r"\[model\] unknown key 'behaviour'; did you mean 'behavior'"),
    ],
)
def test_bad_imu_and_behavior_keys(tmp_path: Path, text: str, msg: str) -> None:
    with pytest.raises(ConfigError, match=msg):
        load_config(write(tmp_path, text))
