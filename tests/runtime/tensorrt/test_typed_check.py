"""The per-version typed check: stub fixes, and a wrong-class call in code no test runs fails it."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

from tests.runtime.tensorrt.trt_names import REPO
from tests.runtime.tensorrt.typed_check import (
    BINDINGS_DIR,
    bindings,
    check,
    fix_def,
    fix_stub,
    modules_for,
    stubgen_path,
)

PLANTED = '''

def _never_called(trt: Any, builder: Builder) -> None:
    builder.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)  # an IBuilderConfig method
'''


def test_a_keyword_parameter_is_renamed():
    line = "    def on_shape_change(self: IPluginV3, in: list[PluginTensorDesc], out: list[PluginTensorDesc]) -> None:"
    assert "in_: list[PluginTensorDesc]" in fix_def(line)
    compile(fix_def(line).strip() + " ...", "<stub>", "exec")


def test_a_parameter_after_a_default_gets_one():
    line = ("    def add_scale_nd(self, input: ITensor, mode: ScaleMode, shift: Weights = None, "
            "power: Weights = None, channel_axis: int) -> IScaleLayer:")
    fixed = fix_def(line)
    assert fixed.endswith("channel_axis: int = ...) -> IScaleLayer:")
    compile(fixed.strip() + " ...", "<stub>", "exec")


def test_dims_parameters_take_sequences_and_builtin_shadows_go():
    fixed = fix_def("    def set_shape(self, input: str, min: Dims, opt: Dims, max: Dims) -> None:")
    assert fixed.count("Dims | typing.Sequence[int]") == 3
    stub = fix_stub("bool: DataType\nfloat16: DataType\nclass Dims:\n    pass")
    assert "bool:" not in stub and "float16: DataType" in stub and "def __iter__" in stub


def test_every_api_path_module_is_checked_against_its_versions():
    names = {p.name for p in modules_for("10.3.0")}
    assert {"api_common.py", "api_v10.py", "tensor_api.py", "builder.py"} <= names
    assert "api_v8.py" not in names and "api_v11.py" not in names
    assert "api_v8.py" in {p.name for p in modules_for("8.6.1")}


def test_a_wrong_class_call_in_uncalled_code_fails(tmp_path: Path):
    if importlib.util.find_spec("mypy") is None or stubgen_path() is None:
        pytest.skip("mypy and pybind11-stubgen are in the dev extra only (pip install -e '.[dev]')")
    found = bindings(["10.3.0"]) or bindings([])
    if not found:
        pytest.skip(f"no TensorRT bindings in {BINDINGS_DIR}: `make test` fetches them (.ci/fetch-trt-bindings.sh)")
    for top in ("runtime", "calibration"):
        shutil.copytree(REPO / top, tmp_path / top, ignore=shutil.ignore_patterns("__pycache__"))
    clean = check(found[0], source_root=tmp_path, cache_dir=tmp_path / "mypy-cache")
    assert clean.returncode == 0, clean.output
    with (tmp_path / "runtime" / "tensorrt" / "api_common.py").open("a") as f:
        f.write(PLANTED)
    planted = check(found[0], source_root=tmp_path, cache_dir=tmp_path / "mypy-cache")
    assert planted.returncode == 1
    assert '"Builder" has no attribute "set_memory_pool_limit"' in planted.output
