"""jetson/gpu-check.sh, run for real here (no GPU): it must say plainly that the GPU tests did not
run and why, exit non-zero, and still write its report; bad usage exits 2."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runtime.tensorrt.conftest import gpu_missing_reason

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "jetson" / "gpu-check.sh"


@pytest.mark.skipif(gpu_missing_reason() is None, reason="a GPU is here: jetson/gpu-check.sh is the real run")
def test_without_a_gpu_the_report_says_the_check_did_not_happen(tmp_path: Path) -> None:
    out = tmp_path / "report"
    r = subprocess.run(["bash", str(SCRIPT), "--out", str(out), "--python", sys.executable],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 1, r.stdout + r.stderr
    report = (out / "report.md").read_text()
    assert "NOT RUN: tests were skipped" in report and "GPU test:" in report
    assert "| TensorRT |" in report and "| GPU |" in report
    assert (out / "gpu-tests.log").is_file() and (out / "gpu-tests.xml").is_file()
    assert "report in" in r.stdout


def test_bad_usage_exits_2(tmp_path: Path) -> None:
    r = subprocess.run(["bash", str(SCRIPT), "--frobnicate"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "unknown argument --frobnicate" in r.stderr
    r = subprocess.run(["bash", str(SCRIPT), "--bundle", str(tmp_path), "--python", sys.executable],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "no manifest.json" in r.stderr


@pytest.mark.skipif(shutil.which("shellcheck") is None, reason="shellcheck missing: apt-get install shellcheck")
def test_shellcheck_clean() -> None:
    r = subprocess.run(["shellcheck", str(SCRIPT)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout
