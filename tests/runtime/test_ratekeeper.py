"""Ratekeeper on a deterministic clock: it keeps the period, reports lag, never bursts."""

from __future__ import annotations

import pytest

from runtime.ratekeeper import Ratekeeper


class Clock:
    """A manual clock: sleeping advances it exactly."""

    def __init__(self) -> None:
        self.t = 100.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.t += s


def test_keeps_the_period_accounting_for_work_time() -> None:
    c = Clock()
    rk = Ratekeeper("loop", 100.0, clock=c, sleep=c.sleep)
    for _ in range(5):
        c.t += 0.004  # 4 ms of work per 10 ms tick
        assert not rk.keep_time()
    assert c.slept == pytest.approx([0.006] * 5)
    assert rk.frame == 5 and not rk.lagging


def test_reports_lag_and_resynchronises_instead_of_bursting() -> None:
    c = Clock()
    rk = Ratekeeper("loop", 100.0, clock=c, sleep=c.sleep)
    c.t += 0.5  # the machine stalled for half a second
    assert rk.keep_time()
    assert rk.lag_count == 1
    c.t += 0.001
    # The next tick is a full period later, not 49 immediate catch-up iterations.
    assert not rk.keep_time()
    assert c.slept[-1] == pytest.approx(0.009)


def test_named_periods_fire_once_per_period() -> None:
    c = Clock()
    rk = Ratekeeper("watchdog", 200.0, periods={"notify": 1.0, "poll": 0.02}, clock=c, sleep=c.sleep)
    fired = {"notify": 0, "poll": 0}
    for _ in range(400):  # 2 s
        for name in fired:
            fired[name] += rk.due(name)
        rk.keep_time()
    assert fired["notify"] == 2
    assert 99 <= fired["poll"] <= 101


def test_rejects_nonsense_rates() -> None:
    with pytest.raises(ValueError, match="positive"):
        Ratekeeper("x", 0)
