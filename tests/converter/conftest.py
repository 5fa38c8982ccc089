from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The converter reads ./rc-edge.toml and defaults to ./.demo/mlflow.db and ./builds: tests run
    elsewhere so the checkout's own config and demo store never leak into them (or get written)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RC_MODEL_NAME", raising=False)
