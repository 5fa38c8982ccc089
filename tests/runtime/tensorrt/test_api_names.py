"""Every TensorRT name our code uses exists in the real binding of every version its path claims.

Bindings come from .ci/fetch-trt-bindings.sh (the ``tensorrt_cu12_bindings`` / ``tensorrt-bindings``
wheels: the genuine ``tensorrt.so`` of each version, which cannot be imported here without
libnvinfer but carries every API name as a string). Each module that touches TensorRT declares
``TRT_VERSIONS``; ``"10"`` claims every 10.x binding fetched, ``"8.6"`` the 8.6 one. TensorRT 8.5
has no binding wheel on the package index, so 8.5 is checked against DOCUMENTED_8_5 below, a list
checked by hand against the 8.5 binding source (NVIDIA/TensorRT release/8.5 python/src/infer/
pyCore.cpp: builder config, timing cache, bindings and tensor API; pyInt8.cpp, pyGraph.cpp,
parsers/pyOnnx.cpp) — a new name on the 8.x path fails here until someone checks it there.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.tensorrt.version import api_path
from tests.runtime.tensorrt.trt_names import REPO, Binding, load_bindings, mentions_tensorrt, used_trt_names

BINDINGS_DIR = Path(os.environ.get("TRT_BINDINGS_DIR") or REPO / ".cache" / "trt-bindings")
CLAIMS = ("8.5", "8.6", "10", "11")
SCANNED = ("runtime", "calibration", "converter")

DOCUMENTED_8_5 = frozenset({
    # Builder / network / parser
    "Builder", "create_network", "NetworkDefinitionCreationFlag", "EXPLICIT_BATCH", "create_builder_config",
    "create_optimization_profile", "build_serialized_network", "num_inputs", "get_input", "shape", "name",
    "OnnxParser", "parse_from_file", "num_errors", "get_error", "set_shape",
    # Builder config
    "set_memory_pool_limit", "MemoryPoolType", "WORKSPACE", "set_flag", "BuilderFlag", "FP16", "INT8",
    "int8_calibrator", "set_calibration_profile", "add_optimization_profile",
    "create_timing_cache", "set_timing_cache", "get_timing_cache", "serialize",
    # Logger
    "ILogger", "Severity", "INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE", "log",
    # Runtime, engine, bindings execution (deprecated in 8.5 in favour of the tensor API, still present)
    "Runtime", "deserialize_cuda_engine", "create_execution_context", "num_bindings", "get_binding_name",
    "binding_is_input", "get_binding_shape", "get_binding_dtype", "set_binding_shape", "execute_async_v2",
    # INT8 entropy calibrator (pyInt8.cpp)
    "IInt8EntropyCalibrator2", "get_batch_size", "get_batch", "read_calibration_cache", "write_calibration_cache",
    # pure-Python part of the package
    "nptype", "__version__",
})

# Removed by the documented migrations (8.x -> 10.x, 10.x -> 11.x); absent from those bindings
# (test_removed_names_are_really_gone proves it). "INT8" hides inside "UINT8" in the string table,
# so its removal in 11 is proven by BuilderFlag.INT8's docstring instead.
REMOVED_IN: dict[int, frozenset[str]] = {
    10: frozenset({"build_engine", "max_workspace_size", "num_bindings", "get_binding_name", "get_binding_index",
                   "get_binding_shape", "get_binding_dtype", "binding_is_input", "set_binding_shape",
                   "execute_async_v2", "execute"}),
    11: frozenset({"EXPLICIT_BATCH", "IInt8EntropyCalibrator2", "IInt8Calibrator", "IInt8EntropyCalibrator",
                   "IInt8MinMaxCalibrator", "IInt8LegacyCalibrator", "CalibrationAlgoType", "int8_calibrator",
                   "set_calibration_profile", "FP16", "INT8", "OBEY_PRECISION_CONSTRAINTS",
                   "PREFER_PRECISION_CONSTRAINTS", "platform_has_fast_fp16"}),
}
DOCSTRING_EVIDENCE = {"INT8": "Enable Int8 layer selection", "FP16": "Enable FP16 layer selection"}


def _trt_modules() -> list[Path]:
    paths = []
    for top in SCANNED:
        for p in sorted((REPO / top).rglob("*.py")):
            if mentions_tensorrt(p):
                paths.append(p)
    return paths


TRT_MODULES = _trt_modules()
USED = {p: used_trt_names(p) for p in TRT_MODULES}


@pytest.fixture(scope="module")
def bindings() -> list[Binding]:
    found = load_bindings(BINDINGS_DIR)
    if not found:
        pytest.skip(f"no TensorRT bindings in {BINDINGS_DIR}: run .ci/fetch-trt-bindings.sh first (a few MB from PyPI)")
    return found


def _major(claim: str) -> int:
    return int(claim.split(".")[0])


def test_the_scan_finds_our_tensorrt_code() -> None:
    rel = {str(p.relative_to(REPO)) for p in TRT_MODULES}
    for expected in ("runtime/tensorrt/api_v8.py", "runtime/tensorrt/api_v10.py", "runtime/tensorrt/api_v11.py",
                     "runtime/tensorrt/tensor_api.py", "runtime/tensorrt/api_common.py",
                     "calibration/trt_calibrator.py"):
        assert expected in rel
    names = {str(p.relative_to(REPO)): set(u.names) for p, u in USED.items()}
    # The collector must see the calls that define each path, or the checks below check nothing.
    assert {"EXPLICIT_BATCH", "execute_async_v2", "int8_calibrator"} <= names["runtime/tensorrt/api_v8.py"]
    assert {"execute_async_v3", "set_tensor_address", "num_io_tensors"} <= names["runtime/tensorrt/tensor_api.py"]
    assert "STRONGLY_TYPED" in names["runtime/tensorrt/api_v11.py"]
    assert {"IInt8EntropyCalibrator2", "get_batch", "write_calibration_cache"} <= names["calibration/trt_calibrator.py"]


@pytest.mark.parametrize("path", TRT_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_tensorrt_module_declares_its_versions(path: Path) -> None:
    versions = USED[path].versions
    assert versions, f"{path.relative_to(REPO)} touches TensorRT but declares no TRT_VERSIONS"
    assert set(versions) <= set(CLAIMS), f"unknown claims {versions}"


PAIRS = [(p, c) for p in TRT_MODULES for c in (USED[p].versions or ())]


@pytest.mark.parametrize("path,claim", PAIRS, ids=[f"{p.name}-{c}" for p, c in PAIRS])
def test_names_exist_in_every_claimed_version(path: Path, claim: str, bindings: list[Binding]) -> None:
    used = USED[path].names
    if claim == "8.5":
        missing = sorted(n for n in used if n not in DOCUMENTED_8_5)
        assert not missing, f"{path.name}: {missing} are not in the checked TensorRT 8.5 list; check them against 8.5"
        return
    claimed = [b for b in bindings if b.claimed_by(claim)]
    if not claimed:
        pytest.skip(f"no TensorRT {claim} binding fetched (run .ci/fetch-trt-bindings.sh)")
    missing = [f"{n} (line {line}) not in TensorRT {b.version}" for b in claimed for n, line in used.items() if not b.has(n)]
    assert not missing, f"{path.relative_to(REPO)}: " + "; ".join(missing)


@pytest.mark.parametrize("path", TRT_MODULES, ids=lambda p: str(p.relative_to(REPO)))
def test_removed_names_appear_only_on_older_paths(path: Path) -> None:
    u = USED[path]
    for claim in u.versions or ():
        for major, removed in REMOVED_IN.items():
            if _major(claim) >= major:
                bad = sorted(set(u.names) & removed)
                assert not bad, f"{u.module} claims TensorRT {claim} but uses {bad}, removed in {major}.x"


def test_removed_names_are_really_gone(bindings: list[Binding]) -> None:
    """The removal lists above match the real bindings: present in 8.6, absent from 10.x / 11.x."""
    old = [b for b in bindings if b.major == 8]
    for major, removed in REMOVED_IN.items():
        newer = [b for b in bindings if b.major >= major]
        if not newer:
            pytest.skip(f"no TensorRT {major}.x binding fetched")
        for name in sorted(removed):
            for b in old:
                assert b.has(name), f"{name} should exist in TensorRT {b.version}"
            for b in newer:
                if name in DOCSTRING_EVIDENCE and major == 11:
                    assert not b.has_text(DOCSTRING_EVIDENCE[name]), f"BuilderFlag.{name} still documented in {b.version}"
                else:
                    assert not b.has(name), f"{name} is still in TensorRT {b.version}"


def test_documented_85_names_exist_in_86(bindings: list[Binding]) -> None:
    b86 = [b for b in bindings if b.claimed_by("8.6")]
    if not b86:
        pytest.skip("no TensorRT 8.6 binding fetched")
    for b in b86:
        assert not sorted(n for n in DOCUMENTED_8_5 if not b.has(n))


def test_each_binding_maps_to_an_api_path(bindings: list[Binding]) -> None:
    for b in bindings:
        assert api_path(b.version) == {8: "8", 10: "10", 11: "11"}[b.major]
        assert f'__version__ = "{b.version}"' in (b.directory / "__init__.py").read_text()
