"""Stats: percentiles over a ring, the summary's keys."""

from __future__ import annotations

import numpy as np
import pytest

from runtime.stats import STAGES, LoopStats, Ring, format_summary


def test_ring_percentiles_over_the_newest_samples() -> None:
    r = Ring(100)
    for v in range(1000):
        r.add(float(v))
    s = r.summary()
    assert s["count"] == 1000
    assert s["p50"] == pytest.approx(np.percentile(np.arange(900, 1000), 50))
    assert s["max"] == 999.0


def test_summary_keys_and_units() -> None:
    st = LoopStats(capacity=16)
    st.t_start, st.t_end = 10.0, 12.0
    for _ in range(10):
        st.frames += 1
        st.add("inference", 0.002)
    s = st.summary({"camera": {"captured": 12, "dropped": 2}})
    assert s["fps"] == 5.0 and s["duration_s"] == 2.0
    assert set(s["stages_ms"]) == set(STAGES)
    assert s["stages_ms"]["inference"]["p99"] == pytest.approx(2.0)
    assert s["stages_ms"]["write"] == {"count": 0}
    text = format_summary(s)
    assert "dropped 2" in text and "inference" in text
