"""The sha256 check of a bundle's files before any load."""

from __future__ import annotations

import hashlib
from pathlib import Path

from runtime.manifest.builds import BuildEntry
from runtime.manifest.errors import BundleError, IntegrityError


def sha256_file(path: str | Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of the file at ``path``, read in ``chunk``-byte blocks (1 MiB by default); ``OSError`` if
    unreadable.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def verified_path(bundle_dir: str | Path, build: BuildEntry) -> Path:
    """The build's file, after checking it exists and its sha256 matches the manifest.

    Raises :class:`BundleError` when the file is missing and :class:`IntegrityError` when its bytes
    differ from ``build.sha256`` (modified or corrupted: re-copy the bundle).
    """
    path = Path(bundle_dir) / build.file
    if not path.is_file():
        raise BundleError(f"{build.format}: {path} is missing from the bundle; re-run convert-model")
    digest = sha256_file(path)
    if digest != build.sha256:
        raise IntegrityError(
            f"{build.format}: {path.name} sha256 {digest[:12]}… does not match the manifest's "
            f"{build.sha256[:12]}…; the file was modified or corrupted, re-copy the bundle"
        )
    return path
