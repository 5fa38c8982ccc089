"""Shared fixtures: a real sqlite MLflow registry seeded with the demo model, the bundle the
converter makes from it, and (for tests marked ``server``) a real ``mlflow server`` on 127.0.0.1.

Session-scoped: the demo model is trained and converted once per test run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# What the environment said before any test module was imported (see pytest_collection_finish).
_LEGACY_KERAS_AT_START = os.environ.get("TF_USE_LEGACY_KERAS")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail fast when collecting a test module switched tf.keras to tf_keras for the whole run.

    Importing onnx2tf sets ``TF_USE_LEGACY_KERAS=1`` in this process; every later ``tf.keras``
    (MLflow's tensorflow flavor among them) is then tf_keras, and Keras 3 models are refused as an
    "Unknown model type" in tests far away from the import. onnx2tf runs in a child process only.
    """
    now = os.environ.get("TF_USE_LEGACY_KERAS")
    if now != _LEGACY_KERAS_AT_START:
        raise pytest.UsageError(
            f"a test module set TF_USE_LEGACY_KERAS={now!r} while being collected (importing onnx2tf does): "
            "check for it with importlib.util.find_spec instead of importing it"
        )


# Session fixtures that train the demo model with TensorFlow and convert it (~70 s on 2 cores before
# the first test using them can start): a test needing one is ``slow`` whatever its own length, so
# that ``make test-fast`` (``-m "not slow ..."``) never pays for them. ``bundle`` (tests/runtime,
# tests/benchmarks) is ``demo_bundle``; ``RC_TEST_BUNDLE`` skips the conversion but not the mark.
NEEDS_DEMO_MODEL = ("demo_registry", "demo_bundle")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark ``slow`` every test whose fixtures (direct or through others) include :data:`NEEDS_DEMO_MODEL`."""
    for item in items:
        if any(name in getattr(item, "fixturenames", ()) for name in NEEDS_DEMO_MODEL):
            item.add_marker(pytest.mark.slow)


os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Fail fast against dead servers in tests (production keeps MLflow's defaults).
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")

REPO = Path(__file__).resolve().parents[1]


def checkout_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """``os.environ`` (plus ``extra``) with this checkout first on PYTHONPATH, for subprocesses:
    they then import the code under test, not whatever the venv's (editable) install points at."""
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != REPO]
    return {**os.environ, **(extra or {}), "PYTHONPATH": os.pathsep.join([str(REPO), *rest])}


def python_module(module: str, *args: str) -> list[str]:
    """The argv that runs ``module`` of this checkout under the test's own interpreter (never a
    console script from the venv's ``bin/``); pair it with ``env=checkout_env()``."""
    return [sys.executable, "-m", module, *args]


@contextlib.contextmanager
def car_sim_process(link: Path, log: Path) -> Iterator[subprocess.Popen[str]]:
    """``rc-car-sim`` in its own process on a pty at ``link`` (logging to ``log``), once the link exists;
    stopped with SIGTERM when the block ends."""
    sim = subprocess.Popen(python_module("runtime.sim.cli", "--pty-link", str(link), "--log", str(log)),
                           env=checkout_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while not link.exists() and time.monotonic() < deadline and sim.poll() is None:
            time.sleep(0.05)
        assert link.exists(), "rc-car-sim did not start"
        yield sim
    finally:
        sim.send_signal(signal.SIGTERM)
        sim.communicate(timeout=30)


# Subprocesses that the code under test starts itself (benchmark workers, ...) import this
# checkout too, whatever their working directory.
os.environ["PYTHONPATH"] = checkout_env()["PYTHONPATH"]


@dataclass(frozen=True)
class DemoRegistry:
    tracking_uri: str
    root: Path
    name: str = "rc_pilot"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop_server(proc: subprocess.Popen[bytes], log: Any) -> None:
    """Stop an ``mlflow server`` started in its own process group (it leaves a job-runner child
    alive after SIGTERM, so the whole group goes), then close its log."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
    log.close()


def wait_for_health(url: str, proc: subprocess.Popen[bytes], log_path: Path, log: Any = None) -> None:
    """Wait (up to 120 s) for an ``mlflow server`` at ``url`` to answer /health; RuntimeError with
    the tail of its log if it exits or never answers."""
    deadline = time.monotonic() + 120
    while True:
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            pass  # not up yet
        if proc.poll() is not None or time.monotonic() > deadline:
            if log is not None:
                log.flush()
            raise RuntimeError(f"mlflow server at {url} did not come up: {log_path.read_text()[-2000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="session")
def demo_registry(tmp_path_factory: pytest.TempPathFactory) -> DemoRegistry:
    """A sqlite store with rc_pilot v1 (.h5 artifact), v2 (keras flavor), v3 (tensorflow flavor)."""
    for mod in ("tensorflow", "mlflow"):
        pytest.importorskip(mod, reason=f"{mod} is not installed: this is a runtime-only environment (the car's)")
    from converter.demo.seed import seed_registry

    root = tmp_path_factory.mktemp("registry")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    seed_registry(uri, root / "artifacts", name="rc_pilot", quick=True)
    return DemoRegistry(uri, root)


def convert(argv: list[str]) -> int:
    from converter.cli import main

    return main(argv)


@pytest.fixture(scope="session")
def demo_bundle(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle `convert-model --version 3` makes of the demo model (CPU formats), logged to MLflow.

    ``RC_TEST_BUNDLE=DIR`` uses a bundle made beforehand instead: the runtime's tests then run in
    the car's environment (Python 3.10, no TensorFlow/MLflow) against a real converter output.
    """
    premade = os.environ.get("RC_TEST_BUNDLE")
    if premade:
        return Path(premade)
    demo_registry: DemoRegistry = request.getfixturevalue("demo_registry")
    out = tmp_path_factory.mktemp("builds")
    code = convert([
        "--name", demo_registry.name, "--version", "3", "--tracking-uri", demo_registry.tracking_uri,
        "--output", str(out), "--formats", "onnx,onnx-fp16,tflite-fp32,tflite-fp16",
    ])
    assert code == 0, f"convert-model exited {code}"
    return out / demo_registry.name / "v3"


@pytest.fixture(scope="session")
def drive_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 120-frame synthetic drive as .mp4 (what a camera would have seen)."""
    from converter.demo.track import drive_sequence, write_video

    frames, _, _ = drive_sequence(120, seed=7)
    return write_video(tmp_path_factory.mktemp("media") / "drive.mp4", frames, fps=30)


@dataclass(frozen=True)
class MlflowServer:
    url: str
    root: Path


@pytest.fixture(scope="session")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """A real `mlflow server` on 127.0.0.1 in its own process group (it leaves a job-runner child
    behind on SIGTERM, so the whole group is stopped)."""
    pytest.importorskip("mlflow", reason="mlflow is not installed: this is a runtime-only environment (the car's)")
    root = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "mlflow", "server",
            "--backend-store-uri", f"sqlite:///{root / 'server.db'}",
            "--artifacts-destination", str(root / "artifacts"),
            "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
        ],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root,
    )
    try:
        wait_for_health(url, proc, root / "server.log", log)
        yield MlflowServer(url, root)
    finally:
        stop_server(proc, log)
