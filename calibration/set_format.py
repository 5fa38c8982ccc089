"""A calibration set on disk: ``calibration.json`` (its manifest) + ``frames.npz`` (the frames).

Frames are stored as camera-like uint8 BGR, already resized to the preprocessing's
``width`` x ``height`` by the runtime's own first step (``cv2.resize`` with ``INTER_AREA``, which
the runtime's :class:`~runtime.preprocess.Preprocessor` skips for a frame of that size). The rest
(crop, colour order, scale/mean/std) runs when the set is loaded, with ``runtime.preprocess``, so
the spec recorded in the manifest is the one applied, and comparing it with a bundle's is
meaningful. Resizing first keeps a 500-frame set at ~30 MB instead of ~450 MB at 640x480.

``frames_sha256`` hashes the arrays' shapes and bytes (not the .npz file, whose zip entries carry
timestamps), so the same sources, spec and seed always give the same hash.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from runtime.manifest import BundleError, PreprocessSpec

FORMAT_NAME = "rc-calibration-set"
FORMAT_VERSION = 1
MANIFEST_FILE = "calibration.json"
FRAMES_FILE = "frames.npz"
ARRAYS = ("calibration", "heldout")


class SetFormatError(ValueError):
    """A calibration set that cannot be read; the message names the fix."""


def resize_like_runtime(frame_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """The runtime's first preprocessing step, alone (see ``runtime.preprocess.Preprocessor``)."""
    if frame_bgr.shape[:2] == (spec.height, spec.width):
        return frame_bgr
    return cv2.resize(frame_bgr, (spec.width, spec.height), interpolation=cv2.INTER_AREA)


def extra_arrays(names: list[str] | set[str]) -> list[str]:
    """The optional arrays of a set for models with several inputs, sorted: ``<split>_prev`` (each
    frame's predecessors, for sequence inputs) and ``<split>_in/<input name>`` (recorded values)."""
    return sorted(n for n in names if n.startswith(tuple(f"{a}_prev" for a in ARRAYS))
                  or n.startswith(tuple(f"{a}_in/" for a in ARRAYS)))


def frames_sha256(arrays: dict[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in [*ARRAYS, *extra_arrays(set(arrays))]:  # a set without extras hashes as before
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}\n".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def spec_line(spec: PreprocessSpec) -> str:
    """One line for error messages, e.g. ``160x120 crop_top=0 RGB scale=0.00392 mean=0,0,0 std=1,1,1``."""
    def trio(v: tuple[float, float, float]) -> str:
        return ",".join(f"{x:g}" for x in v)

    return (f"{spec.width}x{spec.height} crop_top={spec.crop_top} {spec.color} scale={spec.scale:.6g} "
            f"mean={trio(spec.mean)} std={trio(spec.std)}" + (" model_rescales" if spec.model_rescales else ""))


def specs_match(a: PreprocessSpec, b: PreprocessSpec) -> bool:
    """Equal, with float fields compared to 1e-6 (1/255 written by TOML, JSON or Python differs in the last bits)."""
    da, db = a.to_dict(), b.to_dict()
    for key, va in da.items():
        vb = db[key]
        if isinstance(va, list):
            if any(not math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-9) for x, y in zip(va, vb, strict=True)):
                return False
        elif isinstance(va, float):
            if not math.isclose(va, vb, rel_tol=1e-6, abs_tol=1e-9):
                return False
        elif va != vb:
            return False
    return True


def write_set(target: Path, manifest: dict[str, Any], arrays: dict[str, np.ndarray], replace: bool = False) -> Path:
    """Write the set atomically: a temporary directory beside ``target``, renamed into place."""
    target = Path(target)
    if target.exists() and not replace:
        raise SetFormatError(f"{target} already exists; choose another --out or pass --force to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.partial-", dir=target.parent))
    try:
        os.chmod(tmp, 0o777 & ~_umask())  # mkdtemp makes it 0700; a set is shared like any folder
        with open(tmp / FRAMES_FILE, "wb") as f:
            np.savez_compressed(f, **arrays)  # type: ignore[arg-type]
        (tmp / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2) + "\n")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.replace(target, old / "set")
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def read_manifest(path: Path) -> dict[str, Any]:
    mf = Path(path) / MANIFEST_FILE
    if not mf.is_file():
        raise SetFormatError(f"{path} is not a calibration set ({MANIFEST_FILE} missing); make one with rc-calibrate")
    try:
        data = json.loads(mf.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise SetFormatError(f"{mf} is not valid JSON ({e}); rebuild the set with rc-calibrate") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise SetFormatError(f"{mf} is not an {FORMAT_NAME} manifest; rebuild the set with rc-calibrate")
    if int(data.get("version", 0)) > FORMAT_VERSION:
        raise SetFormatError(f"{mf}: set format v{data.get('version')} is newer than this tool (v{FORMAT_VERSION}); upgrade")
    return data


def manifest_spec(path: Path, manifest: dict[str, Any]) -> PreprocessSpec:
    try:
        return PreprocessSpec.from_dict(manifest["preprocess"])
    except (KeyError, TypeError, BundleError) as e:
        raise SetFormatError(f"{path / MANIFEST_FILE}: bad or missing preprocess ({e}); rebuild the set") from None


def read_frames(path: Path, manifest: dict[str, Any], spec: PreprocessSpec) -> dict[str, np.ndarray]:
    """The uint8 frames (and the optional arrays, see :func:`extra_arrays`), after checking their
    hash and size against the manifest."""
    fp = Path(path) / manifest.get("frames", {}).get("file", FRAMES_FILE)
    try:
        with np.load(fp) as z:
            arrays = {name: z[name] for name in [*ARRAYS, *extra_arrays(set(z.files))]}
    except (OSError, KeyError, ValueError) as e:
        raise SetFormatError(f"{fp}: unreadable frames ({e}); rebuild the set with rc-calibrate") from None
    want = manifest.get("frames", {}).get("sha256")
    if frames_sha256(arrays) != want:
        raise SetFormatError(f"{fp}: frames do not match the sha256 in {MANIFEST_FILE}; re-copy or rebuild the set")
    for name in ARRAYS:
        a = arrays[name]
        if a.dtype != np.uint8 or a.ndim != 4 or a.shape[1:] != (spec.height, spec.width, 3):
            raise SetFormatError(f"{fp}: {name} frames are {a.shape} {a.dtype}, expected (N, {spec.height}, "
                                 f"{spec.width}, 3) uint8; rebuild the set")
    return arrays
