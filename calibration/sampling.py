"""Which frames go into a calibration set: seeded, stratified over time, with a held-out split.

Pure arithmetic on frame counts (no I/O), so the plan is deterministic and testable on its own.

- The budget is shared between sources in proportion to their length (largest remainder), so a
  long drive is not drowned by a short clip, nor the other way round.
- Each source's timeline (its frames in time order) is cut into as many equal strata as frames it
  gets, and one frame is drawn at random inside each stratum: the set is spread over the whole
  drive, so a long straight stretch gets its share of the frames and no more.
- Held-out frames are whole blocks of consecutive strata, spread evenly (every 5th block for 20%),
  never single frames: a held-out frame's neighbours in time are held out too, so near-duplicate
  frames one tick apart do not sit on both sides of the split (only the two block edges touch).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

DEFAULT_BLOCK = 10  # strata per held-out block (at most; short sources get shorter blocks)


@dataclass(frozen=True)
class Pick:
    source: int  # index into the list of sources
    position: int  # frame position in that source's time order
    heldout: bool


def allocate(lengths: list[int], total: int) -> list[int]:
    """``total`` frames shared in proportion to ``lengths`` (largest remainder), each <= its length."""
    available = sum(lengths)
    if total >= available:
        return list(lengths)
    quotas = [total * n / available for n in lengths]
    shares = [min(int(q), n) for q, n in zip(quotas, lengths, strict=True)]
    order = sorted(range(len(lengths)), key=lambda i: (-(quotas[i] - int(quotas[i])), i))
    left = total - sum(shares)
    while left > 0:
        for i in order:
            if left and shares[i] < lengths[i]:
                shares[i] += 1
                left -= 1
    return shares


def stratified_positions(length: int, count: int, rng: np.random.Generator) -> list[int]:
    """``count`` sorted positions in ``range(length)``, one drawn uniformly inside each of ``count``
    equal strata (all positions when ``count >= length``)."""
    if count >= length:
        return list(range(length))
    edges = np.linspace(0, length, count + 1)
    out = []
    for lo, hi in itertools.pairwise(edges):
        a, b = math.ceil(lo), max(math.ceil(lo) + 1, math.ceil(hi))
        out.append(int(rng.integers(a, min(b, length))))
    return out


def heldout_blocks(n_strata: int, fraction: float, block: int, rng: np.random.Generator) -> list[bool]:
    """Per stratum, whether it is held out: blocks of consecutive strata, ``fraction`` of the blocks
    spread evenly along the timeline (error diffusion), with a seeded phase."""
    if fraction <= 0 or n_strata == 0:
        return [False] * n_strata
    period = 1.0 / fraction
    # Short sources get shorter blocks, so that they still have several held-out blocks.
    size = max(1, min(block, n_strata // max(1, round(4 * period))))
    n_blocks = math.ceil(n_strata / size)
    phase = float(rng.uniform(0.0, 1.0))
    chosen = [math.floor((b + 1) * fraction + phase) > math.floor(b * fraction + phase) for b in range(n_blocks)]
    return [chosen[i // size] for i in range(n_strata)]


def plan(lengths: list[int], total: int, heldout_fraction: float, seed: int,
         block: int = DEFAULT_BLOCK) -> list[Pick]:
    """The frames to take from sources of the given lengths (in time order), and which are held out."""
    if not 0.0 <= heldout_fraction < 1.0:
        raise ValueError(f"held-out fraction must be in [0, 1), got {heldout_fraction}")
    if total < 1:
        raise ValueError(f"the set needs at least 1 frame, got {total}")
    picks: list[Pick] = []
    for src, count in enumerate(allocate(lengths, total)):
        # One generator per source, from the seed and the source's place: its picks depend on
        # nothing else but its share.
        rng = np.random.default_rng([seed, src])
        positions = stratified_positions(lengths[src], count, rng)
        held = heldout_blocks(len(positions), heldout_fraction, block, rng)
        picks += [Pick(src, p, h) for p, h in zip(positions, held, strict=True)]
    return picks
