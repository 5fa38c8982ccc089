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
    # The bundle's inputs (runtime.manifest.InputSpec): a sequence input makes the set keep each
    # frame's predecessors; the values recordings hold for non-image inputs are kept with each frame.
    inputs: list[Any] = field(default_factory=list)


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
    n_prev = max([int(i.length or 1) - 1 for i in req.inputs if i.role == "image_sequence"], default=0)
    vector_names = [i.name for i in req.inputs if not i.is_image]
    warnings: list[str] = []
    split: dict[bool, list[np.ndarray]] = {False: [], True: []}
    prev: dict[bool, list[np.ndarray]] = {False: [], True: []}
    values: dict[bool, dict[str, list[Any]]] = {h: {n: [] for n in vector_names} for h in (False, True)}
    where: dict[bool, list[tuple[int, int]]] = {False: [], True: []}
    per_source: list[dict[str, Any]] = []
    for i, src in enumerate(sources):
        mine = {p.position: p.heldout for p in picks if p.source == i}
        # a sequence sample is the picked frame and the frames before it in the same source
        wanted = {max(pos - j, 0) for pos in mine for j in range(n_prev + 1)}
        decoded: dict[int, np.ndarray] = {}
        size = None
        for pos, frame in src.frames(sorted(wanted)):
            size = size or [int(frame.shape[1]), int(frame.shape[0])]
            decoded[pos] = resize_like_runtime(frame, req.spec)
        counts = {False: 0, True: 0}
        for pos in sorted(mine):
            if pos not in decoded:
                continue
            held = mine[pos]
            split[held].append(decoded[pos])
            if n_prev:  # oldest first; a predecessor that did not decode repeats the next one
                chain, last = [], decoded[pos]
                for j in range(1, n_prev + 1):
                    last = decoded.get(max(pos - j, 0), last)
                    chain.append(last)
                prev[held].append(np.stack(chain[::-1]))
            recorded = src.recorded_inputs(pos)
            for name in vector_names:
                values[held][name].append(recorded.get(name))
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
    recorded_names = _recorded_inputs(values, arrays, warnings)
    if n_prev:
        for name, held in (("calibration", False), ("heldout", True)):
            arrays[f"{name}_prev"] = np.stack(prev[held]) if prev[held] else np.empty(
                (0, n_prev, req.spec.height, req.spec.width, 3), np.uint8)
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
        "inputs": {"recorded": recorded_names, "predecessors": n_prev},
        "warnings": warnings,
    }
    for name, held in (("calibration", False), ("heldout", True)):
        arrays[f"{name}_source"] = np.asarray([s for s, _ in where[held]], np.int32)
        arrays[f"{name}_position"] = np.asarray([p for _, p in where[held]], np.int64)
    return SetResult(write_set(req.out, manifest, arrays, replace=req.replace), manifest, warnings)


def _recorded_inputs(
    values: dict[bool, dict[str, list[Any]]], arrays: dict[str, np.ndarray], warnings: list[str],
) -> list[str]:
    """Store ``<split>_in/<name>`` for every non-image input recorded with every picked frame; the
    names stored. An input missing on some frames is left to the bundle's reference values."""
    stored = []
    for name in values[False]:
        rows = values[False][name] + values[True][name]
        if not rows or any(r is None for r in rows):
            if any(r is not None for r in rows):
                warnings.append(f"input {name!r} is recorded for only some picked frames; calibration uses the "
                                "bundle's reference values for it")
            continue
        for split, held in (("calibration", False), ("heldout", True)):
            arrays[f"{split}_in/{name}"] = np.asarray(values[held][name], np.float32).reshape(len(values[held][name]), -1)
        stored.append(name)
    return stored


def _stack(frames: list[np.ndarray], spec: PreprocessSpec) -> np.ndarray:
    if not frames:
        return np.empty((0, spec.height, spec.width, 3), np.uint8)
    return np.stack(frames)

