"""The sampling plan: proportional shares, one pick per stratum of each timeline, held-out blocks."""

from __future__ import annotations

import numpy as np
import pytest

from calibration.sampling import allocate, heldout_blocks, plan, stratified_positions


def test_shares_follow_source_lengths_and_sum_to_the_budget() -> None:
    assert allocate([1000, 3000], 400) == [100, 300]
    assert sum(allocate([7, 11, 13], 20)) == 20
    assert allocate([5, 10], 100) == [5, 10]  # fewer frames than asked: all of them


def test_one_pick_in_each_stratum_spreads_over_the_whole_timeline() -> None:
    rng = np.random.default_rng(0)
    pos = stratified_positions(3000, 100, rng)
    assert len(pos) == 100 and pos == sorted(pos) and len(set(pos)) == 100
    assert [p // 30 for p in pos] == list(range(100))  # exactly one per 30-frame stratum
    assert stratified_positions(5, 10, rng) == [0, 1, 2, 3, 4]


def test_heldout_is_whole_blocks_at_the_asked_share() -> None:
    held = heldout_blocks(400, 0.2, 10, np.random.default_rng(1))
    assert sum(held) == 80
    runs = np.diff(np.flatnonzero(np.diff(np.r_[0, np.asarray(held, int), 0])))[::2]
    assert set(runs.tolist()) == {10}  # blocks of 10 consecutive picks, never single frames
    short = heldout_blocks(30, 0.2, 10, np.random.default_rng(1))
    assert 4 <= sum(short) <= 8  # a short source still gets its share, in smaller blocks


def test_plan_is_deterministic_per_seed() -> None:
    a = plan([500, 200], 300, 0.2, seed=3)
    assert a == plan([500, 200], 300, 0.2, seed=3)
    assert a != plan([500, 200], 300, 0.2, seed=4)
    assert sum(p.heldout for p in a) == pytest.approx(60, abs=10)
    assert {p.source for p in a} == {0, 1}


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_plan_refuses_a_bad_heldout_share(fraction: float) -> None:
    with pytest.raises(ValueError, match="held-out fraction"):
        plan([100], 50, fraction, seed=0)
