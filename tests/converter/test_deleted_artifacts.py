"""A registered version whose artifacts were deleted (a cleaned artifact store, ``mlflow gc``, a
hand-deleted run folder) is one line naming the version, the missing artifact and the fix, exit 2,
never MLflow's multi-line "No such artifact" with no fix: from a local store (~4 s) and through a
real ``mlflow server`` (its proxied artifacts; marked server/slow)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from converter.cli import main
from tests.conftest import MlflowServer
from tests.converter.team_store import FIXTURE, place_team_store


def _one_error(capfd: pytest.CaptureFixture[str]) -> str:
    err = capfd.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "No such artifact" not in err and "#####" not in err, err
    return errors[0]


def test_deleted_artifacts_of_a_local_store_are_one_line_with_the_fix(tmp_path: Path,
                                                                       capfd: pytest.CaptureFixture[str]) -> None:
    store = place_team_store(tmp_path / "team")
    shutil.rmtree(next((tmp_path / "team" / "artifacts").glob("*/artifacts/model")))
    code = main(["--name", store.name, "--version", "1", "--tracking-uri", store.uri, "--no-log",
                 "--formats", "onnx", "--output", str(tmp_path / "b")])
    line = _one_error(capfd)
    assert code == 2 and "tiny_pilot v1: its artifacts were deleted ('model' is missing" in line, line
    assert "restore them" in line and "register the model again" in line
    assert not (tmp_path / "b").exists()


@pytest.mark.server
@pytest.mark.slow
def test_deleted_artifacts_behind_a_server_are_one_line_with_the_fix(mlflow_server: MlflowServer, tmp_path: Path,
                                                                      capfd: pytest.CaptureFixture[str]) -> None:
    from mlflow import MlflowClient

    uri = mlflow_server.url
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    run = client.create_run(client.create_experiment("deleted-artifacts"))
    client.log_artifact(run.info.run_id, str(FIXTURE / "tiny_pilot.onnx"), "model")
    client.create_registered_model("gone_pilot")
    client.create_model_version("gone_pilot", f"{run.info.artifact_uri}/model", run.info.run_id)
    shutil.rmtree(next((mlflow_server.root / "artifacts").rglob(f"{run.info.run_id}/artifacts/model")))
    capfd.readouterr()
    code = main(["--name", "gone_pilot", "--version", "1", "--tracking-uri", uri, "--no-log", "--formats", "onnx",
                 "--output", str(tmp_path / "b")])
    line = _one_error(capfd)
    assert code == 2 and "gone_pilot v1: its artifacts were deleted (" in line and "/artifacts/model' is missing" in line
    assert "restore them" in line, line
