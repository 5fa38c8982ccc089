"""One quick-trained, registered family per test session, shared by every test module that needs it.

Training all nine kinds takes minutes on a laptop CPU, so the first caller seeds a sqlite registry
(the real ``seed_family`` path, as ``rc-demo-registry --family --quick`` runs it) and later callers
in the same process get the same result, trained models included.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

_CACHE: dict[str, Any] = {}
# Whichever test first asks for the family pays for training all nine kinds (about 5 min alone on a
# laptop CPU, several times that on a shared one): such tests get this instead of the suite's 600 s.
FAMILY_TIMEOUT_S = 2400


def seeded_family(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``seed_family(...)``'s result (``keep_models=True``) plus ``"kind_by_name"``; seeded once."""
    if "error" in _CACHE:  # seeding failed once: say so again rather than train for minutes again
        raise RuntimeError(f"seeding the family failed earlier in this session: {_CACHE['error']}")
    if "result" not in _CACHE:
        from converter.demo.family_seed import seed_family

        root: Path = tmp_path_factory.mktemp("family")
        try:
            result = seed_family(
                f"sqlite:///{root / 'mlflow.db'}", root / "artifacts", quick=True, seed=0, keep_models=True
            )
        except Exception as e:
            _CACHE["error"] = f"{type(e).__name__}: {e}"
            raise
        result["kind_by_name"] = {k["kind"]: k for k in result["kinds"]}
        _CACHE["result"] = result
    return _CACHE["result"]
