"""The process's peak memory and the installed versions (used by the CLI, benchmarks and converter)."""

from __future__ import annotations

import importlib.metadata as md

from runtime.resources import peak_rss_mb
from runtime.versions import distribution_versions


def test_peak_rss_is_this_process() -> None:
    mb, source = peak_rss_mb()
    assert mb is not None and mb > 10 and source in ("VmHWM", "ru_maxrss")


def test_versions_of_installed_distributions_only_in_the_given_order() -> None:
    got = distribution_versions(["pytest", "no-such-dist-rc-edge", "numpy"])
    assert list(got) == ["pytest", "numpy"]
    assert got == {"pytest": md.version("pytest"), "numpy": md.version("numpy")}

