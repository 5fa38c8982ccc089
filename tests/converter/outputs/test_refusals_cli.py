"""Issue 19's paths through the real CLI (``python -m converter.cli``) on real sqlite registries: the
seed team's segmentation model converts from its run's ``task_type`` and ``--classes``; the wrong
paths (a map read as steering, a stereo pair fed one frame, class scores as steering) are refused
with one line naming the fix, exit 2, nothing written."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import checkout_env, python_module
from tests.converter.outputs.seed_models import (
    PRE,
    classifier_keras,
    register_torch_segmentation,
    stereo_keras,
)
from tests.converter.registry_helpers import register

pytestmark = pytest.mark.slow


def _convert(uri: str, name: str, out: Path, *flags: str) -> tuple[int, str]:
    """Exit code and the one ``error:`` line (or the whole output when there is none)."""
    argv = python_module("converter.cli", "--name", name, "--version", "1", "--tracking-uri", uri, "--output", str(out),
                         "--formats", "onnx", "--no-log", *flags)
    done = subprocess.run(argv, env=checkout_env(), capture_output=True, text=True, timeout=300, check=False)
    text = done.stdout + done.stderr
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    return done.returncode, errors[0] if len(errors) == 1 else text


def _refused(uri: str, name: str, out: Path, *flags: str) -> str:
    code, line = _convert(uri, name, out, *flags)
    assert code == 2, line
    assert line.startswith("error: "), line  # exactly one error line
    assert not out.exists(), "a refused conversion leaves nothing behind"
    return line


@pytest.fixture(scope="module")
def seed_registry(tmp_path_factory: pytest.TempPathFactory) -> str:
    pytest.importorskip("torch", reason="torch is not installed (the torch extra)")
    return register_torch_segmentation(tmp_path_factory.mktemp("seed"))


def test_seed_segmentation_model_converts_from_task_type_and_classes(seed_registry: str, tmp_path: Path) -> None:
    line = _refused(seed_registry, "seg", tmp_path / "a")
    assert "output 'out' is a segmentation map of 2 classes (NCHW, shape [1, 2, 48, 64]): pass --classes" in line
    code, text = _convert(seed_registry, "seg", tmp_path / "b", "--classes", "background,road")
    assert code == 0, text
    manifest = json.loads((tmp_path / "b" / "seg" / "v1" / "manifest.json").read_text())
    outputs = {o["name"]: o for o in manifest["outputs"]}
    assert outputs["out"]["meaning"] == "segmentation" and outputs["aux"]["meaning"] == "other"
    assert outputs["out"]["decode"] == {"kind": "segmentation", "layout": "NCHW", "classes": ["background", "road"],
                                        "drivable": ["road"], "activation": "logits"}
    assert manifest["schema_version"] == 3


def test_a_map_is_never_steering(seed_registry: str, tmp_path: Path) -> None:
    # issue 19: following the old hint, this built a bundle that steered by pixel 0 of class 0
    line = _refused(seed_registry, "seg", tmp_path / "b", "--outputs", "out=steering:component:0")
    assert "output 'out' has shape [1, 2, 48, 64]: decoder component reads a vector" in line
    assert "looks like a segmentation map" in line


@pytest.mark.parametrize("flags", [(), ("--inputs", "img_left=image,img_right=image")])
def test_a_stereo_model_is_refused_the_car_has_one_camera(tmp_path: Path, flags: tuple[str, ...]) -> None:
    uri = register(tmp_path, stereo_keras(), name="stereo", tags={"edge.preprocess": json.dumps(PRE)})
    line = _refused(uri, "stereo", tmp_path / "b", *flags)
    assert "2 inputs take a camera image (img_left" in line and "this car has one camera" in line
    assert "--inputs" not in line  # the old hint led to feeding one frame to both eyes


def test_class_scores_are_not_steering(tmp_path: Path) -> None:
    uri = register(tmp_path, classifier_keras(100), name="cls", tags={"edge.preprocess": json.dumps(PRE)})
    for i, flags in enumerate([(), ("--outputs", "predictions=steering:component:0")]):
        line: Any = _refused(uri, "cls", tmp_path / f"b{i}", *flags)
        assert "output 'predictions'" in line and "class scores or features (100 values)" in line
        assert "a classifier cannot steer this car" in line
