"""Installed versions of Python distributions (for cache keys and benchmark records)."""

from __future__ import annotations

import importlib.metadata as md
from collections.abc import Iterable


def distribution_versions(dists: Iterable[str]) -> dict[str, str]:
    """``{dist: version}`` for each installed distribution in ``dists``, in the given order;
    missing ones are left out (no error)."""
    out: dict[str, str] = {}
    for dist in dists:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            continue
    return out
