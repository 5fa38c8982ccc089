"""PyTorch models for the converter's tests: the quick JetRacer pilot (trained once per session)
saved every way a team saves one, and small modules that must be refused with a clear error."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (the torch extra; see README)")

import torch

from converter.demo.jetracer import JETRACER_PREPROCESS, nchw_batch, train_jetracer
from converter.demo.track import drive_sequence

H, W = JETRACER_PREPROCESS.input_hw
KINDS = ("pt2", "pickle", "torchscript", "state-dict")


@functools.cache
def quick_trained() -> tuple[Any, dict[str, float]]:
    """The quick JetRacer pilot (width 8, a few hundred frames) trained for real, and its metrics;
    trained once per test process."""
    model, metrics = train_jetracer(quick=True, seed=0)
    return model.eval(), metrics


def quick_pilot() -> Any:
    return quick_trained()[0]


def seeded_registry(root: Path) -> dict[str, Any]:
    """A fresh sqlite registry under ``root`` with jetracer_pilot v1 (pt2) and v2 (pickle) of the
    quick pilot. Returns seed_jetracer's result plus ``uri`` and ``root``."""
    from converter.demo.jetracer_seed import seed_jetracer

    uri = f"sqlite:///{root / 'mlflow.db'}"
    return {"uri": uri, "root": root, **seed_jetracer(uri, root / "artifacts", trained=quick_trained())}


def frames(n: int = 12, seed: int = 3) -> np.ndarray:
    """Road frames (N, H, W, 3) uint8 BGR from a drive on the synthetic track."""
    f, _, _ = drive_sequence(n, seed=seed, width=W, height=H)
    return f


def torch_out(model: Any, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model.eval()(torch.from_numpy(x)).numpy()


def save(model: Any, kind: str, dest: Path) -> Path:
    """Save ``model`` as ``kind``: pt2 (torch.export), pickle (whole module), torchscript, state-dict."""
    dest.mkdir(parents=True, exist_ok=True)
    example = (torch.zeros(1, 3, H, W),)
    if kind == "pt2":
        path = dest / "model.pt2"
        torch.export.save(torch.export.export(model, example), str(path))
    elif kind == "pickle":
        path = dest / "model.pth"
        torch.save(model, str(path))
    elif kind == "torchscript":
        path = dest / "model.pt"
        torch.jit.trace(model, example).save(str(path))
    elif kind == "state-dict":
        path = dest / "weights.pth"
        torch.save(model.state_dict(), str(path))
    else:
        raise ValueError(kind)
    return path


def pickled_with_missing_class(dest: Path) -> Path:
    """A whole-module pickle whose class lives in a module that is gone by the time it is loaded."""
    pkg = dest / "gone_pkg"
    pkg.mkdir(parents=True)
    (pkg / "roadnets.py").write_text(
        "import torch\n"
        "class RoadNet(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.fc = torch.nn.Linear(3, 2)\n"
        "    def forward(self, image):\n"
        "        return self.fc(image.mean(dim=(2, 3)))\n"
    )
    sys.path.insert(0, str(pkg))
    try:
        import roadnets

        path = dest / "model.pth"
        torch.save(roadnets.RoadNet(), str(path))
    finally:
        sys.path.remove(str(pkg))
        sys.modules.pop("roadnets", None)
    return path


class KwargsNet(torch.nn.Module):
    def forward(self, **inputs: Any) -> Any:
        return inputs["image"].mean(dim=(1, 2, 3))


class TupleNet(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)

    def forward(self, image: Any) -> Any:
        y = self.fc(image.mean(dim=(2, 3)))
        return y[:, :1], y[:, 1:]


def nchw(frames_bgr: np.ndarray) -> np.ndarray:
    return nchw_batch(frames_bgr, JETRACER_PREPROCESS)
