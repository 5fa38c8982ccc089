"""The cache keys, table-driven: every input a bundle (or one format's build) is made from changes
its key, and the bookkeeping tags the converter writes itself never do. A missing input means a
stale bundle served from the cache (``opset`` was dropped once), so each is flipped on its own."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import hashlib
import importlib.metadata
import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import converter
import converter.cache as cache
from converter.builders.base import BuildOptions
from converter.cache import bundle_inputs, cache_key, format_key
from converter.pipeline import ConvertRequest
from converter.registry import ModelVersionRef
from runtime import formats
from runtime.manifest import sha256_file

TAGS = {"edge.preprocess": "crop_top=40", "edge.outputs": "angle=steering", "edge.inputs": "img_in=image",
        "edge.formats": "onnx,tflite-fp32", "edge.conversion_run_id": "abc123"}


@dataclasses.dataclass
class Case:
    req: ConvertRequest
    ref: ModelVersionRef


def base_case(tmp: Path) -> Case:
    samples = tmp / "samples.npz"
    if not samples.exists():
        samples.write_bytes(b"frames v1")
    req = ConvertRequest(formats=["onnx"], preprocess_overrides={"crop_top": 40}, outputs="angle=steering",
                         inputs="img_in=image", custom_objects=["my_layers.Gate"], samples_path=samples,
                         n_samples=64, options=BuildOptions(opset=17))
    ref = ModelVersionRef("rc_pilot", "3", "run1", "models:/m-1", dict(TAGS), ())
    return Case(req, ref)


def key(c: Case) -> str:
    return cache_key(bundle_inputs(c.req, c.ref))


def _tag(name: str, value: str | None) -> Callable[[Case, Path], None]:
    def change(c: Case, _: Path) -> None:
        if value is None:
            c.ref.tags.pop(name)
        else:
            c.ref.tags[name] = value
    return change


def _samples_content(c: Case, tmp: Path) -> None:
    assert c.req.samples_path is not None
    c.req.samples_path.write_bytes(b"frames v2")  # same name, new content


def _samples_folder(c: Case, tmp: Path) -> None:
    folder = tmp / "frames"
    folder.mkdir(exist_ok=True)
    (folder / "a.png").write_bytes(b"x")
    c.req.samples_path = folder


def _toolchain(c: Case, tmp: Path) -> None:
    # A different tf2onnx/onnx/TFLite makes a different model from the same inputs.
    versions = cache.toolchain_versions() | {"onnx": "0.0.1-test"}
    setattr(cache, "toolchain_versions", lambda: versions)  # noqa: B010 (undone by the fixture)


def _converter_version(c: Case, tmp: Path) -> None:
    setattr(converter, "__version__", converter.__version__ + "+test")  # noqa: B010 (undone by the fixture)


CHANGES_THE_BUNDLE: dict[str, Callable[[Case, Path], None]] = {
    "opset": lambda c, _: setattr(c.req, "options", BuildOptions(opset=13)),
    "samples count": lambda c, _: setattr(c.req, "n_samples", 32),
    "samples content": _samples_content,
    "samples path": lambda c, t: setattr(c.req, "samples_path", t / "other.npz"),
    "samples as a folder": _samples_folder,
    "no samples file": lambda c, _: setattr(c.req, "samples_path", None),
    "preprocess flag": lambda c, _: c.req.preprocess_overrides.update(crop_top=30),
    "preprocess flag added": lambda c, _: c.req.preprocess_overrides.update(color="BGR"),
    "outputs flag": lambda c, _: setattr(c.req, "outputs", "angle=steering,throttle=throttle"),
    "inputs flag": lambda c, _: setattr(c.req, "inputs", "img_in=image,imu_in=imu"),
    "custom objects": lambda c, _: setattr(c.req, "custom_objects", ["my_layers.Gate", "my_layers.Clip"]),
    "edge.preprocess tag": _tag("edge.preprocess", "crop_top=30"),
    "edge.outputs tag": _tag("edge.outputs", "angle=steering:bins"),
    "edge.inputs tag": _tag("edge.inputs", "img_in=image_sequence"),
    "edge.preprocess tag removed": _tag("edge.preprocess", None),
    "a new edge.* tag": _tag("edge.something_new", "1"),
    "model version": lambda c, _: setattr(c, "ref", dataclasses.replace(c.ref, version="4")),
    "model source": lambda c, _: setattr(c, "ref", dataclasses.replace(c.ref, source="models:/m-2")),
    "model run": lambda c, _: setattr(c, "ref", dataclasses.replace(c.ref, run_id="run2")),
    "toolchain": _toolchain,
    "converter version": _converter_version,
}

SAME_BUNDLE: dict[str, Callable[[Case, Path], None]] = {
    "edge.conversion_run_id tag": _tag("edge.conversion_run_id", "def456"),
    "edge.conversion_run_id tag removed": _tag("edge.conversion_run_id", None),
    "edge.formats tag": _tag("edge.formats", "onnx,tflite-fp32,tflite-int8"),
    "edge.formats tag removed": _tag("edge.formats", None),
    "a tag outside edge.*": _tag("team", "vision"),
    "formats asked for": lambda c, _: setattr(c.req, "formats", ["onnx", "tflite-fp16"]),  # per-format keys
    "force": lambda c, _: setattr(c.req, "force", True),
    "output folder": lambda c, t: setattr(c.req, "output_root", t / "elsewhere"),
}


@pytest.fixture(autouse=True)
def _undo_monkeypatches() -> Iterator[None]:
    # The change functions above patch module attributes; put them back after each case.
    saved = (cache.toolchain_versions, converter.__version__)
    yield
    cache.toolchain_versions, converter.__version__ = saved


@pytest.mark.parametrize("what", list(CHANGES_THE_BUNDLE))
def test_each_bundle_input_changes_the_key(what: str, tmp_path: Path) -> None:
    before = key(base_case(tmp_path))
    assert key(base_case(tmp_path)) == before  # deterministic: same inputs, same key
    case = base_case(tmp_path)
    CHANGES_THE_BUNDLE[what](case, tmp_path)
    assert key(case) != before, f"changing the {what} would reuse a stale bundle"


@pytest.mark.parametrize("what", list(SAME_BUNDLE))
def test_bookkeeping_does_not_change_the_key(what: str, tmp_path: Path) -> None:
    before = key(base_case(tmp_path))
    case = base_case(tmp_path)
    SAME_BUNDLE[what](case, tmp_path)
    assert key(case) == before, f"changing the {what} would rebuild for nothing"


def test_the_samples_folder_fingerprint_sees_a_changed_file(tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    (folder / "a.png").write_bytes(b"one")
    case = base_case(tmp_path)
    case.req.samples_path = folder
    before = key(case)
    (folder / "a.png").write_bytes(b"two!")  # size and mtime change
    os.utime(folder / "a.png", ns=(1, 1))
    assert key(case) != before
    (folder / "b.png").write_bytes(b"new frame")
    assert key(case) != before


def _calibration(tmp: Path, content: dict[str, object]) -> Path:
    d = tmp / ("cal-" + hashlib.sha256(json.dumps(content, sort_keys=True).encode()).hexdigest()[:12])
    d.mkdir(exist_ok=True)
    (d / cache.CALIBRATION_MANIFEST).write_text(json.dumps(content))
    return d


def test_format_keys(tmp_path: Path) -> None:
    req = base_case(tmp_path).req
    req.calibration = _calibration(tmp_path, {"frames": 100, "seed": 1})
    int8 = format_key("tflite-int8", req)
    fp32 = format_key("onnx", req)
    assert int8 != fp32 and format_key("tflite-int8", copy.deepcopy(req)) == int8

    other_set = copy.deepcopy(req)
    other_set.calibration = _calibration(tmp_path, {"frames": 100, "seed": 2})
    assert format_key("tflite-int8", other_set) != int8  # another calibration set: rebuild INT8
    assert format_key("onnx", other_set) == fp32  # ... and nothing else

    limits = copy.deepcopy(req)
    limits.int8_limits = {"max_abs": 0.05}
    assert format_key("tflite-int8", limits) != int8 and format_key("onnx", limits) == fp32

    tol = copy.deepcopy(req)
    tol.tolerance = {"onnx": 1e-3}
    assert format_key("onnx", tol) != fp32  # only the format whose tolerance changed
    assert format_key("tflite-int8", tol) == int8

    wide = copy.deepcopy(req)
    wide.options.trt_workspace_mb = 4096
    assert format_key("trt-fp16", wide) != format_key("trt-fp16", req)  # another engine may result
    assert format_key("onnx", wide) == fp32 and format_key("tflite-int8", wide) == int8
    default = copy.deepcopy(req)
    default.options.trt_workspace_mb = 1024
    assert format_key("trt-fp16", default) == format_key("trt-fp16", req)  # earlier keys stay valid


# The recipes below are pinned: a renamed field or a changed default changes every key, and every
# bundle made by an earlier release would then be rebuilt instead of reused.

def test_cache_key_is_the_sha256_of_canonical_json() -> None:
    # Sorted keys (dict order never matters); anything JSON cannot hold (a Path) is written as str.
    assert cache_key({"b": 1, "a": Path("x")}) == hashlib.sha256(b'{"a": "x", "b": 1}').hexdigest()
    assert cache_key({"a": 1, "b": 2}) == cache_key({"b": 2, "a": 1})


def test_toolchain_versions_lists_every_installed_tool() -> None:
    expected = {}
    for dist in cache.TOOL_DISTS:
        # One not installed here (TensorRT without a GPU) is left out; the rest are still listed.
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            expected[dist] = importlib.metadata.version(dist)
    assert cache.toolchain_versions() == expected and "onnx" in expected


def test_bundle_inputs_recipe(tmp_path: Path) -> None:
    setattr(cache, "toolchain_versions", lambda: {"onnx": "1.0"})  # noqa: B010 (undone by the fixture)
    setattr(converter, "__version__", "9.9")  # noqa: B010 (undone by the fixture)
    case = base_case(tmp_path)
    assert bundle_inputs(case.req, case.ref) == {
        "model": {"name": "rc_pilot", "version": "3", "run_id": "run1", "source": "models:/m-1"},
        "tags": {"edge.preprocess": "crop_top=40", "edge.outputs": "angle=steering", "edge.inputs": "img_in=image"},
        "converter": "9.9", "toolchain": {"onnx": "1.0"}, "preprocess": {"crop_top": 40},
        "outputs": "angle=steering", "inputs": "img_in=image", "custom_objects": ["my_layers.Gate"],
        "model_class": None,
        "samples": {"path": str(tmp_path / "samples.npz"), "content": hashlib.sha256(b"frames v1").hexdigest(),
                    "n": 64},
        "opset": 17,
    }
    case.req.samples_path = None
    case.req.model_class = "pilots:Net"
    case.req.model_file = "weights/pilot.pt"
    got = bundle_inputs(case.req, case.ref)
    assert got["samples"] == {"path": None, "content": None, "n": 64}
    assert got["model_class"] == "pilots:Net" and got["model_file"] == "weights/pilot.pt"


def test_format_key_recipe(tmp_path: Path) -> None:
    req = base_case(tmp_path).req
    assert format_key("onnx", req) == cache_key({"format": "onnx", "tolerance": formats.get("onnx").tolerance})
    req.tolerance = {"onnx": 0.5}
    assert format_key("onnx", req) == cache_key({"format": "onnx", "tolerance": 0.5})
    req.calibration = _calibration(tmp_path, {"frames": 100})
    int8 = formats.get("tflite-int8")
    assert format_key("tflite-int8", req) == cache_key({
        "format": "tflite-int8", "tolerance": int8.tolerance,
        "calibration": sha256_file(req.calibration / cache.CALIBRATION_MANIFEST), "int8_limits": "None"})
    req.tolerance = {"tflite-int8": 0.5}
    assert format_key("tflite-int8", req) != format_key("tflite-int8", base_case(tmp_path).req)
    trt = {"format": "trt-fp16", "tolerance": formats.get("trt-fp16").tolerance}
    assert format_key("trt-fp16", req) == cache_key(trt)  # the default workspace: the key it always had
    req.options.trt_workspace_mb = 4096
    assert format_key("trt-fp16", req) == cache_key({**trt, "trt_workspace_mb": 4096})


def test_calibration_id(tmp_path: Path) -> None:
    assert cache.calibration_id(None) is None
    assert cache.calibration_id(tmp_path) is None  # a folder without calibration.json: no identity
    folder = _calibration(tmp_path, {"frames": 3})
    assert cache.calibration_id(folder) == sha256_file(folder / cache.CALIBRATION_MANIFEST)
