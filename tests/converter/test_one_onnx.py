"""Every build of a bundle derives from the one ``model.onnx`` it ships (issue 22, item 6).

The README's INT8 command (``--formats onnx,tflite-int8,onnx-int8 --calibration SET``) on a bundle
already holding ``onnx`` and ``onnx-fp16`` once rebuilt ``model.onnx`` although its key was
unchanged; tf2onnx is not byte-reproducible, so the kept ``onnx-fp16`` then derived from an earlier
file. Now an unchanged requested build is carried over (same file: same sha256 and mtime), each
build made from the bundle's ONNX records the sha256 it was made from, and a build whose source is
rebuilt (``--force``) is rebuilt with it. Real parts: the MLflow 2.22 store fixture's tiny ONNX
pilot (read from a copy, no TensorFlow build), rc-calibrate on real frames. ~15 s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from calibration.cli import main as rc_calibrate
from converter.cache import derived_source
from converter.cli import main as convert_model
from converter.demo.track import drive_sequence, write_image_folder
from runtime.manifest import Manifest, load_manifest, sha256_file
from tests.converter.team_store import place_team_store


def assert_one_onnx(bundle: Path) -> Manifest:
    """Every build made from another build of the bundle names the sha256 that build ships, and
    following those names always ends at the bundle's ``model.onnx``."""
    m = load_manifest(bundle)
    by_format = {b.format: b for b in m.builds}
    onnx = by_format["onnx"]
    assert onnx.sha256 == sha256_file(bundle / onnx.file)
    for b in m.builds:
        chain = b
        while (src := derived_source(chain)) is not None:
            assert src[0] in by_format and by_format[src[0]].sha256 == src[1], (b.format, src)
            chain = by_format[src[0]]
        assert b.format in ("onnx", "tflite-fp32", "tflite-fp16", "tflite-int8") or chain is onnx, b.format
    return m


def test_an_int8_run_keeps_the_model_onnx_every_build_derives_from(tmp_path: Path,
                                                                   capfd: pytest.CaptureFixture[str]) -> None:
    store = place_team_store(tmp_path / "team")
    out = tmp_path / "builds"
    bundle = out / "tiny_pilot" / "v1"

    def convert(formats: str, *extra: str) -> dict[str, str]:
        capfd.readouterr()
        code = convert_model(["--name", store.name, "--version", "1", "--tracking-uri", store.uri, "--no-log",
                              "--output", str(out), "--formats", formats, "--json", *extra])
        summary = json.loads(capfd.readouterr().out)
        assert code == 0, [(o["format"], o["status"], o["reason"]) for o in summary["formats"]]
        return {o["format"]: o["status"] for o in summary["formats"]}

    assert convert("onnx,onnx-fp16") == {"onnx": "built", "onnx-fp16": "built"}
    assert_one_onnx(bundle)
    onnx = bundle / "model.onnx"
    first = (sha256_file(onnx), onnx.stat().st_mtime_ns)

    frames, _, _ = drive_sequence(120, seed=3, width=32, height=32)
    write_image_folder(tmp_path / "frames", frames)
    assert rc_calibrate([str(tmp_path / "frames"), "--bundle", str(bundle), "--out", str(tmp_path / "calib"),
                         "--frames", "120"]) == 0
    statuses = convert("onnx,onnx-int8", "--calibration", str(tmp_path / "calib"))
    assert statuses == {"onnx": "cached", "onnx-int8": "built"}
    assert (sha256_file(onnx), onnx.stat().st_mtime_ns) == first  # carried over, not rebuilt
    m = assert_one_onnx(bundle)
    assert {b.format for b in m.builds} == {"onnx", "onnx-fp16", "onnx-int8"}

    # --force rebuilds model.onnx; the builds made from it are rebuilt with it, not kept.
    statuses = convert("onnx", "--force", "--calibration", str(tmp_path / "calib"))
    assert statuses == {"onnx": "built", "onnx-fp16": "built", "onnx-int8": "built"}
    assert onnx.stat().st_mtime_ns != first[1]
    assert_one_onnx(bundle)
