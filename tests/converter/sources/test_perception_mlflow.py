"""Perception models logged as the seed team logs them (``mlflow.pytorch.log_model`` into a real
sqlite store, ``task_type`` param), downloaded from the registry and loaded by the converter.

What MLflow 3.17 does with them (checked here): its default pt2 format refuses a model whose
forward returns a dict or a list ("the input signature must be specified using TensorSpec":
signature inference from the input example fails on the output); an input-only signature
(``signature=infer_signature(example)``) fixes it for both a segmenter and a detector, and
``serialization_format="pickle"`` works without one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch", reason="torch is not installed (the torch extra; see README)")

from converter.sources import SourceHints, find_model_file, load_source
from tests.converter import perception_models as pm
from tests.converter.sources import perception_builds as pb

pytestmark = pytest.mark.slow  # each log_model takes 5-15 s here (pt2: torch.export plus environment capture)


def _log(uri: str, name: str, model: Any, fmt: str, task: str, signature: bool = True) -> str:
    """Log ``model`` as the seeds do and register it; returns its ``models:/name/version`` URI."""
    import mlflow
    import mlflow.pytorch
    from mlflow.models import infer_signature

    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment("perception")
    example = pm.images(1, pm.SEG_HW)
    with mlflow.start_run():
        mlflow.log_param("task_type", task)
        kwargs: dict[str, Any] = {"serialization_format": fmt}
        if fmt == "pt2":
            kwargs["input_example"] = example
            if signature:
                kwargs["signature"] = infer_signature(example)
        info = mlflow.pytorch.log_model(model, name="model", registered_model_name=name, **kwargs)
    return f"models:/{name}/{info.registered_model_version}"


def _download(uri: str, model_uri: str, dest: Path) -> Path:
    import mlflow

    mlflow.set_tracking_uri(uri)
    return Path(mlflow.artifacts.download_artifacts(model_uri, dst_path=str(dest)))


def test_pt2_without_a_signature_is_refused_by_mlflow_itself(tmp_path: Path) -> None:
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="TensorSpec"):
        _log(f"sqlite:///{tmp_path / 'mlflow.db'}", "seg", pm.tiny_segmenter(), "pt2", "segmentation", signature=False)


@pytest.mark.parametrize("fmt", ["pt2", "pickle"])
def test_registered_segmenter_and_detector_load_and_export(fmt: str, tmp_path: Path) -> None:
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    seg, det = pm.tiny_segmenter(), pm.tiny_detector()
    for name, model, task in (("road_seg", seg, "segmentation"), ("cone_det", det, "detection")):
        art = _download(uri, _log(uri, name, model, fmt, task), tmp_path / name)
        found = find_model_file(art, None)
        assert found.kind == ("pt2" if fmt == "pt2" else "torch"), found
        src = load_source(found, hints=SourceHints(input_hw=pm.SEG_HW, workdir=tmp_path / f"w_{name}"))
        x = pm.images(6, pm.SEG_HW, seed=4)
        ref = src.predict({src.input_names[0]: x})
        if task == "segmentation":
            assert src.output_names == ["out"] and ref["out"].shape == (6, 2, *pm.SEG_HW)
        else:
            assert src.output_names == ["boxes", "scores", "labels"] and ref["boxes"].shape == (6, 100, 4)
            assert (ref["scores"] > 0).sum() > 0  # it finds something on some frame
        got = pb.run_onnx(src.onnx_path(18), {src.input_names[0]: x})  # type: ignore[attr-defined]
        assert max(pb.max_abs(got, ref).values()) < 1e-4, name
        assert np.all(np.isfinite(np.concatenate([v.ravel() for v in got.values()])))
