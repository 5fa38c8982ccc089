"""The three ways the demo registers a model version (what real training teams do).

``log_version`` logs the model inside the active MLflow run and creates the registry version:
1 = bare ``.h5`` via ``log_artifact`` + ``create_model_version``; 2 = ``mlflow.keras.log_model``
with ``save_exported_model=True``; 3 = ``mlflow.tensorflow.log_model``. Files each one writes
(MLflow 3.17.2, relative to the version's download URI):

1. ``trained_model.h5``
2. ``MLmodel``, ``data/keras_module.txt``, ``data/model/saved_model.pb``,
   ``data/model/variables/...`` (+ ``conda.yaml``, ``python_env.yaml``, ``requirements.txt``)
3. ``MLmodel``, ``data/model.keras``, ``data/keras_module.txt``, ``data/save_format.txt`` (+ envs)
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import logging
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

H5_NAME = "trained_model.h5"  # the name the training team in the seeds used


@contextlib.contextmanager
def tracking(uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at ``uri`` for the block, then restore exactly what was there.

    ``mlflow.get_tracking_uri()`` returns a default when nothing is set, and the setters also
    export ``MLFLOW_*_URI`` variables; restoring by value would pin the default for the rest of
    the process (later ``MlflowClient(uri)`` calls would use the wrong registry). So the previous
    module globals (private, read only) and environment variables are put back as they were.
    """
    import mlflow
    from mlflow.tracking._model_registry import utils as registry_utils
    from mlflow.tracking._tracking_service import utils as tracking_utils

    prev_tracking = getattr(tracking_utils, "_tracking_uri", None)
    prev_registry = getattr(registry_utils, "_registry_uri", None)
    prev_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(prev_tracking)  # type: ignore[arg-type]  # None = unset
        mlflow.set_registry_uri(prev_registry)  # type: ignore[arg-type]
        for k, v in prev_env.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _pip_requirements() -> list[str]:
    """Pinned from what is installed: saves MLflow's slow requirement inference (a subprocess)."""
    reqs = []
    for dist in ("tensorflow-cpu", "tensorflow", "keras"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            reqs.append(f"{dist}=={importlib.metadata.version(dist)}")
    return reqs


def _signature(model: Any) -> Any:
    """Tensor signature with the real input/output names and shapes (needed for
    save_exported_model=True); every input of a multi-input model, unknown sizes as -1."""
    import numpy as np
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    f32 = np.dtype("float32")

    def dims(shape: Any) -> tuple[int, ...]:
        return tuple(-1 if d is None else int(d) for d in shape)

    return ModelSignature(
        inputs=Schema([TensorSpec(f32, dims(t.shape), t.name) for t in model.inputs]),
        outputs=Schema([TensorSpec(f32, dims(t.shape), n) for t, n in zip(model.outputs, model.output_names, strict=True)]),
    )


def log_version(client: Any, model: Any, version: int, name: str, style: int | None = None) -> tuple[str, str]:
    """Log ``model`` inside the active run in logging style ``style`` (1, 2 or 3, see module doc;
    default: ``version``, as the demo pilot's versions 1-3 do). -> (registered version, source)."""
    import mlflow

    if (style or version) == 1:
        with tempfile.TemporaryDirectory(prefix="rc-demo-") as tmp:
            h5 = Path(tmp) / H5_NAME
            absl = logging.getLogger("absl")
            level = absl.level
            absl.setLevel(logging.ERROR)  # the "HDF5 is legacy" warning: this legacy file is the point
            try:
                model.save(h5)
            finally:
                absl.setLevel(level)
            mlflow.log_artifact(str(h5), artifact_path="model")
        source = mlflow.get_artifact_uri("model")
        run_id = mlflow.active_run().info.run_id  # type: ignore[union-attr]
        mv = client.create_model_version(name, source=source, run_id=run_id)
        return str(mv.version), str(mv.source)
    kwargs = {
        "name": "model",
        "signature": _signature(model),
        "registered_model_name": name,
        "pip_requirements": _pip_requirements(),
    }
    with contextlib.redirect_stdout(io.StringIO()) as out:  # Keras' export prints its endpoint list
        if (style or version) == 2:
            import mlflow.keras

            info = mlflow.keras.log_model(model, save_exported_model=True, **kwargs)
        else:
            import mlflow.tensorflow

            info = mlflow.tensorflow.log_model(model, **kwargs)
    log.debug("log_model output: %s", out.getvalue())
    return str(info.registered_model_version), str(
        client.get_model_version(name, info.registered_model_version).source
    )
