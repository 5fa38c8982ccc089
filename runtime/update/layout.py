"""The car's bundle folder (``--root DIR``) and the only ways it changes.

::

    DIR/current -> bundles/v7        the bundle rc-runtime drives (a symlink, replaced atomically)
    DIR/bundles/v7/  v6/ ...         verified, complete bundles (moved in from staging by rename)
    DIR/staging/7.partial/           a download in progress (resumed file by file)
    DIR/update.json                  history of swaps, versions rolled back, the last outcome

Every change is a rename or an ``os.replace`` on the same filesystem, so kill -9 or power loss at
any step leaves ``current`` pointing at a complete bundle (the old one or the new one).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Any

from runtime.atomic import atomic_write_json

log = logging.getLogger(__name__)

CURRENT = "current"
BUNDLES = "bundles"
STAGING = "staging"
RECORD = "update.json"


def version_key(version: str) -> tuple[int, str]:
    """Registry versions are integers as strings; sort numerically, anything else after, by text."""
    return (int(version), "") if version.isdigit() else (1 << 62, version)


class Layout:
    """``DIR``'s folders and its ``update.json`` record."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.current = self.root / CURRENT
        self.bundles = self.root / BUNDLES
        self.staging = self.root / STAGING

    def ensure(self) -> None:
        """Create the folders (not ``current``)."""
        self.bundles.mkdir(parents=True, exist_ok=True)
        self.staging.mkdir(parents=True, exist_ok=True)

    def bundle_dir(self, version: str) -> Path:
        """Where an installed version lives: ``bundles/v<version>``."""
        return self.bundles / f"v{version}"

    def staging_dir(self, version: str) -> Path:
        """Where a version downloads before it is verified: ``staging/<version>.partial``."""
        return self.staging / f"{version}.partial"

    def current_version(self) -> str | None:
        """The version ``current`` points at (``bundles/v<version>``), or None when there is none."""
        try:
            target = os.readlink(self.current)
        except OSError:
            return None
        name = Path(target).name
        if not name.startswith("v") or not (self.bundles / name).is_dir():
            return None
        return name[1:]

    def installed(self) -> list[str]:
        """Versions in ``bundles/``, oldest first."""
        if not self.bundles.is_dir():
            return []
        names = [p.name[1:] for p in self.bundles.iterdir() if p.is_dir() and p.name.startswith("v")]
        return sorted(names, key=version_key)

    def promote(self, staged: Path, version: str) -> Path:
        """Move a verified staging folder to ``bundles/v<version>`` (one rename). An existing
        folder of that version (verified earlier) is kept and the staging copy removed."""
        final = self.bundle_dir(version)
        if final.is_dir():
            shutil.rmtree(staged)
            return final
        _fsync_tree(staged)
        os.rename(staged, final)
        _fsync_dir(self.bundles)
        return final

    def swap(self, version: str) -> None:
        """Point ``current`` at ``bundles/v<version>``: a new symlink, then ``os.replace`` over it."""
        target = Path(BUNDLES) / f"v{version}"  # relative: the folder may be mounted elsewhere
        tmp = self.root / f".{CURRENT}.{os.getpid()}.tmp"
        tmp.unlink(missing_ok=True)
        os.symlink(target, tmp)
        os.replace(tmp, self.current)
        _fsync_dir(self.root)
        rec = self.record()
        rec.setdefault("history", []).append({"version": version, "wall": time.time()})
        rec["history"] = rec["history"][-50:]
        self.save(rec)

    def previous(self) -> str | None:
        """The version installed before the current one that is still in ``bundles/``."""
        cur = self.current_version()
        have = set(self.installed())
        for entry in reversed(self.record().get("history", [])):
            v = str(entry.get("version"))
            if v != cur and v in have:
                return v
        older = [v for v in self.installed() if cur is None or version_key(v) < version_key(cur)]
        return older[-1] if older else None

    def prune(self, keep: int) -> list[str]:
        """Remove all but the newest ``keep`` bundles; never ``current`` or the one before it."""
        protect = {self.current_version(), self.previous()}
        versions = self.installed()
        removed = []
        for v in versions[:max(len(versions) - keep, 0)]:
            if v in protect:
                continue
            shutil.rmtree(self.bundle_dir(v))
            removed.append(v)
        return removed

    def record(self) -> dict[str, Any]:
        """``update.json`` (empty when absent or unreadable: it is a log, never needed to drive)."""
        try:
            doc = json.loads((self.root / RECORD).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return doc if isinstance(doc, dict) else {}

    def save(self, rec: dict[str, Any]) -> None:
        """Write the agent's record (history, rolled-back versions) atomically."""
        atomic_write_json(self.root / RECORD, rec)

    def note(self, **fields: Any) -> None:
        """Merge ``fields`` into the record."""
        rec = self.record()
        rec.update(fields)
        self.save(rec)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(path: Path) -> None:
    """Files on disk before the rename that makes them the bundle (power loss: old or new, complete)."""
    for p in path.rglob("*"):
        if p.is_file():
            fd = os.open(p, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
    _fsync_dir(path)
