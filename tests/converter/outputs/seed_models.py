"""Models as the seed team and new users register them, small enough for seconds: a plain-PyTorch
segmentation net shaped like torchvision's (``{"out", "aux"}``, (1, 2, H, W) logits) logged with
``mlflow.pytorch.log_model`` and the run param ``task_type``, a two-camera (stereo) Keras pilot and
a Keras classifier."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path
from typing import Any

from runtime.manifest import PreprocessSpec

H, W = 48, 64
PRE = PreprocessSpec(width=W, height=H).to_dict()


def tiny_segmentation() -> Any:
    """LRASPP-shaped, random init: a backbone, a 2-class head ``out`` and an auxiliary head ``aux``,
    (1, 3, H, W) -> {"out": (1, 2, H, W), "aux": (1, 2, H, W)} logits."""
    import torch

    class TinySeg(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU())
            self.head = torch.nn.Conv2d(8, 2, 1)
            self.aux = torch.nn.Conv2d(8, 2, 1)

        def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
            f = self.body(image)
            return {"out": self.head(f), "aux": self.aux(f)}

    return TinySeg()


def register_torch_segmentation(root: Path, name: str = "seg", task_type: str | None = "segmentation",
                                tags: dict[str, str] | None = None) -> str:
    """Register ``name`` v1 in the sqlite registry under ``root`` (made on first use): the
    :func:`tiny_segmentation` net logged as MLflow 3's default pt2, the run carrying ``task_type``
    (None: no such param) and the seed's metric names. Returns the tracking URI."""
    import mlflow
    import mlflow.pytorch
    import numpy as np
    import torch
    from mlflow import MlflowClient
    from mlflow.models import infer_signature

    from converter.demo.registration import tracking

    torch.manual_seed(0)
    model = tiny_segmentation().eval()
    example = np.zeros((1, 3, H, W), np.float32)
    with torch.no_grad():
        outs = {k: v.numpy() for k, v in model(torch.from_numpy(example)).items()}
    uri = f"sqlite:///{root / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    found = client.get_experiment_by_name("seed")
    exp = found.experiment_id if found else client.create_experiment("seed", artifact_location=(root / "art").as_uri())
    with tracking(uri), mlflow.start_run(experiment_id=exp):
        if task_type is not None:
            mlflow.log_param("task_type", task_type)
        mlflow.log_metrics({"miou_segmentation": 0.5, "pixel_acc_segmentation": 0.8})
        with contextlib.redirect_stdout(io.StringIO()):
            # pt2 (MLflow 3's default) wants a tensor signature; a dict output is not inferred as one
            mlflow.pytorch.log_model(model, name="model", signature=infer_signature(example, outs),
                                     input_example=example, registered_model_name=name, pip_requirements=["torch"])
    for k, v in {"edge.preprocess": json.dumps(PRE), **(tags or {})}.items():
        client.set_model_version_tag(name, "1", k, v)
    return uri


def stereo_keras() -> Any:
    """Two (H, W, 3) camera inputs ``img_left``/``img_right`` -> ``steering``, ``throttle``."""
    import keras

    left, right = keras.Input((H, W, 3), name="img_left"), keras.Input((H, W, 3), name="img_right")
    x = keras.layers.Concatenate()([keras.layers.Flatten()(left), keras.layers.Flatten()(right)])
    return keras.Model([left, right], [keras.layers.Dense(1, name="steering")(x),
                                       keras.layers.Dense(1, name="throttle")(x)])


def classifier_keras(classes: int = 100) -> Any:
    """One (H, W, 3) image -> ``predictions`` (1, classes) softmax: class scores, not steering."""
    import keras

    image = keras.Input((H, W, 3), name="image")
    x = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(image))
    return keras.Model(image, keras.layers.Dense(classes, activation="softmax", name="predictions")(x))
