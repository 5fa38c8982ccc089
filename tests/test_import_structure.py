"""The packages' import structure: layers import only downwards, and no module imports itself
back through others (a circle makes import order matter and hides which module owns what).

Layers, bottom up: ``runtime`` (the car) < ``calibration`` < ``converter`` < ``benchmarks``.
Imports inside functions count (they run); imports under ``if TYPE_CHECKING:`` do not (they never
execute). A package's ``__init__`` importing its own submodules is not a circle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
LAYERS = ("runtime", "calibration", "converter", "benchmarks")


def _modules(root: Path) -> dict[str, Path]:
    mods = {}
    for pkg in LAYERS:
        for p in (root / pkg).rglob("*.py"):
            parts = list(p.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = p
    return mods


def _is_type_checking(node: ast.If) -> bool:
    t = node.test
    return (isinstance(t, ast.Name) and t.id == "TYPE_CHECKING") or (
        isinstance(t, ast.Attribute) and t.attr == "TYPE_CHECKING")


def _imported(tree: ast.AST, module: str, is_pkg: bool) -> list[str]:
    """Every module name imported in ``tree`` (outside TYPE_CHECKING blocks)."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for stmt in node.orelse:
                visit(stmt)
            return
        if isinstance(node, ast.Import):
            names.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[: len(base) - node.level + (1 if is_pkg else 0)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.extend(f"{mod}.{a.name}" for a in node.names)  # a submodule, or resolved to mod below
            names.append(mod)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Module -> the modules of our packages it imports."""
    mods = _modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for m, p in mods.items():
        targets: set[str] = set()
        for name in _imported(ast.parse(p.read_text()), m, p.name == "__init__.py"):
            r = resolve(name)
            # ``from pkg import sub`` names pkg and pkg.sub: keep the submodule only
            if r and r != m and not any(t.startswith(r + ".") for t in targets):
                targets.add(r)
        # a package the module lives in is imported anyway, by Python: not an edge of the design
        graph[m] = {t for t in targets if not m.startswith(t + ".")}
        graph[m] = {t for t in graph[m] if not any(u.startswith(t + ".") for u in graph[m])}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop()
                    on.discard(x)
                    comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_no_module_imports_itself_back() -> None:
    graph = import_graph()
    circles = cycles(graph)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


@pytest.mark.parametrize("layer", LAYERS[:-1])
def test_a_layer_imports_nothing_above_it(layer: str) -> None:
    above = LAYERS[LAYERS.index(layer) + 1:]
    upward = sorted(f"{m} -> {t}" for m, ts in import_graph().items() if m.split(".")[0] == layer
                    for t in ts if t.split(".")[0] in above)
    assert not upward, f"{layer} imports upwards: " + ", ".join(upward)


def test_the_checker_sees_a_circle_and_an_upward_import(tmp_path: Path) -> None:
    """The two checks can fail: a planted circle (inside a function, as real ones hide) and a
    planted upward import are found; a TYPE_CHECKING import is not an edge."""
    for pkg in LAYERS:
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "runtime" / "a.py").write_text("def f():\n    from runtime.b import g\n")
    (tmp_path / "runtime" / "b.py").write_text("from runtime import a\n")
    (tmp_path / "runtime" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from runtime.d import X\n")
    (tmp_path / "runtime" / "d.py").write_text("from runtime.c import Y\n")
    (tmp_path / "calibration" / "cli.py").write_text("from converter.cli_guard import report\n")
    (tmp_path / "converter" / "cli_guard.py").write_text("")
    graph = import_graph(tmp_path)
    assert cycles(graph) == [["runtime.a", "runtime.b"]]
    assert graph["calibration.cli"] == {"converter.cli_guard"}
