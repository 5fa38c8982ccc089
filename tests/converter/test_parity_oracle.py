"""``converter.parity.compare`` on cases worked out by hand: one bad element in one late frame,
errors exactly at the tolerance, per-output figures. The converter's pass/fail rests on these
numbers, so each is checked against a value written here, not recomputed the same way."""

from __future__ import annotations

import numpy as np
import pytest

from converter.parity import compare

N, K = 8, 15  # 8 frames of a 15-bin output


def reference() -> dict[str, np.ndarray]:
    # Values exactly representable in binary (multiples of 1/64), so errors below are exact.
    steps = np.arange(N * K, dtype=np.float64).reshape(N, K) % 7 / 64.0
    return {"angle": steps.astype(np.float32), "throttle": (np.arange(N, dtype=np.float32) / 64.0).reshape(N, 1)}


@pytest.mark.parametrize(("frame", "element"), [(N - 1, K - 1), (3, 7), (0, 0)])
def test_one_outlier_element_decides_max_abs(frame: int, element: int) -> None:
    want = reference()
    got = {k: v.copy() for k, v in want.items()}
    got["angle"][frame, element] += 0.5
    r = compare(got, want, tolerance=0.25)
    assert r.per_output["angle"]["max_abs"] == 0.5  # the worst element, whichever frame holds it
    assert r.per_output["angle"]["mean_abs"] == pytest.approx(0.5 / (N * K))
    assert r.per_output["throttle"] == {"max_abs": 0.0, "mean_abs": 0.0}
    assert r.max_abs == 0.5 and r.samples == N
    assert not r.ok and "'angle'" in r.failure()


def test_an_outlier_in_the_last_frame_of_a_scalar_output_fails() -> None:
    want = reference()
    got = {k: v.copy() for k, v in want.items()}
    got["throttle"][N - 1, 0] -= 0.125
    r = compare(got, want, tolerance=0.0625)
    assert r.per_output["throttle"]["max_abs"] == 0.125 and r.max_abs == 0.125 and not r.ok


@pytest.mark.parametrize(("error", "ok"), [(0.25, True), (0.25 + 2**-20, False), (0.25 - 2**-20, True)])
def test_exactly_at_the_tolerance_passes_and_just_over_fails(error: float, ok: bool) -> None:
    want = reference()
    got = {"angle": want["angle"].astype(np.float64), "throttle": want["throttle"]}
    got["angle"][N // 2, 2] += error
    r = compare(got, want, tolerance=0.25)
    assert r.max_abs == pytest.approx(error, abs=0)
    assert r.ok is ok


def test_each_output_keeps_its_own_worst_error() -> None:
    want = reference()
    got = {"angle": want["angle"] - 0.0625, "throttle": want["throttle"] + 0.125}
    r = compare(got, want, tolerance=1.0)
    assert r.per_output["angle"] == {"max_abs": 0.0625, "mean_abs": 0.0625}
    assert r.per_output["throttle"] == {"max_abs": 0.125, "mean_abs": 0.125}
    assert r.max_abs == 0.125 and r.mean_abs == pytest.approx((0.0625 + 0.125) / 2) and r.ok
