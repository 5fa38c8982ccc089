"""Atomic bundle writes: a failure leaves no bundle; a commit swaps a whole one in."""

from __future__ import annotations

from pathlib import Path

import pytest

from converter.bundle import Staging, cached_manifest
from converter.cache import cache_key
from runtime.manifest import (
    BuildEntry,
    InputSpec,
    Manifest,
    ModelInfo,
    OutputSpec,
    PreprocessSpec,
    TensorIO,
    sha256_file,
)


def manifest_for(staging: Path, key: str = "k") -> Manifest:
    f = staging / "model.onnx"
    f.write_bytes(b"onnx bytes")
    build = BuildEntry("onnx", "fp32", "model.onnx", sha256_file(f), f.stat().st_size,
                       {"image": TensorIO("image", "float32"), "steering": TensorIO("steering", "float32")})
    return Manifest(
        model=ModelInfo("m", "1", None, "models:/m/1", "keras"),
        inputs=[InputSpec("image", (1, 120, 160, 3), "float32", "NHWC", PreprocessSpec(160, 120))],
        outputs=[OutputSpec("steering", (1, 1), "steering")],
        builds=[build], created_at="now", converter_version="0", source={"key": key},
    )


def test_failure_leaves_nothing(tmp_path: Path) -> None:
    target = tmp_path / "m" / "v1"
    with pytest.raises(RuntimeError), Staging(target) as st:
        (st.path / "model.onnx").write_bytes(b"half")
        raise RuntimeError("crash mid-build")
    assert not target.exists()
    assert not (tmp_path / "m").exists()  # the folder Staging made goes too: no empty builds/<name>/


def test_commit_replaces_whole_bundle_and_drops_strays(tmp_path: Path) -> None:
    target = tmp_path / "m" / "v1"
    with Staging(target) as st:
        (st.path / "leftover.tmp").write_bytes(b"x")
        st.commit(manifest_for(st.path, "old"))
    assert sorted(p.name for p in target.iterdir()) == ["manifest.json", "model.onnx"]
    with Staging(target) as st:
        st.commit(manifest_for(st.path, "new"))
    assert cached_manifest(target, "new", ["onnx"]) is not None
    assert cached_manifest(target, "old", ["onnx"]) is None
    assert cached_manifest(target, "new", ["onnx", "tflite-fp32"]) is None
    assert [p.name for p in (tmp_path / "m").iterdir()] == ["v1"]


def test_cache_rejects_modified_file(tmp_path: Path) -> None:
    target = tmp_path / "m" / "v1"
    with Staging(target) as st:
        st.commit(manifest_for(st.path))
    (target / "model.onnx").write_bytes(b"tampered")
    assert cached_manifest(target, "k", ["onnx"]) is None


def test_cache_key_is_order_independent() -> None:
    assert cache_key({"a": 1, "b": [1, 2]}) == cache_key({"b": [1, 2], "a": 1})
    assert cache_key({"a": 1}) != cache_key({"a": 2})


def test_a_failed_rebuild_never_touches_the_live_bundle(tmp_path: Path) -> None:
    target = tmp_path / "m" / "v1"
    with Staging(target) as st:
        st.commit(manifest_for(st.path))
    before = (target / "model.onnx").read_bytes()
    with pytest.raises(KeyboardInterrupt), Staging(target, seed_from=["model.onnx"]) as st:
        (st.path / "model.onnx").write_bytes(b"half-written by a builder")  # same name, in place
        raise KeyboardInterrupt
    assert (target / "model.onnx").read_bytes() == before
    assert cached_manifest(target, "k", ["onnx"]) is not None
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["v1"]


def test_a_symlinked_bundle_is_updated_where_it_points(tmp_path: Path) -> None:
    real = tmp_path / "m" / "v1"
    with Staging(real) as st:
        st.commit(manifest_for(st.path, "old"))
    link = tmp_path / "current"
    link.symlink_to(real)
    with Staging(link) as st:
        st.commit(manifest_for(st.path, "new"))
    assert link.is_symlink() and link.resolve() == real.resolve()
    assert cached_manifest(link, "new", ["onnx"]) is not None


def test_bundles_are_readable_by_the_service_user(tmp_path: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        with Staging(tmp_path / "m" / "v1") as st:
            st.commit(manifest_for(st.path))
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "m" / "v1").stat().st_mode) == 0o755
