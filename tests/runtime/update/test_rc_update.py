"""``rc-update`` against a real ``mlflow server`` on 127.0.0.1 (tests/conftest.py) with signed
bundles logged the way convert-model logs them; ``rc-update`` runs as its own process where a kill
or a wait matters, else in-process through its ``main``. Marked server + slow like the converter's
server test: 1.5 to 3.5 min on the shared 2-core machine (load-dependent), most of it the server's start and MLflow's
client logging the releases; rc-update's own passes take well under a second each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from runtime.manifest import load_manifest
from runtime.update.cli import main
from tests.conftest import MlflowServer, free_port
from tests.runtime.signing.keys import write_keypair
from tests.runtime.update.registry_parts import Relay, publish, signed_bundle, version_tags

pytestmark = [pytest.mark.server, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[3]


@dataclass
class Setup:
    url: str
    work: Path
    key: Path
    pub: Path
    other_key: Path
    other_pub: Path


@pytest.fixture(scope="module")
def reg(mlflow_server: MlflowServer, tmp_path_factory: pytest.TempPathFactory) -> Setup:
    work = tmp_path_factory.mktemp("rc-update")
    key, pub = write_keypair(work, "team")
    other_key, other_pub = write_keypair(work, "other")
    return Setup(mlflow_server.url, work, key, pub, other_key, other_pub)


def args(reg: Setup, name: str, root: Path, *extra: str, url: str | None = None) -> list[str]:
    return ["--tracking-uri", url or reg.url, "--name", name, "--alias", "champion", "--root", str(root),
            "--trust", str(reg.pub), "--car-id", "car7", "--state-file", str(root.parent / "state.json"), *extra]


def release(reg: Setup, name: str, version: str, key: Path | None = None, wrong_outputs: bool = False) -> str:
    bundle = signed_bundle(reg.work / name, name, version, key or reg.key, wrong_outputs=wrong_outputs)
    got = publish(reg.url, name, bundle)
    assert got == version
    return got


def current(root: Path) -> str | None:
    return os.readlink(root / "current") if (root / "current").is_symlink() else None


def test_once_installs_reports_and_rolls_back(reg: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "car"
    release(reg, "pilot_a", "1")
    assert main([*args(reg, "pilot_a", root), "--once"]) == 0
    assert current(root) == "bundles/v1"
    m = load_manifest(root / "current")  # what rc-runtime --bundle loads
    assert m.model.version == "1" and m.model.name == "pilot_a"
    assert version_tags(reg.url, "pilot_a", "1")["edge.car.car7"].startswith("installed ")
    assert main([*args(reg, "pilot_a", root), "--once"]) == 0
    assert "already current" in capsys.readouterr().out
    release(reg, "pilot_a", "2")
    assert main([*args(reg, "pilot_a", root), "--once"]) == 0
    assert current(root) == "bundles/v2"
    assert main(["rollback", "--root", str(root), "--state-file", str(tmp_path / "none.json")]) == 0
    assert current(root) == "bundles/v1"
    capsys.readouterr()
    assert main([*args(reg, "pilot_a", root), "--once"]) == 1  # the alias still says v2: rolled back here
    assert "rolled back on this car" in capsys.readouterr().err
    assert current(root) == "bundles/v1"
    assert main(["status", "--root", str(root), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["current"]["version"] == "1" and doc["current"]["valid"] and doc["rolled_back"] == ["2"]


@pytest.mark.parametrize("fault", ["tampered file", "wrong key", "wrong outputs"])
def test_a_bad_bundle_is_refused_and_current_unchanged(
    fault: str, reg: Setup, tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    name = {"tampered file": "pilot_b", "wrong key": "pilot_c", "wrong outputs": "pilot_h"}[fault]
    root = tmp_path / "car"
    release(reg, name, "1")
    assert main([*args(reg, name, root), "--once"]) == 0
    if fault == "tampered file":
        bundle = signed_bundle(reg.work / name, name, "2", reg.key)
        with open(bundle / "model.onnx", "ab") as f:
            f.write(b"\0")  # after signing: the manifest's sha256 no longer matches
        publish(reg.url, name, bundle)
    else:
        release(reg, name, "2", key=reg.other_key if fault == "wrong key" else None,
                wrong_outputs=fault == "wrong outputs")
    capsys.readouterr()
    assert main([*args(reg, name, root), "--once"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("rc-update: refused:"), err
    assert {"tampered file": "sha256", "wrong key": "not a trusted key", "wrong outputs": "replay gate"}[fault] in err
    assert current(root) == "bundles/v1" and not (root / "bundles" / "v2").exists()
    tags = version_tags(reg.url, name, "2")
    assert tags["edge.car.car7"].startswith("refused:")
    if fault == "wrong outputs":  # the gate's figures go back to the registry with the refusal
        gate = json.loads(tags["edge.car.car7.replay_gate"])
        assert gate["max_abs_err"]["steering"] > gate["tolerance"] and gate["frames"] == 12


def test_registry_unreachable_is_exit_3_and_bad_usage_is_2(reg: Setup, tmp_path: Path) -> None:
    root = tmp_path / "car"
    release(reg, "pilot_d", "1")
    assert main([*args(reg, "pilot_d", root), "--once"]) == 0
    down = f"http://127.0.0.1:{free_port()}"
    assert main([*args(reg, "pilot_d", root, url=down), "--once"]) == 3
    assert current(root) == "bundles/v1"
    assert main([*args(reg, "pilot_d", root, url="ftp://x"), "--once"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["--name", "x"])
    assert e.value.code == 2


def rc_update(argv: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen([sys.executable, "-m", "runtime.update", *argv], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def write_state(path: Path, parked: bool) -> None:
    from runtime.atomic import atomic_write_json

    atomic_write_json(path, {"running": True, "armed": not parked, "parked": parked, "bundle": "x",
                             "model_version": "1", "fps": 30.0, "updated_monotonic": time.monotonic(),
                             "updated_wall": time.time(), "pid": os.getpid(), "health": {}})


class RuntimeState:
    """A state file kept fresh every 0.2 s, as a running runtime keeps it; :meth:`park` changes it
    at once, under the keeper's lock (never overwritten by a late write of the old value)."""

    def __init__(self, path: Path) -> None:
        self.path, self.parked, self.stop = path, False, False
        self.lock = threading.Lock()

    def park(self, parked: bool) -> None:
        with self.lock:
            self.parked = parked
            write_state(self.path, parked)

    def keep(self) -> None:
        while not self.stop:
            with self.lock:
                write_state(self.path, self.parked)
            time.sleep(0.2)


@pytest.fixture
def runtime_state(tmp_path: Path) -> Iterator[RuntimeState]:
    state = RuntimeState(tmp_path / "state.json")
    t = threading.Thread(target=state.keep, daemon=True)
    t.start()
    yield state
    state.stop = True
    t.join()


def test_alias_moved_while_driving_is_staged_and_swapped_only_once_parked(
    reg: Setup, tmp_path: Path, runtime_state: RuntimeState,
) -> None:
    root = tmp_path / "car"
    release(reg, "pilot_e", "1")
    runtime_state.park(True)
    assert main([*args(reg, "pilot_e", root), "--once"]) == 0
    runtime_state.park(False)  # the car drives v1
    release(reg, "pilot_e", "2")
    assert main([*args(reg, "pilot_e", root), "--once"]) == 4  # staged, not swapped
    assert current(root) == "bundles/v1" and (root / "bundles" / "v2" / "manifest.json").is_file()
    proc = rc_update([*args(reg, "pilot_e", root), "--once", "--park-timeout", "30"])
    time.sleep(1.5)
    assert proc.poll() is None and current(root) == "bundles/v1"  # still driving: it waits
    runtime_state.park(True)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert current(root) == "bundles/v2"


@pytest.mark.parametrize("fault", ["kill -9", "server gone"])
def test_a_broken_download_leaves_current_valid_and_resumes(reg: Setup, tmp_path: Path, fault: str) -> None:
    name = "pilot_f" if fault == "kill -9" else "pilot_g"
    root = tmp_path / "car"
    release(reg, name, "1")
    assert main([*args(reg, name, root), "--once"]) == 0
    release(reg, name, "2")
    up = urllib.parse.urlparse(reg.url)
    relay = Relay((up.hostname or "", up.port or 0), cut_on="reference.npz", cut_after=2000,
                  stall=fault == "kill -9")
    try:
        proc = rc_update([*args(reg, name, root, url=relay.url), "--once"])
        assert relay.cut.wait(60), "the download never reached reference.npz"
        if fault == "kill -9":
            time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.communicate(timeout=10)
        else:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode == 3 and "resumes next time" in err, err
    finally:
        relay.close()
    assert current(root) == "bundles/v1"
    assert load_manifest(root / "current").model.version == "1"
    staged = root / "staging" / "2.partial"
    assert (staged / "model.onnx").is_file() and not (staged / "reference.npz").exists()
    proc = rc_update([*args(reg, name, root), "--once", "--log-level", "DEBUG"])
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert current(root) == "bundles/v2" and not staged.exists()
    last = json.loads((root / "update.json").read_text())["last"]
    assert last["figures"]["files_resumed"] == 1 and last["figures"]["files_fetched"] == 1


def test_polling_follows_the_alias_and_stops_on_sigterm(reg: Setup, tmp_path: Path) -> None:
    root = tmp_path / "car"
    release(reg, "pilot_i", "1")
    proc = rc_update([*args(reg, "pilot_i", root), "--interval", "0.5", "--jitter", "0.1"])
    try:
        end = time.monotonic() + 60
        while current(root) != "bundles/v1" and time.monotonic() < end and proc.poll() is None:
            time.sleep(0.1)
        assert current(root) == "bundles/v1"
        t_alias = time.monotonic()
        release(reg, "pilot_i", "2")
        while current(root) != "bundles/v2" and time.monotonic() < t_alias + 60 and proc.poll() is None:
            time.sleep(0.1)
        assert current(root) == "bundles/v2"
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "installed models:/pilot_i@champion v2" in err
