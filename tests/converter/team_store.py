"""The MLflow 2.x registry fixture (``fixtures/mlflow2_store``, made with MLflow 2.22: see its
README) placed where a test wants it, as a team's store would be: copied, and its four artifact
path columns rebased there with plain ``sqlite3`` (never through MLflow, which would migrate it)."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "mlflow2_store"
MADE_AT = "file:///tmp/mlflow2-fixture/"  # where make_store.py wrote it
MLFLOW2_REVISION = "0584bdc529eb"  # MLflow 2.22's alembic head
PATH_COLUMNS = (("experiments", "artifact_location"), ("runs", "artifact_uri"), ("model_versions", "source"),
                ("model_versions", "storage_location"))


@dataclass(frozen=True)
class TeamStore:
    db: Path
    name: str = "tiny_pilot"

    @property
    def uri(self) -> str:
        return f"sqlite:///{self.db}"

    def sha256(self) -> str:
        return hashlib.sha256(self.db.read_bytes()).hexdigest()

    def revision(self) -> str:
        con = sqlite3.connect(f"{self.db.as_uri()}?mode=ro", uri=True)
        try:
            return str(con.execute("SELECT version_num FROM alembic_version").fetchone()[0])
        finally:
            con.close()


def place_team_store(root: Path) -> TeamStore:
    """The MLflow 2.22 store at ``root/mlflow.db`` with its artifacts at ``root/artifacts``."""
    root.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(FIXTURE / "mlflow.db", root / "mlflow.db")
    shutil.copytree(FIXTURE / "artifacts", root / "artifacts")
    con = sqlite3.connect(root / "mlflow.db")
    try:
        for table, column in PATH_COLUMNS:
            con.execute(f"UPDATE {table} SET {column} = replace({column}, ?, ?)", (MADE_AT, root.as_uri() + "/"))
        con.commit()
    finally:
        con.close()
    store = TeamStore(root / "mlflow.db")
    assert store.revision() == MLFLOW2_REVISION
    return store
