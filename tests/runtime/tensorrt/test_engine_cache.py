"""The engine cache's keys, sidecars, atomic writes and rebuild rules (pure Python, no TensorRT).

The cache stores opaque bytes; here ``build`` writes a payload with a header line and ``load``
accepts only payloads with the right header, which is how it behaves with TensorRT: a file the
deserializer refuses (EngineLoadError) is rebuilt.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from runtime.atomic import atomic_write_bytes
from runtime.tensorrt.engine_cache import (
    EngineCache,
    EngineKey,
    EngineLoadError,
    default_cache_dir,
    timing_cache_name,
)

KEY = EngineKey(
    onnx_sha256="a" * 64, tensorrt="10.3.0.30", compute_capability="8.7",
    device="NVIDIA Jetson Orin Nano Developer Kit", precision="fp16", input_shape=(1, 120, 160, 3),
)
HEADER = b"payload-for:"


def writer(calls: list[Path]) -> Callable[[Path], dict[str, str]]:
    def build(path: Path) -> dict[str, str]:
        calls.append(path)
        atomic_write_bytes(path, HEADER + KEY.digest().encode())
        return {"note": "built"}
    return build


def load(path: Path) -> bytes:
    data = path.read_bytes()
    if not data.startswith(HEADER):
        raise EngineLoadError("not a payload this loader accepts")
    return data


def test_key_changes_with_every_field() -> None:
    variants = [
        replace(KEY, onnx_sha256="b" * 64), replace(KEY, tensorrt="10.3.0.31"), replace(KEY, compute_capability="8.6"),
        replace(KEY, device="NVIDIA GeForce RTX 3060"), replace(KEY, precision="int8"),
        replace(KEY, input_shape=(1, 96, 160, 3)), replace(KEY, workspace_mb=4096),
    ]
    stems = {KEY.stem()} | {v.stem() for v in variants}
    assert len(stems) == len(variants) + 1
    assert KEY.stem().startswith("model_fp16.trt10.3.0.30.sm87.")
    assert EngineKey.from_dict(KEY.to_dict()) == KEY
    assert KEY.digest() == EngineKey.from_dict(KEY.to_dict()).digest()
    wide = replace(KEY, workspace_mb=4096)
    assert EngineKey.from_dict(wide.to_dict()) == wide


def test_keys_made_before_the_workspace_field_keep_their_digest() -> None:
    # KEY's digest as computed before workspace_mb joined the key: engines cached on cars stay valid.
    assert "workspace_mb" not in KEY.to_dict()
    assert KEY.digest() == "4e38972e0b2ca7c31feaff9cf34b02244d900485022a44a48cdede69a598fb04"


def test_key_refuses_dynamic_shapes_and_bad_digests() -> None:
    with pytest.raises(ValueError, match="static"):
        replace(KEY, input_shape=(-1, 120, 160, 3))
    with pytest.raises(ValueError, match="sha256"):
        replace(KEY, onnx_sha256="abc")


def test_builds_once_then_serves_from_cache(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path), list[Path]()
    first = cache.get_or_build(KEY, writer(calls), load)
    second = cache.get_or_build(KEY, writer(calls), load)
    assert first.built and not second.built and len(calls) == 1
    assert first.engine_path == second.engine_path == cache.engine_path(KEY)
    meta = cache.sidecar_path(KEY).read_text()
    assert '"tensorrt": "10.3.0.30"' in meta and '"note": "built"' in meta


def test_engine_without_sidecar_is_rebuilt(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path), list[Path]()
    cache.engine_path(KEY).write_bytes(HEADER + b"left by a crash before the sidecar")
    assert cache.lookup(KEY) is None
    assert cache.get_or_build(KEY, writer(calls), load).built and len(calls) == 1


def test_sidecar_for_another_key_is_not_trusted(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path), list[Path]()
    cache.get_or_build(KEY, writer(calls), load)
    other = replace(KEY, tensorrt="10.3.0.31")
    cache.sidecar_path(KEY).write_text(cache.sidecar_path(KEY).read_text().replace("10.3.0.30", "10.3.0.31"))
    assert cache.lookup(KEY) is None
    assert cache.lookup(other) is None  # a different key has a different file name too


def test_modified_engine_bytes_are_not_trusted(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path), list[Path]()
    cache.get_or_build(KEY, writer(calls), load)
    with open(cache.engine_path(KEY), "ab") as f:
        f.write(b"bit rot")
    assert cache.lookup(KEY) is None
    assert cache.get_or_build(KEY, writer(calls), load).built and len(calls) == 2


def test_engine_that_fails_to_deserialize_is_rebuilt(tmp_path: Path) -> None:
    cache, calls = EngineCache(tmp_path), list[Path]()
    # A valid sidecar over bytes the loader refuses: e.g. an engine from another TensorRT build.
    atomic_write_bytes(cache.engine_path(KEY), b"refused by the deserializer")
    cache.commit(KEY, {})
    assert cache.lookup(KEY) is not None
    result = cache.get_or_build(KEY, writer(calls), load)
    assert result.built and len(calls) == 1 and result.value.startswith(HEADER)


def test_fresh_engine_that_fails_to_load_is_an_error(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)

    def bad_build(path: Path) -> None:
        atomic_write_bytes(path, b"not loadable")

    with pytest.raises(EngineLoadError):
        cache.get_or_build(KEY, bad_build, load)


def test_failed_build_leaves_nothing_usable(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)

    def crashing_build(path: Path) -> None:
        raise RuntimeError("TensorRT ran out of memory")

    with pytest.raises(RuntimeError, match="out of memory"):
        cache.get_or_build(KEY, crashing_build, load)
    assert cache.lookup(KEY) is None
    assert not cache.sidecar_path(KEY).exists()


def test_atomic_write_keeps_old_bytes_when_the_rename_fails(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "x.engine"
    atomic_write_bytes(target, b"old")

    def no_rename(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", no_rename)
    with pytest.raises(OSError, match="disk full"):
        atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.engine"]


def _build_in_process(root: str, counter: str) -> None:
    def slow_build(path: Path) -> None:
        with open(counter, "a") as f:
            f.write("built\n")
        time.sleep(0.4)
        atomic_write_bytes(path, HEADER + b"x")

    EngineCache(root).get_or_build(KEY, slow_build, load)


def test_two_processes_build_the_same_engine_once(tmp_path: Path) -> None:
    counter = tmp_path / "builds.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_build_in_process, args=(str(tmp_path / "c"), str(counter))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    assert counter.read_text().count("built") == 1


def test_cache_locations(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RC_TRT_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("RC_TRT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "rc-edge" / "tensorrt"
    assert timing_cache_name("8.5.2.2", "8.7") == "trt8.5.2.2.sm87.timing.cache"
    assert EngineCache(tmp_path).timing_cache_path("10.3.0", "8.7").name.endswith(".timing.cache")
