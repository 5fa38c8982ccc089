"""Subprocesses run the checkout under test, not what the venv has installed: the shared venv's
editable install (and its console scripts) may point at another copy of the code."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO, checkout_env, python_module


def test_a_module_run_by_the_tests_is_this_checkouts(tmp_path: Path) -> None:
    # From an unrelated working directory, as the converter's tests run.
    code = ("import runtime, converter, calibration, benchmarks\n"
            "print(*(m.__file__ for m in (runtime, converter, calibration, benchmarks)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=checkout_env(),
                         capture_output=True, text=True, check=True, timeout=120).stdout.split()
    assert len(out) == 4 and all(Path(f).resolve().is_relative_to(REPO) for f in out), out


def test_python_module_is_the_test_interpreter_not_a_console_script() -> None:
    argv = python_module("runtime.cli", "--help")
    assert argv[1:] == ["-m", "runtime.cli", "--help"] and "bin/rc-" not in argv[0]
    r = subprocess.run(argv, env=checkout_env(), capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "--bundle" in r.stdout
