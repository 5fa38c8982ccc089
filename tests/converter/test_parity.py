from __future__ import annotations

import numpy as np

from converter.parity import compare


def test_within_and_over_tolerance() -> None:
    want = {"steering": np.array([[0.1], [0.2]]), "throttle": np.array([[0.5], [0.6]])}
    ok = compare({k: v + 1e-5 for k, v in want.items()}, want, 1e-4)
    assert ok.ok and ok.max_abs < 2e-5 and ok.samples == 2
    bad = compare({"steering": want["steering"] + 0.3, "throttle": want["throttle"]}, want, 1e-2)
    assert not bad.ok and "'steering'" in bad.failure() and bad.swapped is None


def test_swapped_outputs_are_named() -> None:
    want = {"steering": np.array([[-0.4], [0.2]]), "throttle": np.array([[0.5], [0.6]])}
    got = {"steering": want["throttle"], "throttle": want["steering"]}
    result = compare(got, want, 1e-3)
    assert not result.ok
    assert result.swapped == {"steering": "throttle", "throttle": "steering"}
    assert "swapped" in result.failure()


def test_nan_never_passes_on_any_output() -> None:
    want = {"steering": np.array([[0.1]]), "throttle": np.array([[0.5]])}
    assert not compare({"steering": np.array([[np.nan]]), "throttle": want["throttle"]}, want, 1.0).ok
    result = compare({"steering": want["steering"], "throttle": np.array([[np.nan]])}, want, 1.0)
    assert not result.ok and "'throttle' is not finite" in result.failure()
