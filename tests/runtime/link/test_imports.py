"""The car's link, simulator and notify code import neither TensorFlow, MLflow nor Keras."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]


def test_link_sim_notify_import_no_heavy_frameworks() -> None:
    code = (
        "import sys, runtime.link, runtime.link.serial_link, runtime.sim, runtime.sim.cli, runtime.sim.link, runtime.notify\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in {'tensorflow', 'mlflow', 'keras', 'torch'})\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])})
