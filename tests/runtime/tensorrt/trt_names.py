"""Helpers for test_api_names.py: which TensorRT names our code uses (by AST), and which names a
TensorRT binding module defines (from the real ``tensorrt.so`` of each version's binding wheel).

Why strings in the ``.so`` are enough: pybind11 registers every class, method, property and enum
value by a C string literal. The linker merges string literals that are a suffix of another
("INT8" is stored as the tail of "UINT8", "Logger" as the tail of "ILogger"), so a name counts as
present when a NUL-terminated identifier in the module equals it or ends with it. That makes the
presence check slightly lenient; removed names are therefore also checked against explicit lists.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]

# Parameter / variable names that hold TensorRT objects in our TensorRT code, by convention.
TRT_VALUED = frozenset(
    {"trt", "builder", "network", "config", "parser", "engine", "context", "runtime", "profile", "tensor",
     "cache", "plan", "severity", "calibrator", "import_tensorrt",
     # attributes of ours that hold TensorRT objects, reached as ``self._context.<name>``
     "_context", "_engine", "_runtime"}
)
# Methods our subclasses of TensorRT interfaces define that are ours, not overrides.
OWN_METHODS = frozenset({"__init__", "release", "prepare", "verify", "n_samples"})
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def _root_name(node: ast.expr) -> str | None:
    """The variable an attribute chain starts from; for ``self.<attr>...`` chains, ``<attr>``."""
    last_attr = None
    while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
        if isinstance(node, ast.Attribute):
            last_attr = node.attr
        node = node.func if isinstance(node, ast.Call) else node.value
    if isinstance(node, ast.Name):
        return last_attr if node.id == "self" and last_attr else node.id
    return None


def _is_self_attr(node: ast.Attribute) -> bool:
    return isinstance(node.value, ast.Name) and node.value.id == "self"


@dataclass
class UsedNames:
    module: str
    versions: tuple[str, ...] | None
    names: dict[str, int] = field(default_factory=dict)  # name -> first line

    def add(self, name: str, line: int) -> None:
        self.names.setdefault(name, line)


def used_trt_names(path: Path) -> UsedNames:
    """Every attribute name reached from a TensorRT-valued root, and the methods of classes that
    subclass a TensorRT interface. Variables assigned from a TensorRT-valued expression become
    TensorRT-valued too (``parser = trt.OnnxParser(...)``)."""
    tree = ast.parse(path.read_text(), str(path))
    versions: tuple[str, ...] | None = None
    trt_vars = set(TRT_VALUED)
    out = UsedNames(str(path.relative_to(REPO)), None)
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TRT_VERSIONS" for t in node.targets):
            versions = tuple(ast.literal_eval(node.value))
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if _root_name(node.value) in trt_vars:
                for t in targets:
                    for n in ast.walk(t):
                        if isinstance(n, ast.Name):
                            trt_vars.add(n.id)
    out.versions = versions
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _root_name(node) in trt_vars
            and (not node.attr.startswith("__") or node.attr == "__version__")
            and node.attr not in OWN_METHODS
            and not _is_self_attr(node)
        ):
            out.add(node.attr, node.lineno)
        if isinstance(node, ast.ClassDef) and any(_root_name(b) in trt_vars for b in node.bases):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name not in OWN_METHODS:
                    out.add(item.name, item.lineno)
    return out


def mentions_tensorrt(path: Path) -> bool:
    """Whether a module touches TensorRT objects itself (a ``trt`` name or ``import tensorrt``)."""
    tree = ast.parse(path.read_text(), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id in ("trt", "import_tensorrt"):
            return True
        if isinstance(node, ast.arg) and node.arg == "trt":
            return True
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "tensorrt" for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == "tensorrt":
            return True
    return False


class Binding:
    """The names one TensorRT version's Python binding defines."""

    def __init__(self, version: str, directory: Path) -> None:
        self.version = version
        self.directory = directory
        raw = (directory / "tensorrt.so").read_bytes()
        strings = set()
        for seg in raw.split(b"\0"):
            if 1 < len(seg) < 4096 and seg.isascii():
                strings.add(seg.decode("ascii"))
        self.strings = frozenset(strings)
        self.identifiers = frozenset(s for s in strings if _IDENT.match(s))
        self.python_names = frozenset(_python_defined(directory / "__init__.py"))

    @property
    def major(self) -> int:
        return int(self.version.split(".")[0])

    @cached_property
    def _suffix_index(self) -> frozenset[str]:
        return frozenset(s[i:] for s in self.identifiers for i in range(len(s)))

    def exact(self, name: str) -> bool:
        return name in self.identifiers or name in self.python_names

    def has(self, name: str) -> bool:
        return self.exact(name) or name in self._suffix_index

    def has_text(self, text: str) -> bool:
        return any(text in s for s in self.strings)

    def claimed_by(self, claim: str) -> bool:
        """``"10"`` claims every 10.x; ``"8.6"`` claims 8.6.x."""
        return self.version == claim or self.version.startswith(claim + ".")


def _python_defined(init_py: Path) -> set[str]:
    """Names the binding's pure-Python ``__init__.py`` defines (``nptype``, ``__version__``...)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(init_py.read_text())):
        if isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                if isinstance(t, ast.Name):
                    names.add(t.id)
                elif isinstance(t, ast.Attribute):
                    names.add(t.attr)
    return names


def load_bindings(root: Path) -> list[Binding]:
    out = []
    if root.is_dir():
        for d in sorted(root.iterdir()):
            if (d / ".complete").is_file() and (d / "tensorrt.so").is_file():
                out.append(Binding(d.name, d))
    return out
