"""Policy: limits, trim/scale, slew rate, and NaN/inf -> neutral."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runtime.manifest import BundleError
from runtime.policy import Policy, PolicyConfig


def out(s: float, t: float) -> dict[str, np.ndarray]:
    return {"steer": np.array([[s]], np.float32), "thr": np.array([[t]], np.float32)}


def test_steering_scale_trim_and_clip() -> None:
    p = Policy(PolicyConfig(steering_scale=2.0, steering_trim=0.1, max_steering=0.8, throttle_slew_rate=0), "steer", "thr")
    assert p(out(0.2, 0.0), 0.0).steering == pytest.approx(0.5)
    assert p(out(0.9, 0.0), 0.0).steering == pytest.approx(0.8)
    assert p(out(-0.9, 0.0), 0.0).steering == pytest.approx(-0.8)


def test_throttle_limits() -> None:
    p = Policy(PolicyConfig(max_throttle=0.4, max_reverse=0.2, throttle_slew_rate=0), "steer", "thr")
    assert p(out(0, 0.9), 0.0).throttle == pytest.approx(0.4)
    assert p(out(0, -0.9), 0.1).throttle == pytest.approx(-0.2)
    assert p(out(0, 0.3), 0.2).throttle == pytest.approx(0.3)


def test_slew_limits_acceleration_but_never_braking() -> None:
    p = Policy(PolicyConfig(max_throttle=1.0, throttle_slew_rate=2.0), "steer", "thr")
    assert p(out(0, 1.0), 10.0).throttle == 0.0  # first command after start: from zero
    assert p(out(0, 1.0), 10.1).throttle == pytest.approx(0.2)
    assert p(out(0, 1.0), 10.2).throttle == pytest.approx(0.4)
    assert p(out(0, 0.05), 10.21).throttle == pytest.approx(0.05)  # braking: immediate
    p.reset()
    assert p(out(0, 1.0), 11.0).throttle == 0.0


def test_reversing_stops_at_zero_first() -> None:
    p = Policy(PolicyConfig(max_throttle=1.0, max_reverse=1.0, throttle_slew_rate=10.0), "steer", "thr")
    p(out(0, 1.0), 0.0)
    assert p(out(0, 1.0), 0.05).throttle == pytest.approx(0.5)
    assert p(out(0, -1.0), 0.06).throttle == 0.0
    assert p(out(0, -1.0), 0.08).throttle == pytest.approx(-0.2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_outputs_give_an_invalid_command(bad: float) -> None:
    p = Policy(PolicyConfig(throttle_slew_rate=0), "steer", "thr")
    for o in (out(bad, 0.2), out(0.1, bad)):
        c = p(o, 0.0)
        assert not c.valid and c.steering == 0.0 and c.throttle == 0.0


def test_constant_throttle_for_steering_only_models() -> None:
    with pytest.raises(BundleError, match="constant_throttle"):
        Policy(PolicyConfig(), "steer", None)
    p = Policy(PolicyConfig(constant_throttle=0.3, throttle_slew_rate=0), "steer", None)
    c = p({"steer": np.array([0.1], np.float32)}, 0.0)
    assert c.valid and c.throttle == pytest.approx(0.3)


@pytest.mark.parametrize("kw", [{"max_throttle": 1.5}, {"steering_trim": 2.0}, {"throttle_slew_rate": -1}])
def test_config_ranges(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="policy"):
        PolicyConfig(**kw)


@given(
    s=st.floats(allow_nan=True, allow_infinity=True, width=32),
    t=st.floats(allow_nan=True, allow_infinity=True, width=32),
    dt=st.floats(0, 1),
)
def test_commands_always_within_limits(s: float, t: float, dt: float) -> None:
    cfg = PolicyConfig(max_throttle=0.6, max_reverse=0.1, max_steering=0.9, steering_scale=1.5, steering_trim=-0.05)
    p = Policy(cfg, "steer", "thr")
    p(out(0.0, 0.5), 0.0)
    c = p(out(s, t), dt)
    assert math.isfinite(c.steering) and math.isfinite(c.throttle)
    assert -0.9 <= c.steering <= 0.9 and -0.1 <= c.throttle <= 0.6
    assert c.valid == (math.isfinite(s) and math.isfinite(t))


@pytest.mark.parametrize("deadline", [0.02, 0.1, 0.25, 0.5])
def test_a_gap_longer_than_the_watchdog_deadline_ramps_only_one_deadline(deadline: float) -> None:
    """The slew step ramps over at most the configured deadline (the watchdog had the car in
    neutral after that), whatever the deadline is; a shorter gap ramps over the whole gap."""
    rate = 1.0  # per second: small enough that no step below reaches max_throttle
    p = Policy(PolicyConfig(max_throttle=1.0, throttle_slew_rate=rate), "steer", "thr", max_gap_s=deadline)
    assert p(out(0, 1.0), 0.0).throttle == 0.0
    assert p(out(0, 1.0), 0.6 * deadline).throttle == pytest.approx(rate * 0.6 * deadline)  # within: all of it
    t = 0.6 * deadline + 3.0 * deadline  # a gap of three deadlines
    assert p(out(0, 1.0), t).throttle == pytest.approx(rate * 1.6 * deadline)  # only one deadline's worth
    # The same going backwards.
    r = Policy(PolicyConfig(max_reverse=1.0, throttle_slew_rate=rate), "steer", "thr", max_gap_s=deadline)
    r(out(0, -1.0), 0.0)
    assert r(out(0, -1.0), 2.0 * deadline).throttle == pytest.approx(-rate * deadline)


def test_the_gap_cap_defaults_to_the_default_deadline_and_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_gap_s"):
        Policy(PolicyConfig(), "steer", "thr", max_gap_s=0.0)
    p = Policy(PolicyConfig(), "steer", "thr")
    assert p.max_gap_s == 0.1  # the default watchdog deadline, [watchdog] deadline_ms = 100


def test_commands_carry_the_raw_decoded_values() -> None:
    p = Policy(PolicyConfig(max_throttle=0.4, throttle_slew_rate=0), "steer", "thr")
    cmd = p(out(0.7, 0.9), 0.0)
    assert (cmd.raw_steering, cmd.raw_throttle) == pytest.approx((0.7, 0.9)) and cmd.throttle == pytest.approx(0.4)
    bad = p(out(math.nan, 0.25), 0.1)
    assert not bad.valid and math.isnan(bad.raw_steering) and bad.raw_throttle == 0.25
    assert p(out(0.5, math.inf), 0.2).raw_steering == 0.5
    zero = Policy(PolicyConfig(constant_throttle=0.0, throttle_slew_rate=0), "steer", None)
    assert zero(out(0.1, 0.9), 0.0).raw_throttle == 0.0


def test_constant_throttle_overrides_a_models_throttle_output() -> None:
    p = Policy(PolicyConfig(max_throttle=1.0, constant_throttle=0.3, throttle_slew_rate=0), "steer", "thr")
    cmd = p(out(0.0, 0.9), 0.0)
    assert cmd.throttle == pytest.approx(0.3) and cmd.raw_throttle == pytest.approx(0.9)


@pytest.mark.parametrize(("rate", "first", "then"), [(0.5, 1.0, -0.5), (10.0, -0.5, 1.0), (10.0, 1.0, -1.0)])
def test_any_reversal_stops_at_zero_first(rate: float, first: float, then: float) -> None:
    p = Policy(PolicyConfig(max_throttle=1.0, max_reverse=1.0, throttle_slew_rate=rate), "steer", "thr")
    p(out(0, first), 0.0)
    t = 0.0
    while p(out(0, first), t).throttle != first:  # ramp up to `first`
        t += 0.1
        assert t < 100
    assert p(out(0, then), t + 0.01).throttle == 0.0


@pytest.mark.parametrize(("name", "lo", "hi"), [
    ("max_throttle", 0.0, 1.0), ("max_reverse", 0.0, 1.0), ("max_steering", 0.0, 1.0),
    ("steering_trim", -1.0, 1.0), ("steering_scale", -4.0, 4.0), ("constant_throttle", -1.0, 1.0),
])
def test_each_config_limit_is_inclusive_and_a_step_beyond_is_refused(name: str, lo: float, hi: float) -> None:
    for ok in (lo, hi):
        assert getattr(PolicyConfig(**{name: ok}), name) == ok
    for bad in (lo - 0.01, hi + 0.01):
        with pytest.raises(ValueError, match=rf"^policy\.{name} = {bad} must be in \[{lo:g}, {hi:g}\]$"):
            PolicyConfig(**{name: bad})


def test_slew_rate_zero_is_allowed_and_a_negative_rate_is_named() -> None:
    assert PolicyConfig(throttle_slew_rate=0.0).throttle_slew_rate == 0.0
    with pytest.raises(ValueError, match=r"^policy\.throttle_slew_rate = -0\.01 must be >= 0$"):
        PolicyConfig(throttle_slew_rate=-0.01)


def test_no_throttle_output_and_no_constant_throttle_names_the_fix() -> None:
    with pytest.raises(BundleError, match=r"^the model has no output with meaning 'throttle'; "
                                          r"set policy\.constant_throttle in the config$"):
        Policy(PolicyConfig(), "steer", None)


def test_constant_throttle_without_a_throttle_output_is_the_raw_throttle() -> None:
    p = Policy(PolicyConfig(constant_throttle=0.3, throttle_slew_rate=0), "steer", None)
    cmd = p({"steer": np.array([[0.1]], np.float32)}, 0.0)
    assert cmd.raw_throttle == pytest.approx(0.3) and cmd.throttle == pytest.approx(0.3)


@pytest.mark.parametrize("raw", [-0.0, -0.3])
def test_a_throttle_clipped_to_zero_is_plus_zero(raw: float) -> None:
    """With max_reverse 0 a negative throttle clips to -0.0; logs and recordings get 0.0."""
    p = Policy(PolicyConfig(max_reverse=0.0, throttle_slew_rate=0), "steer", "thr")
    assert math.copysign(1.0, p(out(0.0, raw), 0.0).throttle) == 1.0
