"""Registering the perception models as seed 001 does, in a real sqlite MLflow store.

The models are trained for a moment only (registration is under test here; learning is in
test_perception_models.py).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("mlflow")

from converter.demo import perception_seed  # noqa: E402
from converter.demo.detector import DetectorConfig, train_detector  # noqa: E402
from converter.demo.segmenter import SegmenterConfig, train_segmenter  # noqa: E402


@pytest.fixture(scope="module")
def tiny_runs() -> dict[str, Any]:
    return {
        perception_seed.SEGMENTER: train_segmenter(SegmenterConfig(samples=16, val_samples=8, epochs=2, width=4)),
        perception_seed.DETECTOR: train_detector(DetectorConfig(samples=16, val_samples=8, epochs=2, width=4)),
    }


@pytest.mark.slow
def test_registers_both_models_with_the_seeds_params_metrics_and_edge_tags(tmp_path: Path, tiny_runs: dict[str, Any]) -> None:
    from mlflow import MlflowClient

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    result = perception_seed.seed_perception(uri, tmp_path / "artifacts", trained=tiny_runs)
    assert result["seeded"] == ["lane_segmenter", "cone_detector"]
    got = {(v["name"], v["version"], v["logged_as"]) for v in result["versions"]}
    assert got == {("lane_segmenter", "1", "pytorch-pt2"), ("lane_segmenter", "2", "pytorch-pickle"),
                   ("cone_detector", "1", "pytorch-pickle")}
    client = MlflowClient(uri, registry_uri=uri)
    exp = client.get_experiment_by_name("autonomous_vehicle")
    assert exp is not None
    for task, names in (("segmentation", perception_seed.SEGMENTATION_METRICS),
                        ("detection", perception_seed.DETECTION_METRICS)):
        (run,) = client.search_runs([exp.experiment_id], filter_string=f"params.task_type = '{task}'")
        p = run.data.params
        assert {"common_epochs", "common_batch_size", "common_lr", "common_weight_decay", f"{task}_model_name"} <= set(p)
        assert p["common_epochs"] == "2"
        for metric in names.values():
            assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [0, 1], metric
    seg = client.get_model_version("lane_segmenter", "1")
    assert json.loads(seg.tags["edge.classes"]) == ["background", "road"]
    assert json.loads(seg.tags["edge.drivable"]) == ["road"]
    pre = json.loads(seg.tags["edge.preprocess"])
    assert (pre["width"], pre["height"], pre["color"]) == (96, 72, "RGB")
    det = client.get_model_version("cone_detector", "1")
    assert json.loads(det.tags["edge.classes"]) == ["background", "cone"]
    assert json.loads(det.tags["edge.preprocess"])["width"] == 160 and "edge.drivable" not in det.tags

    # What was logged is the trained model: pt2 and pickle both load back and agree with it.
    import mlflow.artifacts
    import mlflow.pytorch

    x = torch.from_numpy(np.random.default_rng(0).uniform(-2, 2, (1, 3, 72, 96)).astype(np.float32))
    with torch.no_grad():
        want = tiny_runs["lane_segmenter"].model(x)["out"]
        for version, file in (("1", "data/model.pt2"), ("2", "data/model.pth")):
            local = Path(mlflow.artifacts.download_artifacts(f"models:/lane_segmenter/{version}", tracking_uri=uri))
            assert (local / file).is_file(), version
            loaded = mlflow.pytorch.load_model(str(local))
            torch.testing.assert_close(loaded(x)["out"], want)
        local = Path(mlflow.artifacts.download_artifacts("models:/cone_detector/1", tracking_uri=uri))
        assert (local / "data/model.pth").is_file()
        assert isinstance(mlflow.pytorch.load_model(str(local))(torch.zeros(1, 3, 120, 160)), list)

    # Idempotent: a second call (the CLI) keeps what is there; another version list is refused.
    assert perception_seed.main(["--tracking-uri", uri, "--artifact-root", str(tmp_path / "artifacts")]) == 0
    assert [int(v.version) for v in client.search_model_versions("name='cone_detector'")] == [1]
    client.create_model_version("cone_detector", source=str(det.source))
    assert perception_seed.main(["--tracking-uri", uri, "--artifact-root", str(tmp_path / "artifacts"),
                                 "--only", "cone_detector"]) == 2
