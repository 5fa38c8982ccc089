"""Disagreement figures over pairs on the same frame, and episodes of large disagreement."""

from __future__ import annotations

import math

import pytest

from runtime.shadow.clips import GAP_S, MAX_EPISODES, Episodes
from runtime.shadow.compare import Disagreement
from runtime.shadow.config import ShadowConfig


def test_percentiles_sign_flips_and_rates_per_minute_of_driving() -> None:
    d = Disagreement(ShadowConfig(large_steering=0.3, sign_deadband=0.05))
    pairs = [((0.10, 0.5), (0.12, 0.5)),   # small
             ((0.20, 0.5), (-0.20, 0.5)),  # sign flip, large (0.4)
             ((0.02, 0.5), (-0.03, 0.5)),  # opposite signs inside the deadband: not a flip
             ((0.00, 0.5), (0.50, 0.1))]   # large steering and throttle
    for i, (drive, shadow) in enumerate(pairs):
        d.add(i + 1, i, 10.0 + i * 0.1, drive, shadow)
    s = d.summary(driving_s=30.0)
    assert s["pairs"] == 4 and s["sign_flips"] == 1 and s["large"] == 2
    assert s["sign_flips_per_min"] == 2.0 and s["large_per_min"] == 4.0
    assert s["steering_abs_diff"]["max"] == pytest.approx(0.5) and s["steering_abs_diff"]["count"] == 4
    assert s["throttle_abs_diff"]["max"] == pytest.approx(0.4)
    assert s["episodes"] == 1 and s["episode_list"][0]["frames"] == [2, 4]  # 0.2 s apart: one episode
    assert s["episode_list"][0]["t_s"] == [0.1, 0.3]


def test_throttle_is_compared_only_when_both_give_one_and_nan_is_counted_not_compared() -> None:
    d = Disagreement(ShadowConfig())
    d.add(1, 0, 0.0, (0.1, None), (0.1, 0.9))
    d.add(2, 1, 0.1, (0.1, 0.2), (math.nan, 0.2))
    s = d.summary(driving_s=0.0)
    assert s["pairs"] == 1 and s["non_finite_pairs"] == 1
    assert s["throttle_abs_diff"] == {"count": 0} and s["large"] == 0
    assert s["large_per_min"] is None  # no driving time: no rate


def test_episodes_split_on_a_quiet_gap_and_stay_bounded() -> None:
    e = Episodes()
    t = 0.0
    for i in range(MAX_EPISODES + 5):
        e.add(2 * i, 2 * i, t, 0.5, 0.0)
        e.add(2 * i + 1, 2 * i + 1, t + GAP_S / 2, 0.7, 0.0)  # continues the episode
        t += 2 * GAP_S  # then a quiet stretch: the next one is a new episode
    assert e.count == MAX_EPISODES + 5 and len(e.kept) == MAX_EPISODES
    assert e.kept[0].frames == 2 and e.kept[0].max_steering_diff == 0.7 and e.kept[1].first_frame == 2
