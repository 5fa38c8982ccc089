"""The Jetson service: systemd notify protocol over a real socket, the unit (systemd-analyze
verify), the udev rule, the install script (shellcheck, dry run) and the default config."""

from __future__ import annotations

import configparser
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from runtime.notify import notify, watchdog_interval_s

REPO = Path(__file__).resolve().parents[2]
JETSON = REPO / "jetson"
UNIT = JETSON / "systemd" / "rc-runtime.service"


@pytest.fixture
def notify_socket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = tmp_path / "notify"
    sock.bind(str(path))
    sock.settimeout(5)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    yield sock
    sock.close()


def test_notify_sends_one_datagram_per_state(notify_socket: socket.socket) -> None:
    for state in ("READY=1", "WATCHDOG=1", "STATUS=30.1 fps, car armed", "STOPPING=1"):
        assert notify(state) is True
        assert notify_socket.recv(4096).decode() == state


def test_notify_abstract_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    name = f"rc-car-test-{os.getpid()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
        assert notify("READY=1")
        assert sock.recv(4096) == b"READY=1"


def test_notify_outside_systemd_and_on_errors(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert notify("READY=1") is False
    monkeypatch.setenv("NOTIFY_SOCKET", str(tmp_path / "nobody-listens"))
    assert notify("READY=1") is False  # never raises into the loop
    monkeypatch.setenv("NOTIFY_SOCKET", "vsock:2:1234")
    assert notify("READY=1") is False


def test_notify_from_a_child_process_carries_its_pid(notify_socket: socket.socket) -> None:
    """systemd (NotifyAccess=main) checks the sender's pid from SCM_CREDENTIALS: the datagram must come
    from the process itself, as here, where a separate process notifies like rc-runtime does."""
    notify_socket.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
    proc = subprocess.run(
        [sys.executable, "-c", "import os; from runtime.notify import notify; assert notify('READY=1'); print(os.getpid())"],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
    )
    msg, ancdata, _, _ = notify_socket.recvmsg(4096, socket.CMSG_SPACE(12))
    assert msg == b"READY=1"
    level, kind, data = ancdata[0]
    assert (level, kind) == (socket.SOL_SOCKET, socket.SCM_CREDENTIALS)
    pid, _uid, _gid = struct.unpack("iII", data[:12])
    assert pid == int(proc.stdout)


def test_watchdog_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "3000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert watchdog_interval_s() == 1.5
    monkeypatch.setenv("WATCHDOG_PID", str(os.getpid() + 1))
    assert watchdog_interval_s() is None
    monkeypatch.delenv("WATCHDOG_USEC")
    assert watchdog_interval_s() is None


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser


def test_unit_has_what_the_car_needs() -> None:
    unit = _unit()
    svc = unit["Service"]
    assert svc["Type"] == "notify" and svc["NotifyAccess"] == "main"
    assert svc["Restart"] == "on-failure"
    assert re.fullmatch(r"\d+s", svc["WatchdogSec"])
    assert svc["User"] == "rc-car"
    assert set(svc["SupplementaryGroups"].split()) >= {"dialout", "video", "render"}
    assert "/etc/rc-car/runtime.toml" in svc["ExecStart"] and svc["ExecStart"].startswith("/opt/rc-car/venv/bin/rc-runtime")
    assert svc["KillSignal"] == "SIGTERM"
    assert svc.get("ProtectSystem") == "strict" and svc.get("NoNewPrivileges") == "yes"
    for breaks_gpu_or_tty in ("PrivateDevices", "DevicePolicy", "MemoryDenyWriteExecute", "ProcSubset", "PrivateUsers"):
        assert breaks_gpu_or_tty not in svc, breaks_gpu_or_tty
    assert unit["Install"]["WantedBy"] == "multi-user.target"


def _verify(unit_text: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """systemd-analyze verify in a scratch root holding the system's units, the unit and its ExecStart."""
    root = tmp_path / "root"
    shutil.copytree("/lib/systemd/system", root / "usr/lib/systemd/system", symlinks=True)
    (root / "etc/systemd/system").mkdir(parents=True)
    (root / "etc/systemd/system/rc-runtime.service").write_text(unit_text)
    exe = root / "opt/rc-car/venv/bin/rc-runtime"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    return subprocess.run(
        ["systemd-analyze", "verify", "--man=no", f"--root={root}", "/etc/systemd/system/rc-runtime.service"],
        capture_output=True, text=True,
    )


@pytest.mark.skipif(
    shutil.which("systemd-analyze") is None or not Path("/lib/systemd/system/multi-user.target").exists(),
    reason="systemd-analyze missing: apt-get install systemd",
)
def test_systemd_analyze_verify_accepts_the_unit(tmp_path: Path) -> None:
    good = _verify(UNIT.read_text(), tmp_path / "good")
    assert good.returncode == 0 and good.stdout + good.stderr == "", good.stdout + good.stderr
    # and it does look: a typo is reported
    bad = _verify(UNIT.read_text().replace("NoNewPrivileges=yes", "NoNewPrivileges=yes\nProtectSytem=strict"), tmp_path / "bad")
    assert "ProtectSytem" in bad.stdout + bad.stderr


def test_udev_rule_is_well_formed() -> None:
    rules = [line for line in (JETSON / "udev/99-rc-car.rules").read_text().splitlines() if line and not line.startswith("#")]
    assert rules
    key = re.compile(r'^(SUBSYSTEM|KERNEL|ATTRS\{\w+\}|ENV\{\w+\}|SYMLINK|GROUP|MODE)(==|\+=|=)"[^"]*"$')
    for rule in rules:
        pairs = [p.strip() for p in rule.split(",")]
        assert all(key.match(p) for p in pairs), rule
        assert 'SYMLINK+="rc-car"' in pairs and 'GROUP="dialout"' in pairs and 'ENV{ID_MM_DEVICE_IGNORE}="1"' in pairs


def test_install_script_dry_run(tmp_path: Path) -> None:
    root = tmp_path / "root"
    out = subprocess.run(
        ["bash", str(JETSON / "install.sh"), "--dry-run", "--root", str(root), "--usb-serial", "ABC123"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "python3 -m venv --system-site-packages /opt/rc-car/venv" in out
    assert "pip install --constraint" in out and f"{REPO}[jetson]" in out and "pycuda" in out
    assert "systemctl enable rc-runtime.service" in out and "udevadm control --reload-rules" in out
    assert (root / "etc/systemd/system/rc-runtime.service").read_text() == UNIT.read_text()
    assert 'ATTRS{serial}=="ABC123"' in (root / "etc/udev/rules.d/99-rc-car.rules").read_text()
    assert (root / "etc/rc-car/runtime.toml").read_text() == (JETSON / "config/runtime.toml").read_text()
    # a second run keeps the user's config
    (root / "etc/rc-car/runtime.toml").write_text("# mine\n")
    subprocess.run(["bash", str(JETSON / "install.sh"), "--dry-run", "--root", str(root)], capture_output=True, check=True)
    assert (root / "etc/rc-car/runtime.toml").read_text() == "# mine\n"
    assert (root / "etc/rc-car/runtime.toml.new").exists()


def test_install_script_refuses_bad_input(tmp_path: Path) -> None:
    res = subprocess.run(["bash", str(JETSON / "install.sh"), "--dry-run", "--bundle", str(tmp_path)], capture_output=True, text=True)
    assert res.returncode != 0 and "no manifest.json" in res.stderr
    res = subprocess.run(["bash", str(JETSON / "install.sh"), "--frobnicate"], capture_output=True, text=True)
    assert res.returncode != 0 and "unknown option" in res.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck missing: apt-get install shellcheck")
def test_install_script_passes_shellcheck() -> None:
    res = subprocess.run(["shellcheck", str(JETSON / "install.sh")], capture_output=True, text=True)
    assert res.returncode == 0, res.stdout


def test_default_config_is_valid() -> None:
    config = pytest.importorskip("runtime.config")
    cfg = config.load_config(JETSON / "config" / "runtime.toml")
    assert cfg.link.uri == "/dev/rc-car"
    assert cfg.camera.uri.startswith("csi://")
