"""The edge bundle's ``manifest.json``: typed, validated, and the sha256 check before any load.

This package is the bundle contract (see DESIGN.md). The converter writes it, the runtime,
calibration and benchmarks read it. It lives in ``runtime`` because the car must read it with
nothing but the standard library and numpy installed.

One module per part: ``errors`` (BundleError, IntegrityError), ``preprocess_spec``, ``inputs``
(roles, InputSpec), ``outputs`` (OutputSpec), ``builds`` (TensorIO, BuildEntry), ``document``
(Manifest, load_manifest) and ``integrity`` (sha256 checks). Import the names from here.
"""

from __future__ import annotations

from runtime.manifest.builds import BuildEntry, TensorIO
from runtime.manifest.document import MANIFEST_NAME, SCHEMA_VERSION, Manifest, ModelInfo, load_manifest
from runtime.manifest.errors import BundleError, IntegrityError
from runtime.manifest.inputs import (
    BEHAVIOR,
    IMAGE,
    IMAGE_ROLES,
    IMAGE_SEQUENCE,
    IMU,
    IMU_CHANNELS,
    LAYOUTS,
    MEMORY,
    ROLE_NAMES,
    InputSpec,
)
from runtime.manifest.integrity import sha256_file, verified_path
from runtime.manifest.outputs import COMMAND_MEANINGS, MEANINGS, PERCEPTION_MEANINGS, OutputSpec
from runtime.manifest.preprocess_spec import COLORS, PreprocessSpec

__all__ = [
    "BEHAVIOR",
    "COLORS",
    "COMMAND_MEANINGS",
    "IMAGE",
    "IMAGE_ROLES",
    "IMAGE_SEQUENCE",
    "IMU",
    "IMU_CHANNELS",
    "LAYOUTS",
    "MANIFEST_NAME",
    "MEANINGS",
    "MEMORY",
    "PERCEPTION_MEANINGS",
    "ROLE_NAMES",
    "SCHEMA_VERSION",
    "BuildEntry",
    "BundleError",
    "InputSpec",
    "IntegrityError",
    "Manifest",
    "ModelInfo",
    "OutputSpec",
    "PreprocessSpec",
    "TensorIO",
    "load_manifest",
    "sha256_file",
    "verified_path",
]
