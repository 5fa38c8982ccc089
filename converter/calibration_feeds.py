"""Calibration and held-out data for INT8 builds, as the model takes it: one array per input.

A calibration set (rc-calibrate) holds camera frames preprocessed by the runtime, (N, H, W, C).
Here they become each image input's layout (NCHW for PyTorch models; sequences are windows of the
set's consecutive frames, oldest first) and every other input gets values like the car's: the
set's own recorded values where it has them (``vectors`` / ``heldout_vectors`` on the data, from
recorded drives), else the bundle's reference values for that input (see
:func:`converter.reference.vector_inputs`), repeated to N rows. Calibrating a second input on
zeros would quantize it to nothing; this is why every input is fed.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from converter.reference import Reference
from runtime.manifest import IMAGE_SEQUENCE, Manifest
from runtime.preprocess import sequence_windows


def model_feeds(
    manifest: Manifest, images: np.ndarray, vectors: Mapping[str, np.ndarray], reference: Reference | None
) -> dict[str, np.ndarray]:
    """{input name: (N, ...) float32} for every model input, N = len(images).

    ``images`` are NHWC preprocessed frames. Raises ``ValueError`` naming an input that has
    neither recorded nor reference values.
    """
    n = len(images)
    out: dict[str, np.ndarray] = {}
    for spec in manifest.inputs:
        if spec.is_image:
            x = sequence_windows(images, spec.length or 1) if spec.role == IMAGE_SEQUENCE else images
            if spec.layout.endswith("CHW"):
                x = np.moveaxis(x, -1, -3)
            out[spec.name] = np.ascontiguousarray(x, np.float32)
            continue
        vals = vectors.get(spec.name)
        if vals is None and reference is not None:
            vals = reference.vectors.get(spec.name)
        if vals is None or len(vals) == 0:
            raise ValueError(f"no calibration values for input {spec.name!r} ({spec.role}); record drives with "
                             "rc-runtime --record and make the set from them")
        out[spec.name] = np.ascontiguousarray(np.resize(vals, (n, *vals.shape[1:])), np.float32)
    return out
