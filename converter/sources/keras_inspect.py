"""Keras model files and layers inspected without the Keras that loads them.

Shared by :mod:`converter.sources.keras` (Keras 3) and :mod:`converter.sources.keras_legacy`
(``tf_keras``), so neither imports the other: what an ``.h5`` says about itself, Lambda layers in a
model config, a leading pixel rescaler, and one line explaining a failed load.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converter.errors import ModelLoadError


@dataclass(frozen=True)
class H5Info:
    """What an ``.h5`` file says about itself (root attributes)."""

    keras_version: str  # "" when the file does not say (very old or not written by Keras)
    backend: str
    model_config: Any  # the decoded JSON, None for a weights-only file

    @property
    def major(self) -> int:
        """The Keras major version that wrote the file; 0 when it does not say."""
        head = self.keras_version.split(".")[0]
        return int(head) if head.isdigit() else 0

    @property
    def is_keras3(self) -> bool:
        """Written by Keras 3 (which Keras 3 loads), not by a Keras 1/2 that ``tf_keras`` reads."""
        return self.major >= 3


def read_h5_info(path: Path) -> H5Info:
    """Root attributes of a Keras ``.h5``; ModelLoadError when it is not an HDF5 file at all."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            attrs = {k: _text(v) for k, v in f.attrs.items() if k in ("keras_version", "backend", "model_config")}
    except OSError as e:
        raise ModelLoadError(
            f"{path.name} is not a readable HDF5 file ({str(e).splitlines()[0]}); is the artifact corrupt? "
            "re-log the model"
        ) from None
    config = None
    if attrs.get("model_config"):
        try:
            config = json.loads(attrs["model_config"])
        except ValueError:
            config = None
    return H5Info(attrs.get("keras_version", ""), attrs.get("backend", ""), config)


def _text(v: Any) -> str:
    return v.decode("utf-8") if isinstance(v, bytes) else str(v)


_UNKNOWN_LAYER = re.compile(r"[Cc]ould not locate (?:class|function) '([^']+)'|Unknown layer: '?([\w.]+)")


def explain_load_failure(path: Path, e: Exception) -> ModelLoadError:
    """One line naming why Keras could not load ``path`` and the fix (Lambda layers, unknown custom
    layers, a truncated ``.keras`` zip), for either Keras."""
    text = str(e)
    if "Lambda" in text and ("safe_mode" in text or "arbitrary code" in text):
        names = ", ".join(repr(n) for n in _lambda_layer_names(path)) or "(unnamed)"
        return ModelLoadError(
            f"{path.name} contains Lambda layer {names}, refused with safe_mode on (it could run arbitrary "
            "code); pass --custom-objects module:attr with a layer doing the same math registered as 'Lambda' "
            "(e.g. a dict {'Lambda': MyNormalize}), or replace it with a registered custom layer"
        )
    m = _UNKNOWN_LAYER.search(text)
    if m:
        layer = m.group(1) or m.group(2)
        return ModelLoadError(
            f"{path.name} uses the unknown custom layer or function {layer!r}; "
            f"pass --custom-objects module:{layer} so it can be deserialized"
        )
    if path.suffix == ".keras" and path.is_file() and not _is_complete_zip(path):
        # Keras says "File not found ... ensure the file is an accessible .keras zip" for a file that is there
        return ModelLoadError(
            f"{path.name} is not a complete .keras archive (not a valid zip file: truncated or corrupt, "
            f"{path.stat().st_size} bytes); re-log the model from a good copy"
        )
    first = text.strip().splitlines()[0] if text.strip() else type(e).__name__
    return ModelLoadError(f"{path.name} could not be loaded ({type(e).__name__}: {first[:200]}); is the artifact corrupt?")


def _is_complete_zip(path: Path) -> bool:
    """True when ``path`` is a zip whose central directory and every member's CRC read back."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            return z.testzip() is None
    except (OSError, zipfile.BadZipFile, EOFError):
        return False


def _lambda_layer_names(path: Path) -> list[str]:
    """Names of the Lambda layers in a model file's config: a ``.keras`` zip's config.json or an
    ``.h5``'s ``model_config`` attribute (Keras' own error does not name them)."""
    import zipfile

    config: Any = None
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as z:
                config = json.loads(z.read("config.json"))
        except (OSError, KeyError, ValueError, zipfile.BadZipFile):
            return []
    elif path.is_file():
        try:
            config = read_h5_info(path).model_config
        except ModelLoadError:
            return []
    return lambda_layers_in_config(config)


def lambda_layers_in_config(config: Any) -> list[str]:
    """Names of the Lambda layers anywhere in a Keras 1/2/3 model config (nested models included)."""
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("class_name") == "Lambda":
                cfg = node.get("config")
                found.append(str(cfg.get("name", "?")) if isinstance(cfg, dict) else "?")
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(config)
    return found


def clean_name(name: str) -> str:
    """A tensor name without its ``:0`` / ``/...`` suffix."""
    return name.split(":")[0].split("/")[0]


def leading_pixel_rescaler(layers: Any) -> str | None:
    """The name of a layer among the first four that scales raw 0..255 pixels (``Rescaling``, or a
    replacement for a Lambda that declares ``rescales_pixels = True``), else None. ``Normalization``
    is not one: it may have been adapted on pixels already scaled."""
    return next((ly.name for ly in list(layers)[:4]
                 if type(ly).__name__ == "Rescaling" or getattr(ly, "rescales_pixels", False)), None)
