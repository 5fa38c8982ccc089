"""Which TensorRT versions each module may touch, and the names later versions removed.

The real check of every call against the real classes and signatures is test_trt_real_api.py; this
file keeps the cheap static rules: every module that touches TensorRT declares ``TRT_VERSIONS``
(``"8.6"``, ``"10"`` for every 10.x, ``"11"``); names removed by the documented migrations
(8.x -> 10.x, 10.x -> 11.x) appear only in modules that claim no version without them, and those
removals are real (checked against the strings of the fetched binding modules).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime.tensorrt.version import api_path
from tests.runtime.tensorrt.trt_names import REPO, Binding, load_bindings, mentions_tensorrt, used_trt_names

BINDINGS_DIR = Path(os.environ.get("TRT_BINDINGS_DIR") or REPO / ".cache" / "trt-bindings")
CLAIMS = ("8.6", "10", "11")
SCANNED = ("runtime", "calibration", "converter")

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


def test_each_binding_maps_to_an_api_path(bindings: list[Binding]) -> None:
    for b in bindings:
        assert api_path(b.version) == {8: "8", 10: "10", 11: "11"}[b.major]
        assert f'__version__ = "{b.version}"' in (b.directory / "__init__.py").read_text()
