"""The workstation tools never migrate, create or change a tracking store they only read
(issue 22, item 5), on a real MLflow 2.x registry: ``fixtures/mlflow2_store``, written by MLflow
2.22 (alembic ``0584bdc529eb``; see its README). MLflow 3 migrates such a store as soon as it
opens it, after which the team's 2.22 clients fail ("Can't locate revision ...").

Every read-only command leaves the store's bytes as they were (and so its revision); logging to it
is refused with the fix, before any work; ``--allow-upgrade`` lets MLflow migrate it. The URI
precedence is one rule for every tool: flag, then $MLFLOW_TRACKING_URI, then the config.
~25 s (two tiny conversions, one tiny benchmark)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from converter.cli import main as convert_model
from converter.tracking_store import StoreError, installed_schema, open_store, resolve_tracking_uri
from tests.converter.team_store import MLFLOW2_REVISION, TeamStore, place_team_store

QUICK_BENCH = ["--repeats", "1", "--warmup", "2", "--min-count", "10", "--min-time", "0.01", "--no-loop"]


def _errors(capfd: pytest.CaptureFixture[str]) -> list[str]:
    err = capfd.readouterr().err
    return [line for line in err.splitlines() if line.startswith("error:") or " error: " in line]


def _convert(store: TeamStore, out: Path, *extra: str) -> int:
    return convert_model(["--name", store.name, "--alias", "production", "--tracking-uri", store.uri,
                          "--formats", "onnx", "--output", str(out), *extra])


def test_every_workstation_command_leaves_an_mlflow2_store_as_it_was(tmp_path: Path,
                                                                      capfd: pytest.CaptureFixture[str]) -> None:
    from benchmarks.cli import main as rc_benchmark
    from converter.demo.seed_store import SeedError, client_for

    store = place_team_store(tmp_path / "team")
    before = store.sha256()
    out = tmp_path / "builds"

    # Read only: converted from the store (read from a migrated copy), benchmarked by alias.
    assert _convert(store, out, "--no-log") == 0
    assert (out / "tiny_pilot" / "v1" / "manifest.json").is_file()
    assert rc_benchmark(["--alias", "production", "--name", store.name, "--tracking-uri", store.uri,
                         "--output", str(out), "--no-log", "--out", str(tmp_path / "bench"), *QUICK_BENCH]) == 0
    assert store.sha256() == before and store.revision() == MLFLOW2_REVISION
    capfd.readouterr()

    # Writing: refused with the fix, before any work; the seeder refuses to migrate it too.
    assert _convert(store, tmp_path / "other", "--force") == 2
    errors = _errors(capfd)
    assert len(errors) == 1 and "older schema (0584bdc529eb" in errors[0], errors
    assert "mlflow db upgrade" in errors[0] and "--allow-upgrade" in errors[0] and "--no-log" in errors[0]
    assert not (tmp_path / "other").exists()
    assert rc_benchmark(["--bundle", str(out / "tiny_pilot" / "v1"), "--tracking-uri", store.uri,
                         "--out", str(tmp_path / "bench2"), *QUICK_BENCH]) == 2
    assert not (tmp_path / "bench2").exists()
    with pytest.raises(SeedError, match="older schema"):
        client_for(store.uri)
    assert store.sha256() == before and store.revision() == MLFLOW2_REVISION

    # --allow-upgrade: the user lets MLflow migrate it, and the conversion is logged there.
    assert _convert(store, out, "--allow-upgrade") == 0
    assert store.revision() == installed_schema().head


def test_a_missing_sqlite_file_is_an_error_and_is_not_created(tmp_path: Path,
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "typo.db"
    code = convert_model(["--name", "m", "--version", "1", "--tracking-uri", f"sqlite:///{db}", "--no-log",
                          "--output", str(tmp_path / "b")])
    errors = _errors(capfd)
    assert code == 2 and len(errors) == 1 and f"no sqlite file at {db}" in errors[0], errors
    assert not db.exists() and not (tmp_path / "b").exists()


def test_the_environment_beats_the_config_and_the_flag_beats_both(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch,
                                                                  capfd: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "rc-edge.toml"
    cfg.write_text(f'[model]\nname = "m"\ntracking_uri = "sqlite:///{tmp_path / "from-config.db"}"\n')
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'from-env.db'}")
    assert convert_model(["--version", "1", "--config", str(cfg), "--no-log"]) == 2
    assert "from-env.db" in _errors(capfd)[0]
    assert convert_model(["--version", "1", "--config", str(cfg), "--no-log",
                          "--tracking-uri", f"sqlite:///{tmp_path / 'from-flag.db'}"]) == 2
    assert "from-flag.db" in _errors(capfd)[0]
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert resolve_tracking_uri(None, "sqlite:///c.db") == "sqlite:///c.db"
    assert not list(tmp_path.glob("*.db"))


def test_a_store_from_a_newer_mlflow_or_not_from_mlflow_is_refused_unchanged(tmp_path: Path) -> None:
    store = place_team_store(tmp_path / "team")
    con = sqlite3.connect(store.db)
    con.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    con.commit()
    con.close()
    before = store.sha256()
    with pytest.raises(StoreError, match=r"does not know \(a newer MLflow wrote it\)"):
        open_store(store.uri, write=False)
    other = tmp_path / "notes.db"
    con = sqlite3.connect(other)
    con.execute("CREATE TABLE notes (t TEXT)")
    con.commit()
    con.close()
    other_bytes = other.read_bytes()
    with pytest.raises(StoreError, match="not an MLflow store"):
        open_store(f"sqlite:///{other}", write=False)
    assert store.sha256() == before and other.read_bytes() == other_bytes
