"""Find the model file in a version's downloaded artifacts, however it was logged.

MLflow metadata can mislead (DESIGN.md), so we never trust it: we look for the files themselves.
Priority: a ``.keras`` file, then ``.h5``/``.hdf5``, then a SavedModel directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from converter.errors import ModelLoadError

KERAS_SUFFIXES = (".keras",)
H5_SUFFIXES = (".h5", ".hdf5")


@dataclass(frozen=True)
class FoundModel:
    path: Path
    kind: str  # keras | h5 | saved_model


def find_model_file(root: Path) -> FoundModel:
    """The model file or SavedModel directory in ``root``; ModelLoadError listing what is there."""
    files = sorted(p for p in root.rglob("*") if p.is_file())
    if not files:
        raise ModelLoadError(f"the version's artifacts at {root} are empty; re-log the model")

    def pick(cands: list[Path]) -> Path:
        return min(cands, key=lambda p: (len(p.relative_to(root).parts), str(p)))

    keras_files = [p for p in files if p.suffix in KERAS_SUFFIXES]
    if keras_files:
        return FoundModel(pick(keras_files), "keras")
    h5 = [p for p in files if p.suffix in H5_SUFFIXES]
    if h5:
        return FoundModel(pick(h5), "h5")
    saved = [p.parent for p in files if p.name in ("saved_model.pb", "saved_model.pbtxt")]
    if saved:
        return FoundModel(pick(saved), "saved_model")
    listing = ", ".join(str(p.relative_to(root)) for p in files[:12])
    raise ModelLoadError(
        f"no model in the version's artifacts (looked for *.keras, *.h5, saved_model.pb); found: {listing}"
    )
