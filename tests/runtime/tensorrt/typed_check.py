"""mypy over our TensorRT code against typed stubs of each real TensorRT binding.

The API probe (test_trt_real_api.py) checks the calls on the paths it executes; a wrong-class call in
code no test reaches (``builder.set_memory_pool_limit(...)``: an ``IBuilderConfig`` method) passes it.
Here pybind11-stubgen writes a ``tensorrt`` stub package from each fetched binding module (imported
over the stub libnvinfer of real_trt.py, so the classes and signatures are that version's own), and
mypy checks every module that declares ``TRT_VERSIONS`` against each binding it claims. Our modules
annotate TensorRT objects with the binding's classes under ``TYPE_CHECKING``; without these stubs
(plain ``make typecheck`` steps, the car) those names are ``Any``.

    python -m tests.runtime.tensorrt.typed_check            # every binding in .cache/trt-bindings
    python -m tests.runtime.tensorrt.typed_check 10.3.0     # just these

Exit 0 when every version passes, 1 on a type error, 2 when there is nothing to check against.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import keyword
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from runtime.tensorrt.version import api_path
from tests.runtime.tensorrt.real_trt import StubUnavailable, build_stub, package_dir
from tests.runtime.tensorrt.trt_names import REPO

BINDINGS_DIR = Path(os.environ.get("TRT_BINDINGS_DIR") or REPO / ".cache" / "trt-bindings")
STUBS_DIR = REPO / ".cache" / "trt-stubs"
SCANNED = ("runtime", "calibration")
CLAIM_OF_PATH = {"8": "8.6", "10": "10", "11": "11"}  # api_path(version) -> the TRT_VERSIONS claim it meets
STUBGEN_FIXES = 3  # bump when fix_stub changes, so cached stubs are regenerated

# pyproject.toml's settings on the car's Python, plus the stubs' own defects silenced (undefined pybind11
# names such as ``capsule``, implicit Optional defaults): our code is what is checked, not the stub.
MYPY_CONFIG = """[mypy]
python_version = 3.10
ignore_missing_imports = True
check_untyped_defs = True
warn_unused_ignores = True

[mypy-tensorrt,tensorrt.*]
ignore_errors = True
implicit_optional = True
"""

_DEF = re.compile(r"^(\s*def \w+\()(.*)(\)\s*(?:->.*)?:\s*)$")


def _split_params(params: str) -> list[str]:
    """Split a parameter list at the commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(params):
        if ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(params[start:i])
            start = i + 1
    parts.append(params[start:])
    return [p.strip() for p in parts if p.strip()]


def fix_def(line: str) -> str:
    """Make one generated ``def`` line valid Python: pybind11 signatures may name a parameter ``in``
    (renamed ``in_``) and put a parameter without a default after one with a default (given ``= ...``:
    pybind11 accepts it by keyword, which is how such a call must pass it anyway)."""
    m = _DEF.match(line)
    if not m:
        return line
    fixed, seen_default = [], False
    for p in _split_params(m.group(2)):
        if p.startswith("*"):
            fixed.append(p)
            continue
        name, sep, rest = p.partition(":")
        name = name.strip()
        if keyword.iskeyword(name):
            name += "_"
        annotation, eq, default = rest.partition("=")
        if annotation.strip() == "Dims":  # the binding converts any iterable of ints to Dims (its docstring)
            rest = f" Dims | typing.Sequence[int] {eq}{default}" if eq else " Dims | typing.Sequence[int]"
        p = f"{name}{sep}{rest}" if sep else name
        if "=" in p.split(":", 1)[-1] or (not sep and "=" in p):
            seen_default = True
        elif seen_default:
            p += " = ..."
        fixed.append(p)
    return f"{m.group(1)}{', '.join(fixed)}{m.group(3)}"


# What the binding does that pybind11-stubgen cannot see, added to its classes: Dims behaves like a
# tuple of ints (iterable through __getitem__/__len__), IHostMemory is a buffer (py::buffer_protocol).
_CLASS_ADDITIONS = {
    "class Dims:": "    def __iter__(self) -> typing.Iterator[int]: ...",
    "class IHostMemory:": "    def __buffer__(self, flags: int) -> memoryview: ...",
}
_MODULE_VAR = re.compile(r"^(\w+): ")


def fix_stub(text: str) -> str:
    """A generated stub made valid and true to the binding: every ``def`` line fixed (:func:`fix_def`),
    the module-level enum values that shadow builtins dropped (``tensorrt.bool``, an export of
    ``DataType.BOOL``, would make every ``bool`` annotation in the stub invalid), and the class
    behaviour of ``_CLASS_ADDITIONS`` declared."""
    out = []
    for line in text.split("\n"):
        m = _MODULE_VAR.match(line)
        if m and hasattr(builtins, m.group(1)):
            continue
        out.append(fix_def(line))
        if line in _CLASS_ADDITIONS:
            out.append(_CLASS_ADDITIONS[line])
    return "\n".join(out)


def stubgen_path() -> str | None:
    """pybind11-stubgen beside this interpreter (the dev extra), or None."""
    return shutil.which("pybind11-stubgen", path=str(Path(sys.executable).parent))


def generate_stubs(binding_dir: Path, stubs_dir: Path = STUBS_DIR) -> Path:
    """The typed stub package for one binding (``stubs_dir/<version>/tensorrt``), generated once per
    binding wheel; returns the directory to put on MYPYPATH."""
    out = stubs_dir / binding_dir.name
    stamp = out / ".complete"
    wanted = f"{(binding_dir / '.complete').read_text().strip()} fixes={STUBGEN_FIXES}"
    if stamp.is_file() and stamp.read_text() == wanted:
        return out
    stubgen = stubgen_path()
    if stubgen is None:
        raise StubUnavailable("pybind11-stubgen is not installed (it is in the dev extra: pip install -e '.[dev]')")
    work = stubs_dir / ".work"
    lib = build_stub(work / "lib")
    pkgs = package_dir(binding_dir, work / "pkgs")
    shutil.rmtree(out, ignore_errors=True)
    env = dict(os.environ, LD_LIBRARY_PATH=str(lib), PYTHONPATH=str(pkgs), PYTHONDONTWRITEBYTECODE="1")
    r = subprocess.run([stubgen, "tensorrt", "-o", str(out), "--ignore-all-errors"], env=env, cwd=work,
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 or not (out / "tensorrt").is_dir():
        raise StubUnavailable(f"pybind11-stubgen failed for TensorRT {binding_dir.name}: {r.stderr.strip()[-2000:]}")
    for pyi in (out / "tensorrt").rglob("*.pyi"):
        pyi.write_text(fix_stub(pyi.read_text()))
    stamp.write_text(wanted)
    return out


def claims(path: Path) -> tuple[str, ...]:
    """A module's ``TRT_VERSIONS`` (empty when it declares none)."""
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "TRT_VERSIONS"
                                                for t in node.targets):
            value = ast.literal_eval(node.value)
            return tuple(value)
    return ()


def modules_for(version: str, source_root: Path = REPO) -> list[Path]:
    """Every module under runtime/ and calibration/ that claims this binding's version."""
    claim = CLAIM_OF_PATH[api_path(version)]
    return [p for top in SCANNED for p in sorted((source_root / top).rglob("*.py")) if claim in claims(p)]


@dataclass
class Result:
    """One version's mypy run: the binding version, the modules checked, mypy's exit code and output."""

    version: str
    modules: list[Path]
    returncode: int
    output: str


def check(binding_dir: Path, source_root: Path = REPO, cache_dir: Path | None = None) -> Result:
    """mypy (Python 3.10, the car's) over the modules claiming ``binding_dir``'s version, against its stubs."""
    stubs = generate_stubs(binding_dir)
    modules = modules_for(binding_dir.name, source_root)
    # A stable name per source tree (hash() differs per process): one warm cache each, not one per run.
    tree = hashlib.sha256(str(source_root.resolve()).encode()).hexdigest()[:12]
    cache = cache_dir or STUBS_DIR / ".mypy" / f"{binding_dir.name}-{tree}"
    env = dict(os.environ, MYPYPATH=str(stubs))
    config = STUBS_DIR / "mypy.ini"
    config.write_text(MYPY_CONFIG)
    cmd = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--config-file", str(config), "--cache-dir", str(cache),
           *[str(p.relative_to(source_root)) for p in modules]]
    r = subprocess.run(cmd, cwd=source_root, env=env, capture_output=True, text=True, timeout=600)
    return Result(binding_dir.name, modules, r.returncode, (r.stdout + r.stderr).strip())


def bindings(names: list[str]) -> list[Path]:
    """The fetched binding directories (all, or those named)."""
    found = sorted(p for p in BINDINGS_DIR.iterdir() if (p / ".complete").is_file()) if BINDINGS_DIR.is_dir() else []
    return [p for p in found if not names or p.name in names]


def main(argv: list[str] | None = None) -> int:
    """Check every (or each named) fetched binding; see the module docstring for the exit codes."""
    names = list(sys.argv[1:] if argv is None else argv)
    dirs = bindings(names)
    if not dirs:
        print(f"typed TensorRT check: no bindings in {BINDINGS_DIR} (run .ci/fetch-trt-bindings.sh)", file=sys.stderr)
        return 2
    failed = 0
    for d in dirs:
        try:
            res = check(d)
        except StubUnavailable as e:
            print(f"typed TensorRT check: {e}", file=sys.stderr)
            return 2
        status = "ok" if res.returncode == 0 else "FAILED"
        print(f"TensorRT {res.version}: {len(res.modules)} modules, mypy {status}")
        if res.returncode != 0:
            failed += 1
            print(res.output)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
