"""The converter config's ``[parity]`` section: read into TaskGates, checked before any work, keyed."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from converter.builders.base import BuildOptions
from converter.cache import format_key
from converter.cli import _task_gates
from converter.config import load_config
from converter.errors import ConverterError


def test_a_parity_section_sets_the_gates_and_changes_the_format_key(tmp_path: Path) -> None:
    cfg_file = tmp_path / "rc-edge.toml"
    cfg_file.write_text("[parity.fp16]\nmin_miou = 0.5\n")
    gates = _task_gates(load_config(cfg_file).parity)
    assert gates is not None and gates.for_format("onnx-fp16").min_miou == 0.5
    req = SimpleNamespace(tolerance={}, calibration=None, int8_limits=None, options=BuildOptions(), task_gates=None)
    plain = format_key("onnx-fp16", req)
    req.task_gates = gates
    assert format_key("onnx-fp16", req) != plain


@pytest.mark.parametrize("text", ["[parity]\nbogus = 1\n", "[parity.fp16]\nmin_miou = 2\n", "[parity.fp99]\nmin_f1 = 1\n"])
def test_a_bad_parity_section_is_a_config_error(tmp_path: Path, text: str) -> None:
    cfg_file = tmp_path / "rc-edge.toml"
    cfg_file.write_text(text)
    with pytest.raises(ConverterError, match=r"config .*rc-edge.toml: (config )?\[parity"):
        load_config(cfg_file)
