"""The car's install is pinned: install.sh installs only through requirements/car-constraints.txt,
everything it installs by pip is pinned there with ``==``, and the ``jetson`` extra holds only what
the runtime imports."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CAR_CONSTRAINTS = REPO / "requirements" / "car-constraints.txt"
IMPORT_NAMES = {"pyserial": "serial", "prometheus-client": "prometheus_client"}  # distribution -> the module the code imports


def car_pins() -> dict[str, str]:
    """name (lower case, ``-`` for ``_``) -> version of every ``==`` pin in car-constraints.txt."""
    pins = {}
    for line in CAR_CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            m = re.fullmatch(r"([A-Za-z0-9_.-]+)==([0-9][0-9A-Za-z.]*)", line)
            assert m, f"car-constraints.txt: {line!r} is not an exact pin"
            pins[m[1].lower().replace("_", "-")] = m[2]
    return pins


def _setup_list(name: str) -> list[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return [ast.literal_eval(e) for e in node.value.elts if not isinstance(e, ast.Starred)]  # type: ignore[attr-defined]
    raise AssertionError(f"setup.py has no {name}")


def _jetson_extra() -> list[str]:
    tree = ast.parse((REPO / "setup.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if isinstance(key, ast.Constant) and key.value == "jetson" and isinstance(value, ast.List):
                    out: list[str] = []
                    for e in value.elts:
                        if isinstance(e, ast.Starred) and isinstance(e.value, ast.Name):
                            out += _setup_list(e.value.id)
                        else:
                            out.append(ast.literal_eval(e))
                    return out
    raise AssertionError("setup.py has no jetson extra")


def _dist(requirement: str) -> str:
    return re.split(r"[<>=!~;\[ ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def test_install_script_installs_only_through_the_car_pins(tmp_path: Path) -> None:
    out = subprocess.run(["bash", str(REPO / "jetson" / "install.sh"), "--dry-run", "--root", str(tmp_path)],
                         capture_output=True, text=True, check=True).stdout
    installs = [line for line in out.splitlines() if "/bin/pip install" in line and "--upgrade pip" not in line]
    assert len(installs) == 2, out
    pins = car_pins()
    for line in installs:
        assert f"--constraint {CAR_CONSTRAINTS}" in line, line
        named = line.split(f"--constraint {CAR_CONSTRAINTS}", 1)[1].split()
        for req in named:
            if not req.startswith(str(REPO)):  # a package by name (pycuda) is pinned too
                assert _dist(req) in pins, req
    assert "numpy<2" not in out


def test_the_jetson_extra_is_pinned_for_the_car_and_imported() -> None:
    pins = car_pins()
    assert pins["numpy"].startswith("1.26.")  # JetPack 6's bindings are built against numpy 1.x
    for name in ("pycuda", "pyserial", "tomli", "cryptography"):
        assert name in pins, name
    sources = "\n".join(p.read_text() for p in (REPO / "runtime").rglob("*.py"))
    for req in _jetson_extra():
        dist = _dist(req)
        assert dist in pins, f"the jetson extra's {dist} is not pinned in car-constraints.txt"
        module = IMPORT_NAMES.get(dist, dist)
        assert re.search(rf"^\s*(import|from) {module}\b", sources, re.M), f"nothing in runtime/ imports {module} ({dist})"
