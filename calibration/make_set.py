"""Build a calibration set from sources: plan the picks, decode them, resize as the runtime does, write.

Used by ``rc-calibrate`` (calibration/cli.py) and by tests; no TensorFlow, no MLflow.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

import calibration
from calibration.sampling import DEFAULT_BLOCK, plan
from calibration.set_format import (
    FORMAT_NAME,
    FORMAT_VERSION,
    FRAMES_FILE,
    frames_sha256,
    resize_like_runtime,
    write_set,
)
from calibration.sources import SourceError, open_sources
from runtime.manifest import PreprocessSpec

MIN_CALIBRATION_FRAMES = 300  # below this, activation ranges are estimated from too little (warned)
DEFAULT_FRAMES = 500  # calibration + held-out
DEFAULT_HELDOUT = 0.2


@dataclass
class SetRequest:
    sources: list[Path]
    spec: PreprocessSpec
    out: Path
    frames: int = DEFAULT_FRAMES
    heldout: float = DEFAULT_HELDOUT
    seed: int = 0
    block: int = DEFAULT_BLOCK
    bundle: dict[str, Any] | None = None  # {path, name, version} when the spec came from a bundle
    replace: bool = False


@dataclass
class SetResult:
    path: Path
    manifest: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def make_set(req: SetRequest) -> SetResult:
    if req.frames < 2:
        raise SourceError(f"--frames {req.frames}: a set needs at least 2 frames (calibration + held-out)")
    if not 0.0 < req.heldout < 1.0:
        raise SourceError(f"--heldout {req.heldout}: give a share in (0, 1), e.g. 0.2")
    if req.block < 1:
        raise SourceError(f"--block {req.block}: must be >= 1")
    if not req.sources:
        raise SourceError("no sources: give recordings, video files or image folders")
    sources = [s for p in req.sources for s in open_sources(Path(p))]
    picks = plan([s.length for s in sources], req.frames, req.heldout, req.seed, req.block)
    warnings: list[str] = []
    split: dict[bool, list[np.ndarray]] = {False: [], True: []}
    where: dict[bool, list[tuple[int, int]]] = {False: [], True: []}
    per_source: list[dict[str, Any]] = []
    for i, src in enumerate(sources):
        mine = {p.position: p.heldout for p in picks if p.source == i}
        counts = {False: 0, True: 0}
        size = None
        for pos, frame in src.frames(list(mine)):
            size = size or [int(frame.shape[1]), int(frame.shape[0])]
            held = mine[pos]
            split[held].append(resize_like_runtime(frame, req.spec))
            where[held].append((i, pos))
            counts[held] += 1
        lost = len(mine) - counts[False] - counts[True]
        if lost:
            warnings.append(f"{src.path}: {lost} of {len(mine)} picked frames could not be decoded; left out")
        per_source.append({**src.describe(), "frame_size": size, "calibration": counts[False], "heldout": counts[True]})
    arrays = {name: _stack(split[held], req.spec) for name, held in (("calibration", False), ("heldout", True))}
    n_cal, n_held = len(arrays["calibration"]), len(arrays["heldout"])
    if n_cal == 0 or n_held == 0:
        raise SourceError(f"only {n_cal} calibration and {n_held} held-out frames could be taken; "
                          "give longer sources or more --frames")
    available = sum(s.length for s in sources)
    if available < req.frames:
        warnings.append(f"the sources hold {available} frames, fewer than --frames {req.frames}: all are used")
    if n_cal < MIN_CALIBRATION_FRAMES:
        warnings.append(f"only {n_cal} calibration frames (< {MIN_CALIBRATION_FRAMES}): INT8 ranges may not cover "
                        "what the car sees; record more driving or raise --frames")
    manifest = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "tool": f"rc-calibrate {calibration.__version__}",
        "preprocess": req.spec.to_dict(),
        "bundle": req.bundle,
        "sampling": {"seed": req.seed, "frames_requested": req.frames, "heldout_fraction": req.heldout,
                     "block": req.block, "method": "stratified over each source's timeline; held-out in time blocks"},
        "counts": {"calibration": n_cal, "heldout": n_held, "sources": len(sources), "available": available},
        "sources": per_source,
        "frames": {
            "file": FRAMES_FILE,
            "sha256": frames_sha256(arrays),
            "stored_as": f"uint8 BGR resized to {req.spec.width}x{req.spec.height} (INTER_AREA); "
                         "crop, colour and normalisation applied on load",
        },
        "warnings": warnings,
    }
    for name, held in (("calibration", False), ("heldout", True)):
        arrays[f"{name}_source"] = np.asarray([s for s, _ in where[held]], np.int32)
        arrays[f"{name}_position"] = np.asarray([p for _, p in where[held]], np.int64)
    return SetResult(write_set(req.out, manifest, arrays, replace=req.replace), manifest, warnings)


def _stack(frames: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    if not frames:
        return np.empty((0, spec.height, spec.width, 3), np.uint8)
    return np.stack(frames)

