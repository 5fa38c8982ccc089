"""The docstring-coverage step of `make lint` (ruff's D1 rules over the contract modules listed in
the Makefile's DOCSTRING_CHECKED) is real: it passes on the tree, every listed path exists (ruff
only warns, exit 0, on a missing path, so a moved module would silently drop out), and removing
one public docstring makes it fail."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _make_var(name: str) -> list[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    match = re.search(rf"^{name}\s*:?=(.*)$", text, flags=re.MULTILINE)
    assert match, f"{name} not defined in the Makefile"
    return shlex.split(match.group(1))


def _ruff(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "ruff", "check", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_every_checked_path_exists() -> None:
    paths = _make_var("DOCSTRING_CHECKED")
    assert paths
    missing = [p for p in paths if not (ROOT / p).exists()]
    assert not missing, f"DOCSTRING_CHECKED names missing paths {missing}: update the Makefile"


def test_checked_modules_pass() -> None:
    result = _ruff(*_make_var("DOCSTRING_RULES"), *_make_var("DOCSTRING_CHECKED"), cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


def test_removing_a_public_docstring_fails_the_check(tmp_path: Path) -> None:
    source = (ROOT / "runtime" / "preprocess.py").read_text()
    func = next(node for node in ast.parse(source).body
                if isinstance(node, ast.FunctionDef) and node.name == "quantize")
    doc = func.body[0]
    assert isinstance(doc, ast.Expr) and isinstance(doc.value, ast.Constant)
    assert doc.end_lineno is not None
    lines = source.splitlines(keepends=True)
    stripped = "".join(lines[: doc.lineno - 1] + lines[doc.end_lineno:])
    (tmp_path / "intact.py").write_text(source)
    (tmp_path / "stripped.py").write_text(stripped)
    rules = _make_var("DOCSTRING_RULES")

    intact = _ruff("--isolated", "--output-format", "concise", *rules, "intact.py", cwd=tmp_path)
    assert intact.returncode == 0, intact.stdout + intact.stderr
    broken = _ruff("--isolated", "--output-format", "concise", *rules, "stripped.py", cwd=tmp_path)
    assert broken.returncode == 1
    assert re.search(rf"stripped\.py:{func.lineno}:\d+: D103", broken.stdout), broken.stdout


def test_contract_doc_names_only_existing_modules() -> None:
    text = (ROOT / "docs" / "contract.md").read_text()
    named = set(re.findall(r"`((?:runtime|converter|calibration|benchmarks)/[\w/]*(?:\.py|/))`", text))
    assert len(named) >= 10, named
    missing = sorted(p for p in named if not (ROOT / p).exists())
    assert not missing, f"docs/contract.md names modules that do not exist: {missing}"
