"""The LiteRT backend is ``litert``; ``tflite``, its old name, is still read as ``litert`` with
one logged deprecation line, from the CLI, a TOML config and a direct ``open_backend`` call."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from runtime import formats
from runtime.backend_names import BACKEND_NAMES, canonical_backend
from runtime.backends import AUTO_ORDER, BACKENDS, backend_class, open_backend
from runtime.cli_args import build_parser, config_from_args
from runtime.config import ConfigError, load_config


def deprecations(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "deprecated" in r.getMessage()]


def test_every_table_names_the_backend_litert() -> None:
    assert set(BACKENDS) == set(BACKEND_NAMES) and "tflite" not in BACKENDS
    assert ("litert", "tflite-fp32") in AUTO_ORDER
    # The format ids keep the file format's name; only the runner is the backend's.
    assert {f.runner for f in formats.FORMATS if f.id.startswith("tflite-")} == {"litert"}
    assert backend_class("litert").name == "litert"


def test_the_old_name_maps_to_litert_with_one_deprecation_line(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    assert canonical_backend("tflite") == "litert"
    assert deprecations(caplog) == ["backend 'tflite' is deprecated: it is now called 'litert'; write 'litert' instead"]
    caplog.clear()
    assert [canonical_backend(n) for n in ("litert", "onnxruntime", "tensorrt", "auto")] == [
        "litert", "onnxruntime", "tensorrt", "auto"]
    assert deprecations(caplog) == []


def test_an_old_toml_config_is_read_as_litert(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    p = tmp_path / "runtime.toml"
    p.write_text("[model]\nbundle = 'b'\nbackend = 'tflite'\n")
    assert load_config(p).model.backend == "litert"
    assert len(deprecations(caplog)) == 1


def test_an_old_command_line_is_read_as_litert(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    cfg = config_from_args(build_parser().parse_args(["--bundle", "b", "--backend", "tflite"]))
    assert cfg.model.backend == "litert"
    assert len(deprecations(caplog)) == 1


def test_the_help_offers_only_the_new_name(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "{auto,tensorrt,onnxruntime,litert}" in out


def test_an_unknown_backend_is_still_refused(tmp_path: Path) -> None:
    p = tmp_path / "runtime.toml"
    p.write_text("[model]\nbackend = 'tflit'\n")
    with pytest.raises(ConfigError, match="choose from auto, tensorrt, onnxruntime, litert"):
        load_config(p)
    with pytest.raises(ValueError, match="unknown backend 'tflit'"):
        backend_class("tflit")


def test_open_backend_reads_the_old_name_as_litert(bundle: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    with open_backend(bundle, "tflite") as be:
        assert be.name == "litert" and be.build.format == "tflite-fp32"
        assert be.describe()["backend"] == "litert"
    assert len(deprecations(caplog)) == 1
