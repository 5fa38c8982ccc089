"""The converter's and the benchmarks' version records, now both made by runtime.versions."""

from __future__ import annotations

import importlib.metadata as md
import platform

from benchmarks.machine import TOOLCHAIN_PACKAGES
from benchmarks.machine import toolchain_versions as bench_versions
from converter.cache import TOOL_DISTS, toolchain_versions


def direct(dists: tuple[str, ...]) -> dict[str, str]:
    """What both computed before they shared one helper."""
    out = {}
    for d in dists:
        try:
            out[d] = md.version(d)
        except md.PackageNotFoundError:
            continue
    return out


def test_the_cache_keys_toolchain_is_unchanged() -> None:
    # Part of every bundle's cache key: same content, same order, or every cache rebuilds.
    assert list(toolchain_versions().items()) == list(direct(TOOL_DISTS).items())
    assert "onnx" in toolchain_versions()


def test_the_benchmark_record_adds_python() -> None:
    assert bench_versions() == {"python": platform.python_version(), **direct(TOOLCHAIN_PACKAGES)}
