"""Against a real `mlflow server --app-name basic-auth` on 127.0.0.1: the fleet server teams run.

Users: ``admin`` (set through the auth config: MLflow ships no default admin password), ``team``
(MANAGE on the pilot and its experiment) and ``viewer`` (READ on the pilot and its experiment).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from converter.cli import main
from runtime.manifest import load_manifest
from tests.conftest import free_port, stop_server, wait_for_health
from tests.converter.legacy_helpers import FIXTURES

pytestmark = [pytest.mark.server, pytest.mark.slow]

ADMIN_PASSWORD = "fleet-admin-" + secrets.token_hex(8)
PASSWORDS = {"team": "team-" + secrets.token_hex(8), "viewer": "viewer-" + secrets.token_hex(8)}
NAME = "fleet_pilot"


@dataclass(frozen=True)
class AuthServer:
    url: str
    root: Path


def _wait_up(url: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
    wait_for_health(url, proc, log_path)


def _as(monkeypatch: pytest.MonkeyPatch, user: str | None, password: str | None = None) -> None:
    for var, value in (("MLFLOW_TRACKING_USERNAME", user), ("MLFLOW_TRACKING_PASSWORD", password)):
        if value is None:
            monkeypatch.delenv(var, raising=False)
        else:
            monkeypatch.setenv(var, value)
    monkeypatch.delenv("MLFLOW_TRACKING_TOKEN", raising=False)


@pytest.fixture(scope="session")
def auth_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AuthServer]:
    """The server, with ``fleet_pilot`` v1 (the donkeycar tf.keras 2.2 pilot) registered by admin and
    the users above; stopped as a whole process group."""
    root = tmp_path_factory.mktemp("auth-server")
    ini = root / "basic_auth.ini"
    ini.write_text(
        "[mlflow]\ndefault_permission = NO_PERMISSIONS\n"
        f"database_uri = sqlite:///{root / 'auth.db'}\n"
        f"admin_username = admin\nadmin_password = {ADMIN_PASSWORD}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n"
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "MLFLOW_AUTH_CONFIG_PATH": str(ini),
           "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16)}
    log = open(root / "server.log", "wb")  # noqa: SIM115 - lives as long as the server
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--app-name", "basic-auth",
         "--backend-store-uri", f"sqlite:///{root / 'server.db'}", "--artifacts-destination", str(root / "artifacts"),
         "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True, cwd=root, env=env,
    )
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD",
                                            "MLFLOW_HTTP_REQUEST_TIMEOUT")}
    # The auth app's first requests (user store, password hashing) are slow on a loaded machine.
    os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] = "120"
    try:
        _wait_up(url, proc, root / "server.log")
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = "admin", ADMIN_PASSWORD
        _seed(url, root)
        yield AuthServer(url, root)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        stop_server(proc, log)


def _seed(url: str, root: Path) -> None:
    """As admin: the pilot logged over HTTP (artifacts proxied by the server), two users."""
    from mlflow import MlflowClient
    from mlflow.server.auth.client import AuthServiceClient

    client = MlflowClient(tracking_uri=url, registry_uri=url)
    exp = client.create_experiment("fleet-training")
    run = client.create_run(exp)
    client.log_artifact(run.info.run_id, str(FIXTURES / "donkey3_linear_tf223.h5"), artifact_path="model")
    client.create_registered_model(NAME)
    client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
    client.set_model_version_tag(NAME, "1", "edge.preprocess", json.dumps({"width": 80, "height": 64}))
    auth = AuthServiceClient(url)
    for user, permission in (("team", "MANAGE"), ("viewer", "READ")):
        auth.create_user(user, PASSWORDS[user])
        auth.grant_user_permission(user, "registered_model", NAME, permission)
        auth.grant_user_permission(user, "experiment", exp, permission)
    # The conversions' experiment exists and belongs to admin: the viewer may not write there.
    client.create_experiment("edge-conversion")


def _convert(server: AuthServer, out: Path, capfd: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    code = main(["--name", NAME, "--version", "1", "--tracking-uri", server.url, "--output", str(out),
                 "--formats", "onnx", *extra])
    cap = capfd.readouterr()
    return code, cap.out + "\n" + cap.err


@pytest.mark.parametrize("user, password", [(None, None), ("team", "wrong-password"), ("nobody", "x")])
def test_no_or_wrong_credentials_say_so(auth_server: AuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                        capfd: pytest.CaptureFixture[str], user: str | None,
                                        password: str | None) -> None:
    _as(monkeypatch, user, password)
    code, text = _convert(auth_server, tmp_path / "b", capfd)
    assert code == 2, text
    assert "HTTP 401" in text and auth_server.url in text
    assert "MLFLOW_TRACKING_USERNAME" in text and "MLFLOW_TRACKING_PASSWORD" in text and "MLFLOW_TRACKING_TOKEN" in text
    assert "not found" not in text and "Traceback" not in text
    assert not (tmp_path / "b").exists()


def test_team_converts_and_logs(auth_server: AuthServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                capfd: pytest.CaptureFixture[str]) -> None:
    from mlflow import MlflowClient

    _as(monkeypatch, "team", PASSWORDS["team"])
    # team may not write to admin's edge-conversion experiment either: grant it, as an admin would.
    _as(monkeypatch, "admin", ADMIN_PASSWORD)
    from mlflow.server.auth.client import AuthServiceClient

    exp = MlflowClient(tracking_uri=auth_server.url).get_experiment_by_name("edge-conversion")
    assert exp is not None
    AuthServiceClient(auth_server.url).grant_user_permission("team", "experiment", exp.experiment_id, "EDIT")
    _as(monkeypatch, "team", PASSWORDS["team"])
    code, text = _convert(auth_server, tmp_path / "b", capfd, "--json")
    assert code == 0, text[-3000:]
    m = load_manifest(tmp_path / "b" / NAME / "v1")
    assert m.build("onnx").parity["max_abs"] <= 1e-4
    run_id = MlflowClient(tracking_uri=auth_server.url).get_model_version(NAME, "1").tags["edge.conversion_run_id"]
    assert run_id in text


def test_read_only_user_pulls_but_cannot_log(auth_server: AuthServer, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]) -> None:
    _as(monkeypatch, "viewer", PASSWORDS["viewer"])
    code, text = _convert(auth_server, tmp_path / "b", capfd)
    assert code == 1, text[-3000:]  # the bundle is fine; the requested logging is not done
    assert load_manifest(tmp_path / "b" / NAME / "v1").build("onnx").parity["max_abs"] <= 1e-4
    flat = " ".join(text.split())
    assert "user 'viewer' lacks permission (HTTP 403)" in flat and "--no-log" in flat and "Traceback" not in text

    code, text = _convert(auth_server, tmp_path / "c", capfd, "--no-log")
    assert code == 0, text[-3000:]


def test_benchmark_names_the_auth_problem(auth_server: AuthServer, monkeypatch: pytest.MonkeyPatch,
                                          capfd: pytest.CaptureFixture[str]) -> None:
    from benchmarks.cli import main as bench

    _as(monkeypatch, "viewer", "wrong-password")
    code = bench(["--name", NAME, "--alias", "production", "--tracking-uri", auth_server.url, "--no-log"])
    err = " ".join(capfd.readouterr().err.split())
    assert code == 2, err
    assert "HTTP 401" in err and "MLFLOW_TRACKING_USERNAME" in err and auth_server.url in err
