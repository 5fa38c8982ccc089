"""One update pass: the alias's version → staged → verified → swapped when parked → reported.

Exit codes (:class:`Outcome`): 0 ``current`` is the alias's version; 1 refused (``current``
unchanged); 3 the registry cannot be reached (``current`` unchanged, a partial download kept for
the next pass); 4 staged and verified but the car did not park in time (``current`` unchanged).
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runtime.manifest import load_manifest
from runtime.manifest.errors import BundleError
from runtime.manifest.integrity import sha256_file
from runtime.manifest.signature import SIGNATURE_NAME, TrustedKey, verify_bundle
from runtime.update.gate import GateConfig, replay_gate
from runtime.update.layout import Layout, version_key
from runtime.update.parked import parked_now
from runtime.update.registry import Registry, RegistryError, RegistryUnreachable

log = logging.getLogger(__name__)

CONVERSION_TAG = "edge.conversion_run_id"
BUNDLE_PATH = "bundle"

OK, REFUSED, UNREACHABLE, NOT_PARKED = 0, 1, 3, 4


@dataclass
class Outcome:
    """What a pass did: the exit ``code``, one ``message`` line, the ``version`` concerned and figures."""

    code: int
    message: str
    version: str | None = None
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Target:
    """What this car follows and how it swaps."""

    name: str
    alias: str
    car_id: str
    trusted: list[TrustedKey]
    state_file: str | None = None
    keep: int = 3
    park_timeout_s: float = 0.0  # how long a pass waits for the car to park before giving up (exit 4)
    on_swap: list[str] | None = None  # e.g. systemctl try-restart rc-runtime
    gate: GateConfig | None = None  # the replay gate (runtime/update/gate.py); None: not gated


def update_once(registry: Registry, layout: Layout, target: Target) -> Outcome:
    """Bring ``current`` to the alias's version if it passes every check; report on the version."""
    layout.ensure()
    try:
        mv = registry.alias_version(target.name, target.alias)
    except RegistryUnreachable as e:
        return Outcome(UNREACHABLE, f"registry unreachable: {e}; keeping v{layout.current_version()}")
    except RegistryError as e:
        return Outcome(REFUSED, str(e))
    version = str(mv["version"])
    out = _install(registry, layout, target, mv, version)
    out.version = version
    layout.note(last={"code": out.code, "message": out.message, "version": version, "wall": time.time(),
                      **({"figures": out.figures} if out.figures else {})})
    if out.code in (OK, REFUSED) and not out.figures.get("already"):
        _report(registry, target, version, out)
    return out


def _install(registry: Registry, layout: Layout, target: Target, mv: dict[str, Any], version: str) -> Outcome:
    current = layout.current_version()
    where = f"models:/{target.name}@{target.alias} v{version}"
    if current == version:
        return Outcome(OK, f"{where} is already current", figures={"already": True})
    if str(version) in layout.record().get("rolled_back", []):
        return Outcome(REFUSED, f"refused: {where} was rolled back on this car; move the alias to another version")
    if current is not None and version_key(version) < version_key(current):
        return Outcome(REFUSED, f"refused: {where} is older than the current v{current}; "
                                "use `rc-update rollback` to go back on purpose")
    final = layout.bundle_dir(version)
    figures: dict[str, Any] = {}
    if not final.is_dir():
        tags = {t["key"]: t["value"] for t in mv.get("tags", [])}
        run_id = tags.get(CONVERSION_TAG)
        if not run_id:
            return Outcome(REFUSED, f"refused: {where} has no {CONVERSION_TAG} tag; convert it with convert-model "
                                    "(it logs the bundle and tags the version)")
        staged = layout.staging_dir(version)
        try:
            figures.update(download_bundle(registry, run_id, staged))
        except RegistryUnreachable as e:
            return Outcome(UNREACHABLE, f"registry unreachable during download: {e}; the partial download "
                                        f"in {staged} resumes next time")
        except RegistryError as e:
            return Outcome(REFUSED, f"refused: {where}: {e}")
        refused = check_staged(staged, version, target.trusted)
        if refused is None and target.gate is not None:
            refused, gate_figures = replay_gate(staged, target.gate)
            figures["replay_gate"] = gate_figures
            log.info("replay gate on %s: %s", where, gate_figures)
        if refused:
            shutil.rmtree(staged, ignore_errors=True)  # bad as logged: fetching it again gives the same bytes
            return Outcome(REFUSED, f"refused: {where}: {refused}", figures=figures)
        layout.promote(staged, version)
    else:  # staged and verified by an earlier pass; check again: it may have been altered since
        refused = check_staged(final, version, target.trusted)
        if refused:
            shutil.rmtree(final, ignore_errors=True)
            return Outcome(REFUSED, f"refused: {where}: {refused}")
    waited = wait_parked(target)
    if waited is not None:
        return Outcome(NOT_PARKED, f"{where} staged in {final}; not swapped: {waited}", figures=figures)
    layout.swap(version)
    removed = layout.prune(target.keep)
    if removed:
        log.info("pruned bundles %s", ", ".join(f"v{v}" for v in removed))
    if target.on_swap:
        restart(target.on_swap)
    was = f"v{current}" if current else "none"
    return Outcome(OK, f"installed {where} (was {was})", figures=figures)


def download_bundle(registry: Registry, run_id: str, staged: Path) -> dict[str, Any]:
    """The run's ``bundle/manifest.json`` and its signature, then only the files the manifest lists
    (so nothing unsigned enters the bundle), into ``staged``. Resumed: a listed file already there
    with the manifest's sha256 is not fetched again; each file is written as ``.part`` then
    renamed, so a kill leaves only whole files."""
    t0 = time.monotonic()
    staged.mkdir(parents=True, exist_ok=True)
    listed = {f.path: f for f in registry.list_files(run_id, BUNDLE_PATH)}
    if f"{BUNDLE_PATH}/manifest.json" not in listed:
        raise RegistryError(f"run {run_id} has no {BUNDLE_PATH}/manifest.json; was it logged by convert-model?")
    artifact_uri = registry.artifact_uri(run_id)
    nbytes = [0]

    def fetch(rel: str) -> None:
        dest = staged / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        part = dest.with_name(dest.name + ".part")
        registry.download(run_id, artifact_uri, f"{BUNDLE_PATH}/{rel}", part,
                          on_chunk=lambda n: nbytes.__setitem__(0, nbytes[0] + n))
        size = listed[f"{BUNDLE_PATH}/{rel}"].size
        if size is not None and part.stat().st_size != size:  # cut short (no Content-Length to tell)
            raise RegistryUnreachable(f"download of {rel} broke off at {part.stat().st_size} of {size} bytes")
        part.replace(dest)

    fetch("manifest.json")  # small, and always fetched: a re-signed bundle of the same version is seen
    if f"{BUNDLE_PATH}/{SIGNATURE_NAME}" in listed:
        fetch(SIGNATURE_NAME)
    fetched = resumed = 0
    for rel, sha256 in _manifest_sha256(staged).items():
        if f"{BUNDLE_PATH}/{rel}" not in listed:
            raise RegistryError(f"run {run_id}'s {BUNDLE_PATH}/ lacks {rel}, which its manifest lists; "
                                "re-run the conversion")
        dest = staged / rel
        if dest.is_file() and sha256_file(dest) == sha256:
            resumed += 1
            continue
        fetch(rel)
        fetched += 1
    return {"download_s": round(time.monotonic() - t0, 3), "files_fetched": fetched, "files_resumed": resumed,
            "bytes": nbytes[0]}


def _manifest_sha256(staged: Path) -> dict[str, str]:
    """file → sha256 for every build and the reference the manifest lists ({} when it cannot be read)."""
    try:
        m = load_manifest(staged)
    except BundleError:
        return {}
    out = {b.file: b.sha256 for b in m.builds}
    ref = m.source.get("reference")
    if isinstance(ref, dict) and "file" in ref and "sha256" in ref:
        out[str(ref["file"])] = str(ref["sha256"])
    return out


def check_staged(bundle: Path, version: str, trusted: list[TrustedKey]) -> str | None:
    """Why the bundle may not drive (signature, sha256, wrong version), or None when it may."""
    try:
        verify_bundle(bundle, trusted)
        manifest = load_manifest(bundle)
    except BundleError as e:
        return str(e)
    if str(manifest.model.version) != str(version):
        return (f"its signed manifest is for v{manifest.model.version}, not v{version}; "
                "the registry's bundle belongs to another version")
    return None


def wait_parked(target: Target) -> str | None:
    """None once the car is parked (checked every 0.2 s for ``park_timeout_s``), else why not."""
    end = time.monotonic() + target.park_timeout_s
    while True:
        parked, why = parked_now(target.state_file)
        if parked:
            log.info("swap allowed: %s", why)
            return None
        if time.monotonic() >= end:
            return why
        time.sleep(0.2)


def restart(cmd: list[str]) -> None:
    """Run the swap hook (reload the runtime); a failure is logged: ``current`` is already right."""
    try:
        subprocess.run(cmd, check=True, timeout=60)
    except (OSError, subprocess.SubprocessError) as e:
        log.error("after the swap, %s failed: %s", " ".join(cmd), e)


def _report(registry: Registry, target: Target, version: str, out: Outcome) -> None:
    value = out.message if out.code == REFUSED else "installed " + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    gate = out.figures.get("replay_gate")
    try:
        registry.set_tag(target.name, version, f"edge.car.{target.car_id}", value[:5000])
        if gate:
            registry.set_tag(target.name, version, f"edge.car.{target.car_id}.replay_gate",
                             json.dumps(gate, sort_keys=True)[:5000])
    except (RegistryError, RegistryUnreachable) as e:
        log.warning("could not report to the registry: %s", e)
