"""openpilot-style rate keeping: run a loop at a fixed rate, notice when it lags, never burst.

``Ratekeeper("watchdog", 100)`` sleeps to the next 10 ms tick in :meth:`keep_time` and reports
whether the tick was already late. Unlike a naive ``sleep(period)``, time spent in the loop body is
accounted for; unlike a pure deadline schedule, a loop that fell far behind (the machine was busy)
resynchronises instead of running many catch-up iterations back to back.

Named periods let one loop run slower side tasks off the same clock::

    rk = Ratekeeper("watchdog", 100, periods={"notify": 1.0, "status": 0.05})
    while running:
        ...
        if rk.due("notify"):
            notify("WATCHDOG=1")
        rk.keep_time()
"""

from __future__ import annotations

import collections
import logging
import time
from collections.abc import Callable

log = logging.getLogger(__name__)


class Ratekeeper:
    def __init__(
        self,
        name: str,
        rate_hz: float,
        lag_threshold_s: float | None = None,
        periods: dict[str, float] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        if rate_hz <= 0:
            raise ValueError(f"{name}: rate must be positive, got {rate_hz}")
        self.name = name
        self.interval = 1.0 / rate_hz
        # Late by more than this counts as lagging (openpilot's print_delay_threshold).
        self.lag_threshold = self.interval if lag_threshold_s is None else lag_threshold_s
        self._clock, self._sleep = clock, sleep
        now = clock()
        self._next = now + self.interval
        self._last = now
        self.frame = 0
        self.remaining = 0.0
        self.lag_count = 0
        self._dts: collections.deque[float] = collections.deque([self.interval], maxlen=100)
        self._periods: dict[str, list[float]] = {}  # name -> [period, next due]
        for pname, period in (periods or {}).items():
            self.add_period(pname, period)

    def add_period(self, name: str, period_s: float, first_due_now: bool = True) -> None:
        if period_s <= 0:
            raise ValueError(f"{self.name}: period {name!r} must be positive, got {period_s}")
        now = self._clock()
        self._periods[name] = [period_s, now if first_due_now else now + period_s]

    def due(self, name: str) -> bool:
        """True once per elapsed named period (no catch-up bursts after a stall)."""
        entry = self._periods[name]
        now = self._clock()
        if now < entry[1]:
            return False
        entry[1] += entry[0]
        if entry[1] <= now:  # fell behind by more than one period: resynchronise
            entry[1] = now + entry[0]
        return True

    def monitor_time(self) -> bool:
        """Account for one iteration; True if it is late by more than the lag threshold."""
        now = self._clock()
        self._dts.append(now - self._last)
        self._last = now
        remaining = self._next - now
        self._next += self.interval
        lagged = remaining < -self.lag_threshold
        if lagged:
            self.lag_count += 1
            # Far behind: start a fresh schedule rather than bursting to catch up.
            self._next = now + self.interval
        self.frame += 1
        self.remaining = remaining
        return lagged

    def keep_time(self) -> bool:
        """Sleep until the next tick. Returns True if this iteration lagged."""
        lagged = self.monitor_time()
        if self.remaining > 0:
            self._sleep(self.remaining)
        return lagged

    @property
    def mean_dt(self) -> float:
        return sum(self._dts) / len(self._dts)

    @property
    def lagging(self) -> bool:
        """The recent average period is more than 10 % above the target."""
        return self.mean_dt > self.interval * 1.1
