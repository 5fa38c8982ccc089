"""rc-demo-registry against a real sqlite MLflow store: three versions, each logged its own way."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import numpy as np
import pytest
from mlflow import MlflowClient
from mlflow.artifacts import download_artifacts

from converter.demo import DEMO_PREPROCESS
from converter.demo.registration import H5_NAME
from converter.demo.seed import MARKER, main, seed_registry
from converter.demo.track import generate_dataset
from runtime.preprocess import preprocess_batch

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path, Path]:
    cwd = tmp_path_factory.mktemp("cwd")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(cwd)  # a relative sqlite URI and artifact root, like the CLI defaults
        result = seed_registry("sqlite:///store/mlflow.db", Path("store/artifacts"), quick=True)
    return result, f"sqlite:///{cwd}/store/mlflow.db", cwd / "store" / "artifacts", cwd


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_three_versions_with_tags_alias_and_metrics(seeded) -> None:
    result, uri, root, cwd = seeded
    assert result["seeded"] and [v["version"] for v in result["versions"]] == ["1", "2", "3"]
    assert sorted(p.name for p in cwd.iterdir()) == ["store"]  # no stray mlruns/ or mlartifacts/
    assert (root / MARKER).exists()
    client = MlflowClient(uri, registry_uri=uri)
    assert str(client.get_model_version_by_alias("rc_pilot", "production").version) == "2"  # int on sqlite
    for v in ("1", "2", "3"):
        mv = client.get_model_version("rc_pilot", v)
        assert json.loads(mv.tags["edge.preprocess"]) == DEMO_PREPROCESS.to_dict()
        # v2's exported SavedModel names its outputs by position; the tag says which is which
        names = ("output_0", "output_1") if v == "2" else ("steering", "throttle")
        assert json.loads(mv.tags["edge.outputs"]) == dict(zip(names, ("steering", "throttle"), strict=True))
        assert mv.run_id is not None
        run = client.get_run(mv.run_id)
        assert run.data.params["logged_as"] == mv.tags["demo.logged_as"]
        assert run.data.metrics["val_mae_steering"] < run.data.metrics["baseline_mae_steering"]
    assert str(client.get_model_version("rc_pilot", "1").source).startswith(root.as_uri())  # a run artifact
    for v in ("2", "3"):
        assert str(client.get_model_version("rc_pilot", v).source).startswith("models:/m-")  # LoggedModels
    best = result["versions"][2]["metrics"]
    assert best["mae_ratio_steering"] < 0.5 and best["mae_ratio_throttle"] < 0.6


def test_each_version_downloads_in_its_own_shape_and_loads(seeded, tmp_path) -> None:
    _, uri, _, _ = seeded
    x = preprocess_batch(generate_dataset(4, seed=9)[0], DEMO_PREPROCESS)
    # Not download_artifacts("models:/rc_pilot/N", registry_uri=...): MLflow 3.17.2 resolves models:/
    # URIs through the global registry URI and ignores that argument. Resolve the version first.
    client = MlflowClient(uri, registry_uri=uri)
    got = {
        v: Path(
            download_artifacts(
                artifact_uri=client.get_model_version_download_uri("rc_pilot", v),
                dst_path=str(tmp_path / v),
                tracking_uri=uri,
            )
        )
        for v in ("1", "2", "3")
    }

    # v1: just the .h5 the training team logged with log_artifact.
    assert _files(got["1"]) == {H5_NAME}
    m1 = keras.models.load_model(got["1"] / H5_NAME, compile=False)
    assert m1.output_names == ["steering", "throttle"]

    # v2: keras flavor with an exported SavedModel and no Keras file at all.
    f2 = _files(got["2"])
    assert {"MLmodel", "data/keras_module.txt", "data/model/saved_model.pb",
            "data/model/variables/variables.index"} <= f2  # fmt: skip
    assert not any(f.endswith((".keras", ".h5")) for f in f2)
    import tensorflow as tf

    serve = tf.saved_model.load(str(got["2"] / "data" / "model")).signatures["serving_default"]
    out2 = serve(inputs=tf.constant(x))
    assert sorted(out2) == ["output_0", "output_1"]  # positional names: the MLmodel signature names them

    # v3: tensorflow flavor, data/model.keras (loads in safe mode).
    f3 = _files(got["3"])
    assert {"MLmodel", "data/model.keras", "data/keras_module.txt", "data/save_format.txt"} <= f3
    assert "data/model/saved_model.pb" not in f3
    m3 = keras.models.load_model(got["3"] / "data" / "model.keras", safe_mode=True, compile=False)
    steer, thr = m3.predict_on_batch(x)
    assert steer.shape == thr.shape == (4, 1) and np.all(np.isfinite(steer))


def test_reseeding_is_a_quick_no_op_and_force_is_careful(seeded, tmp_path) -> None:
    _, uri, root, _ = seeded
    again = seed_registry(uri, root, quick=True)
    assert again["seeded"] is False and again["seconds"] < 10
    assert main(["--tracking-uri", uri, "--artifact-root", str(root)]) == 0
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("not ours")
    assert main(["--tracking-uri", uri, "--artifact-root", str(foreign), "--force", "--quick"]) == 2
    assert (foreign / "keep.txt").exists() and MlflowClient(uri, registry_uri=uri).get_registered_model("rc_pilot")
