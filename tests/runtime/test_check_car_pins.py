"""On the car's Python (3.10: ``make test-runtime-py310``), the runtime's tests run on the car's pins:
every package of requirements/car-constraints.txt that is installed has the pinned version."""

from __future__ import annotations

import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

CAR_CONSTRAINTS = Path(__file__).resolve().parents[2] / "requirements" / "car-constraints.txt"


@pytest.mark.skipif(sys.version_info[:2] != (3, 10), reason="the car's pins apply to its Python, 3.10")
def test_this_venv_has_the_cars_pins() -> None:
    checked = []
    for line in CAR_CONSTRAINTS.read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", line.split("#", 1)[0].strip())
        if not m:
            continue
        try:
            installed = importlib.metadata.version(m[1])
        except importlib.metadata.PackageNotFoundError:
            continue  # pycuda and its own: the car builds them against CUDA
        assert installed == m[2], f"{m[1]} {installed} installed, the car has {m[2]}"
        checked.append(m[1])
    assert {"numpy", "pyserial", "tomli", "cryptography"} <= set(checked), checked
