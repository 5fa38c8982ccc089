"""The deadline guard is real-time under the shipped unit: the unit permits SCHED_FIFO (LimitRTPRIO=,
no RestrictRealtime=yes), a guard started as a non-root user with only the unit's limits gets it
(read back from the kernel), and without it the runtime names the fix and refuses to arm."""

from __future__ import annotations

import configparser
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from runtime.link.guard import FIFO_PRIORITY
from tests.conftest import car_sim_process, checkout_env, python_module

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "jetson" / "systemd" / "rc-runtime.service"
NONROOT = "nobody"  # any uid but 0 without capabilities; the unit's rc-car exists only on the car

# Started as the unit starts it: its user, no groups, no capabilities, no new privileges. Prints
# what the guard reported and what the kernel says about the guard process.
PROBE = """
import json, logging, os, resource
from runtime.link.guard import DeadlineGuard
from runtime.link.seq import SharedSeq
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
g = DeadlineGuard(SharedSeq()); g.start()
pid = g._proc.pid
with open(f"/proc/{pid}/sched") as f:
    sched = {k.strip(): v.strip() for k, v in (line.split(":", 1) for line in f if ":" in line)}
print(json.dumps({"uid": os.getuid(), "rtprio": resource.getrlimit(resource.RLIMIT_RTPRIO)[0],
                  "reported": g.policy, "policy": os.sched_getscheduler(pid),
                  "priority": os.sched_getparam(pid).sched_priority,
                  "proc_policy": int(sched["policy"])}))
g.stop()
"""


def _unit_service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(UNIT)
    return parser["Service"]


def test_unit_permits_the_guards_realtime_priority() -> None:
    svc = _unit_service()
    # RestrictRealtime=yes makes sched_setscheduler(SCHED_FIFO) fail whatever the limit (seccomp).
    assert svc.get("RestrictRealtime", "no") in ("no", "false", "0"), "RestrictRealtime=yes refuses SCHED_FIFO"
    assert int(svc["LimitRTPRIO"]) >= FIFO_PRIORITY
    # and the rest of the hardening stays: no capability would rescue the guard, RLIMIT_RTPRIO must
    assert svc["CapabilityBoundingSet"] == "" and svc["AmbientCapabilities"] == ""
    assert svc["User"] != "root" and svc["NoNewPrivileges"] == "yes"
    for kept in ("RestrictNamespaces", "RestrictSUIDSGID", "LockPersonality", "ProtectKernelTunables"):
        assert svc[kept] == "yes", kept


def _as_unit_user(rtprio: int, tmp_path: Path) -> list[str]:
    """argv prefix: the unit's RLIMIT_RTPRIO, then the non-root user without groups or capabilities."""
    for tool in ("prlimit", "setpriv"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} missing (util-linux): cannot start a process with only the unit's limits")
    if os.geteuid() != 0:
        pytest.skip("needs root to switch to the non-root user (setpriv --reuid)")
    probe = subprocess.run(["prlimit", f"--rtprio={rtprio}:{rtprio}", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot set RLIMIT_RTPRIO={rtprio} here (a hard limit below it and no CAP_SYS_RESOURCE: "
                    f"{probe.stderr.strip()}); systemd sets LimitRTPRIO= as root on the car")
    return ["prlimit", f"--rtprio={rtprio}:{rtprio}", "setpriv", "--reuid", NONROOT, "--regid", NONROOT if _has_group(NONROOT) else "nogroup",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--no-new-privs"]


def _has_group(name: str) -> bool:
    import grp

    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


def _nonroot_python(prefix: list[str]) -> tuple[str, dict[str, str]]:
    """An interpreter the non-root user can run (this one may live under root's 0700 home) and an
    environment in which it imports the guard: this checkout plus a world-readable copy of pyserial."""
    import serial

    site = Path(tempfile.mkdtemp(prefix="rc-guard-site-"))
    site.chmod(0o755)
    shutil.copytree(Path(serial.__file__).parent, site / "serial")
    for d, _, files in os.walk(site):
        os.chmod(d, 0o755)
        for f in files:
            os.chmod(os.path.join(d, f), 0o644)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(site)]), "PYTHONDONTWRITEBYTECODE": "1",
           "HOME": "/"}
    tried = []
    for python in dict.fromkeys([sys.executable, "/usr/bin/python3", shutil.which("python3") or ""]):
        if not python or not os.path.exists(python):
            continue
        # the guard is started as sys.executable by the (now capability-less) process: try just that
        nested = "import subprocess, sys; subprocess.run([sys.executable, '-c', 'import runtime.link.guard'], check=True)"
        res = subprocess.run([*prefix, python, "-c", nested], capture_output=True,
                             text=True, env=env, cwd="/", timeout=60)
        if res.returncode == 0:
            return python, env
        tried.append(f"{python}: {(res.stderr.strip().splitlines() or ['?'])[-1]}")
    pytest.skip(f"no Python that {NONROOT} can run with this checkout ({'; '.join(tried)})")


def _probe(rtprio: int, tmp_path: Path) -> tuple[dict[str, int | str], str]:
    prefix = _as_unit_user(rtprio, tmp_path)
    python, env = _nonroot_python(prefix)
    res = subprocess.run([*prefix, python, "-c", PROBE], capture_output=True, text=True, env=env, cwd="/", timeout=60)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout), res.stderr


def test_guard_gets_sched_fifo_as_non_root_with_the_units_limit(tmp_path: Path) -> None:
    got, _ = _probe(int(_unit_service()["LimitRTPRIO"]), tmp_path)
    assert got["uid"] != 0
    assert got["reported"] == "fifo"
    assert got["policy"] == os.SCHED_FIFO == got["proc_policy"]  # the kernel's view, not the guard's claim
    assert got["priority"] == FIFO_PRIORITY


def test_guard_without_the_limit_runs_normal_and_names_the_fix(tmp_path: Path) -> None:
    got, log = _probe(0, tmp_path)  # what the unit gives without LimitRTPRIO=
    assert got["uid"] != 0 and got["rtprio"] == 0
    assert got["reported"] == "other"
    assert got["policy"] == os.SCHED_OTHER == got["proc_policy"]
    advice = [line for line in log.splitlines() if "normal priority" in line]
    assert advice and f"LimitRTPRIO={FIFO_PRIORITY}" in advice[0] and "RLIMIT_RTPRIO is 0" in advice[0], log
    assert "CAP_SYS_NICE" not in log  # the service has no capabilities: that advice could not help


def _runtime(tmp_path: Path, bundle: Path, video: Path, dev: Path, notify: Path, soft: bool) -> subprocess.CompletedProcess[str]:
    cfg = tmp_path / "runtime.toml"
    cfg.write_text(f"[guard]\nallow_soft_deadline = {'true' if soft else 'false'}\n")
    # RC_LINK_GUARD_REALTIME=0: the guard process really runs at SCHED_OTHER (this test runs as root,
    # which could always have SCHED_FIFO); what is under test is the runtime's answer to that.
    env = checkout_env({"RC_LINK_GUARD_REALTIME": "0", "NOTIFY_SOCKET": str(notify)})
    return subprocess.run(
        python_module("runtime.cli", "--config", str(cfg), "--bundle", str(bundle), "--camera", str(video),
                      "--serial", str(dev), "--max-frames", "20"),
        capture_output=True, text=True, env=env, timeout=120,
    )


def _statuses(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_runtime_refuses_to_arm_on_a_soft_deadline_unless_allowed(tmp_path: Path, demo_bundle: Path, drive_video: Path) -> None:
    dev = tmp_path / "rc-car"
    notify = tmp_path / "notify"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(str(notify))
        sock.setblocking(False)
        with car_sim_process(dev, tmp_path / "refused.jsonl"):
            refused = _runtime(tmp_path, demo_bundle, drive_video, dev, notify, soft=False)
        lines = [line for line in refused.stderr.splitlines() if line.startswith("rc-runtime:")]
        assert refused.returncode == 2, refused.stderr
        assert len(lines) == 1 and "not arming: deadline guard at normal priority" in lines[0], refused.stderr
        assert f"LimitRTPRIO={FIFO_PRIORITY}" in lines[0] and "allow_soft_deadline = true" in lines[0]
        assert any(s.startswith("STATUS=not arming: deadline guard at normal priority") for s in _statuses(sock))
        car = [json.loads(line) for line in (tmp_path / "refused.jsonl").read_text().splitlines()]
        assert car and not any(e["event"] in ("arm", "drive") or e["state"] == "armed" for e in car), car

        with car_sim_process(dev, tmp_path / "soft.jsonl"):
            soft = _runtime(tmp_path, demo_bundle, drive_video, dev, notify, soft=True)
        assert soft.returncode == 0, soft.stderr
        assert "driving with a soft deadline" in soft.stderr
        car = [json.loads(line) for line in (tmp_path / "soft.jsonl").read_text().splitlines()]
        assert any(e["event"] == "drive" for e in car)  # the same setup does drive once allowed
        assert any(s.startswith("STATUS=soft deadline: deadline guard at normal priority") for s in _statuses(sock))
