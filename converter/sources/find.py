"""Find the model file in a version's downloaded artifacts, however it was logged.

MLflow metadata can mislead (DESIGN.md), so we never trust it: we look for the files themselves.
A version's source may be a folder (a flavor's model folder, a run's artifact folder, nested
folders), or the model file itself. Model files are ``.keras``, ``.h5``/``.hdf5`` (not
``*.weights.h5``), SavedModel directories, PyTorch files (``.pt2`` from ``torch.export``,
``.pt``/``.pth``/``.ts``/``.ckpt``) and ``.onnx``; more than one is ambiguous and refused with the
list and ``--model-file`` to choose.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from converter.errors import ModelLoadError

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")
PT2_SUFFIXES = (".pt2",)
TORCH_SUFFIXES = (".pt", ".pth", ".ts", ".ckpt")
ONNX_SUFFIXES = (".onnx",)
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_ZIP_MAGIC = b"PK\x03\x04"


@dataclass(frozen=True)
class FoundModel:
    path: Path
    kind: str  # keras | h5 | saved_model | pt2 | torch | onnx


def _kind_of_file(path: Path) -> str | None:
    if path.name.endswith(".weights.h5"):
        return None  # weights without the model
    if path.suffix in KERAS_SUFFIXES:
        return "keras"
    if path.suffix in H5_SUFFIXES:
        return "h5"
    for kind, suffixes in (("pt2", PT2_SUFFIXES), ("torch", TORCH_SUFFIXES), ("onnx", ONNX_SUFFIXES)):
        if path.suffix in suffixes:
            return kind
    return None


def _sniff(path: Path) -> str | None:
    """A model file logged under another name (e.g. ``model`` or ``pilot.bin``): by its magic bytes."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError:
        return None
    if head == _HDF5_MAGIC:
        return "h5"
    if head.startswith(_ZIP_MAGIC):
        return "keras"
    return None


def candidates(root: Path) -> list[FoundModel]:
    """Every model file or SavedModel directory under ``root`` (files inside a SavedModel excluded)."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    saved = sorted({p.parent for p in files if p.name in ("saved_model.pb", "saved_model.pbtxt")})
    found = [FoundModel(d, "saved_model") for d in saved]
    for p in files:
        if any(d in p.parents for d in saved):
            continue
        kind = _kind_of_file(p)
        if kind is not None:
            found.append(FoundModel(p, kind))
    return found


# A .tflite is an end product (quantized, fused, its training graph gone): nothing converts from it
# with parity to check against. donkeycar's `donkey train --type ... ` writes the .tflite next to
# the .h5/.savedmodel it was made from, which is the source to register.
_TFLITE_ONLY = (
    "the version's artifacts hold only a TFLite file ({files}), which cannot be a conversion source (a built "
    "model, nothing to check builds against); register the model it was made from: donkeycar leaves the "
    ".h5 / .keras (or a .savedmodel folder) beside its .tflite in the models folder (log that file, e.g. "
    "mlflow.log_artifact('models/mypilot.h5', 'model'), and register the version from it)"
)


def find_model_file(root: Path, model_file: str | None = None) -> FoundModel:
    """The one model file or SavedModel directory in ``root`` (a folder, or the model file itself).

    ``model_file``: a path relative to ``root`` choosing among several (``--model-file``).
    Raises ModelLoadError when there is none, or more than one without ``model_file``.
    """
    if root.is_file():
        kind = _kind_of_file(root) or _sniff(root)
        if kind is None and root.suffix.lower() == ".tflite":
            raise ModelLoadError(_TFLITE_ONLY.format(files=root.name))
        if kind is None:
            raise ModelLoadError(
                f"the version's source is the single file {root.name}, which is not a model file "
                "(.keras, .h5, .pt2, .pt, .pth, .onnx) or a SavedModel; register the model's file or folder"
            )
        return FoundModel(root, kind)
    if not root.exists() or not any(p.is_file() for p in root.rglob("*")):
        raise ModelLoadError(f"the version's artifacts at {root} are empty; re-log the model")
    if model_file:
        chosen = root / model_file
        if not chosen.exists():
            listing = ", ".join(str(c.path.relative_to(root)) for c in candidates(root)) or "none"
            raise ModelLoadError(f"--model-file {model_file}: not in the version's artifacts (model files: {listing})")
        if chosen.is_dir():
            if (chosen / "saved_model.pb").is_file() or (chosen / "saved_model.pbtxt").is_file():
                return FoundModel(chosen, "saved_model")
            return find_model_file(chosen)
        return find_model_file(chosen)
    found = candidates(root)
    if len(found) == 1:
        return found[0]
    if not found:
        files = sorted(p for p in root.rglob("*") if p.is_file())
        listing = ", ".join(str(p.relative_to(root)) for p in files[:12])
        tflite = [str(p.relative_to(root)) for p in files if p.suffix.lower() == ".tflite"]
        if tflite:
            raise ModelLoadError(_TFLITE_ONLY.format(files=", ".join(tflite[:4])))
        raise ModelLoadError(
            "no model in the version's artifacts (looked for *.keras, *.h5, saved_model.pb, *.pt2, *.pt, *.pth, "
            f"*.onnx); found: {listing}"
        )
    listing = ", ".join(str(c.path.relative_to(root)) for c in found[:12])
    raise ModelLoadError(
        f"the version's artifacts hold {len(found)} model files ({listing}); choose one with --model-file PATH "
        "(relative to the version's artifacts)"
    )
