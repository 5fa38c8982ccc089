"""Steps every bundle the car opens goes through before the car may move (the driving bundle, the
safety detector, a shadow): one camera input only, and a few warm-up inferences."""

from __future__ import annotations

from typing import Any

import numpy as np

from runtime.backends.base import Backend
from runtime.camera import CameraFrame
from runtime.manifest import BundleError, Manifest
from runtime.pilots import Pilot

WARMUP_RUNS = 3


def one_camera(manifest: Manifest, bundle: str) -> None:
    """Refuse a model with more than one camera input (``BundleError`` naming the fix): this runtime
    feeds one camera, and the same frame to two "eyes" would be a silent lie to a stereo model."""
    images = manifest.image_inputs()
    if len(images) > 1:
        raise BundleError(
            f"{bundle}: the model has {len(images)} camera inputs ({', '.join(i.name for i in images)}) but this "
            "runtime feeds one camera; re-export the model with one image input"
        )


def warm_up(backend: Backend, feeds: dict[str, Any], pilot: Pilot, manifest: Manifest) -> None:
    """A few inferences before the car may move: the first runs allocate, and they prove that the
    inputs and the outputs the pilot reads map (a pilot raising here is a bundle that cannot drive)."""
    spec = manifest.preprocess
    frame = CameraFrame(0, 0.0, np.zeros((spec.height, spec.width, 3), np.uint8), 0)
    for _ in range(WARMUP_RUNS):
        pilot(backend.infer(feeds), frame)
