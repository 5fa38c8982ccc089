"""Write bundles atomically and recognise a cache hit.

A bundle is assembled in a hidden staging directory beside its final place and swapped in with
renames, so a crash never leaves a half bundle that looks whole: the final directory either
does not exist, or holds a manifest whose every file was written and hashed.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from runtime.manifest import MANIFEST_NAME, BundleError, Manifest, load_manifest, sha256_file, verified_path

log = logging.getLogger(__name__)


def bundle_dir_for(output_root: Path, name: str, version: str) -> Path:
    return output_root / name / f"v{version}"


def cached_manifest(
    bundle_dir: Path, key: str, formats: list[str], format_keys: dict[str, str] | None = None,
    skipped_ok: bool = False,
) -> Manifest | None:
    """The existing bundle's manifest if it was made from the same inputs, holds every requested
    format, and all its files still match their sha256; else None (and why, in the log).

    ``skipped_ok``: a format skipped last time (e.g. TensorRT on a machine without a GPU) counts
    as done; the machine's TensorRT version is part of the key, so installing it rebuilds."""
    if not (bundle_dir / MANIFEST_NAME).is_file():
        return None
    try:
        manifest = load_manifest(bundle_dir)
    except BundleError as e:
        log.info("existing bundle unreadable, rebuilding: %s", e)
        return None
    if manifest.source.get("key") != key:
        log.info("existing bundle %s was made from other inputs; rebuilding", bundle_dir)
        return None
    skipped = {n["format"] for n in manifest.not_built if n.get("status") == "skipped"}
    missing = [f for f in formats if not manifest.has(f) and not (skipped_ok and f in skipped)]
    if missing:
        log.info("existing bundle lacks %s", ", ".join(missing))
        return None
    changed = [f for f in formats if manifest.has(f) and format_keys
               and manifest.build(f).extra.get("key") != format_keys.get(f)]
    if changed:
        log.info("settings of %s changed", ", ".join(changed))
        return None
    try:
        for b in manifest.builds:
            verified_path(bundle_dir, b)
        ref = manifest.source.get("reference")
        if ref and sha256_file(bundle_dir / ref["file"]) != ref["sha256"]:
            raise BundleError("reference samples changed")
    except (BundleError, OSError) as e:
        log.warning("existing bundle failed verification, rebuilding: %s", e)
        return None
    return manifest


class Staging:
    """A staging directory that becomes ``target`` on :meth:`commit`, or vanishes on failure."""

    def __init__(self, target: Path, seed_from: list[str] | None = None) -> None:
        # A symlinked bundle path (e.g. /opt/rc-car/bundles/current) is updated where it points.
        target = target.resolve()
        self.target = target
        # Folders made here (builds/, builds/<name>/) go again if nothing is committed into them.
        self._made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
        target.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=f".{target.name}.staging-", dir=target.parent))
        # Builds kept from the existing bundle are copied, never hard-linked: a builder writing the
        # same file name in place would otherwise rewrite the live bundle before the commit.
        for name in seed_from or []:
            shutil.copy2(target / name, self.path / name)
        self.committed = False

    def __enter__(self) -> Staging:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if not self.committed:
            shutil.rmtree(self.path, ignore_errors=True)
            for made in self._made:  # innermost first
                try:
                    made.rmdir()
                except OSError:
                    break  # not empty (another bundle landed there meanwhile) or gone: leave it

    def commit(self, manifest: Manifest, signer: Any = None) -> Path:
        """Write the manifest last (and with ``signer``, a :class:`converter.signing.Signer`, its
        detached signature ``manifest.json.sig``), fsync, and swap the staging directory into place."""
        keep = {b.file for b in manifest.builds}
        ref = manifest.source.get("reference")
        if ref:
            keep.add(ref["file"])
        for p in self.path.iterdir():
            if p.is_file() and p.name not in keep:
                p.unlink()  # leftovers of failed builds never reach the bundle
        tmp = self.path / (MANIFEST_NAME + ".tmp")
        data = manifest.dumps().encode("utf-8")
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        tmp.replace(self.path / MANIFEST_NAME)
        if signer is not None:  # signed in staging: the bundle appears signed or not at all
            signer.write_signature(self.path, data)
        os.chmod(self.path, 0o777 & ~_umask())  # mkdtemp makes 0700: the car's service user must read it
        old = None
        if self.target.exists():
            old = self.target.with_name(f".{self.target.name}.old-{os.getpid()}")
            shutil.rmtree(old, ignore_errors=True)
            self.target.rename(old)
        self.path.rename(self.target)
        self.committed = True
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return self.target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
