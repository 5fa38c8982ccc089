"""Which file of a version's artifacts is the model: one found by what it is; none, several, or
only a ``.tflite`` (donkeycar's built pilot) each refused with the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.errors import ModelLoadError
from converter.sources import find_model_file


def _tflite(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x1c\x00\x00\x00TFL3" + bytes(64))  # a FlatBuffer with TFLite's identifier
    return path


def test_a_tflite_only_version_says_it_cannot_be_a_source_and_names_the_h5_beside_it(tmp_path: Path) -> None:
    _tflite(tmp_path / "art" / "models" / "mypilot.tflite")
    (tmp_path / "art" / "models" / "mypilot.json").write_text("{}")  # donkeycar's sidecar, not a model
    with pytest.raises(ModelLoadError) as e:
        find_model_file(tmp_path / "art")
    msg = str(e.value)
    assert "only a TFLite file (models/mypilot.tflite)" in msg and "cannot be a conversion source" in msg
    assert ".h5 / .keras" in msg and "beside its .tflite" in msg


def test_a_version_registered_from_the_tflite_itself_is_refused_the_same_way(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match=r"only a TFLite file \(mypilot.tflite\)"):
        find_model_file(_tflite(tmp_path / "mypilot.tflite"))


def test_the_h5_beside_the_tflite_is_the_model(tmp_path: Path) -> None:
    _tflite(tmp_path / "art" / "mypilot.tflite")
    (tmp_path / "art" / "mypilot.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    found = find_model_file(tmp_path / "art")
    assert (found.path.name, found.kind) == ("mypilot.h5", "h5")


def test_no_model_lists_what_is_there(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "notes.txt").write_text("x")
    with pytest.raises(ModelLoadError, match=r"no model in the version's artifacts .*found: notes.txt"):
        find_model_file(tmp_path / "art")


def test_several_models_need_model_file(tmp_path: Path) -> None:
    (tmp_path / "art").mkdir()
    for name in ("a.onnx", "b.onnx"):
        (tmp_path / "art" / name).write_bytes(b"\x08\x08")
    with pytest.raises(ModelLoadError, match=r"2 model files .*--model-file PATH"):
        find_model_file(tmp_path / "art")
