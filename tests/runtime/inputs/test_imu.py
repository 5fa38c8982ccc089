"""Role imu: the sample nearest the frame, in the model's channel order; stale means neutral."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from runtime.imu import ReplaySource
from runtime.inputs import ImuProvider, InputContext, InputError
from tests.runtime.imu.helpers import imu_log, write_imu_csv
from tests.runtime.inputs.conftest import MakeFrame

IMG = np.zeros((4, 4, 3), np.uint8)


@pytest.fixture
def replay(tmp_path: Path) -> ReplaySource:
    t, v = imu_log(n=50, rate_hz=100.0)  # 0.5 s of samples
    return ReplaySource("file://imu.csv", write_imu_csv(tmp_path / "imu.csv", t, v)).start()


def test_feeds_the_nearest_sample_in_the_models_order(replay: ReplaySource, make_frame: MakeFrame) -> None:
    p = ImuProvider("imu_in", (1, 6), replay, deadline_s=0.1)
    t0 = time.monotonic()
    x = p.fill(make_frame(IMG, t_capture=t0))  # the first frame anchors the replay on row 0
    assert x is not None and x.dtype == np.float32
    np.testing.assert_allclose(x[0], [0.0, 0.0, 9.81, 0, 0, 0], atol=1e-6)
    x = p.fill(make_frame(IMG, t_capture=t0 + 0.0712))  # nearest row: 7
    assert x is not None
    assert x[0, 0] == pytest.approx(0.07) and x[0, 5] == pytest.approx(np.sin(0.7), abs=1e-6)
    assert x is p.out and p.recorded() == pytest.approx([0.07, 0.0, 9.81, 0.0, 0.0, np.sin(0.7)], abs=1e-6)


def test_custom_order(replay: ReplaySource, make_frame: MakeFrame) -> None:
    p = ImuProvider("imu_in", (1, 3), replay, deadline_s=0.1, order=("gz", "az", "ax"))
    t0 = time.monotonic()
    p.fill(make_frame(IMG, t_capture=t0))
    x = p.fill(make_frame(IMG, t_capture=t0 + 0.03))
    assert x is not None
    np.testing.assert_allclose(x[0], [np.sin(0.3), 9.81, 0.03], atol=1e-6)


def test_stale_after_the_replay_ends(replay: ReplaySource, make_frame: MakeFrame) -> None:
    p = ImuProvider("imu_in", (1, 6), replay, deadline_s=0.1)
    t0 = time.monotonic()
    assert p.fill(make_frame(IMG, t_capture=t0)) is not None
    time.sleep(0.65)  # the log's last sample is at +0.49 s: 160 ms before now
    assert p.fill(make_frame(IMG, t_capture=time.monotonic())) is None
    assert p.event == "imu.stale" and "no IMU sample for" in p.detail and "file://imu.csv" in p.detail
    assert p.stale_frames == 1


def test_stale_when_the_nearest_sample_is_far_from_the_frame(tmp_path: Path, make_frame: MakeFrame) -> None:
    t, v = imu_log(n=2, rate_hz=1 / 0.3)  # two samples, 300 ms apart: a gap in the log
    src = ReplaySource("file://gap.csv", write_imu_csv(tmp_path / "gap.csv", t, v)).start()
    p = ImuProvider("imu_in", (1, 6), src, deadline_s=0.1)
    now = time.monotonic()
    src.anchor(now - 0.35)  # row 1 was measured 50 ms ago: the source is alive
    assert p.fill(make_frame(IMG, t_capture=now - 0.2)) is None  # but 150 ms from the nearest row
    assert p.event == "imu.stale" and "nearest IMU sample is 150 ms" in p.detail
    assert p.fill(make_frame(IMG, t_capture=now - 0.06)) is not None


def test_stale_when_the_newest_sample_is_old(tmp_path: Path, make_frame: MakeFrame) -> None:
    t, v = imu_log(n=2, rate_hz=2.0)
    src = ReplaySource("file://old.csv", write_imu_csv(tmp_path / "old.csv", t, v)).start()
    p = ImuProvider("imu_in", (1, 6), src, deadline_s=0.1)
    src.anchor(time.monotonic() - 0.2)  # row 0 is 200 ms old, row 1 not due for 300 ms
    assert p.fill(make_frame(IMG)) is None
    assert p.event == "imu.stale" and "no IMU sample for 2" in p.detail


def test_unknown_channel_and_wrong_shape_are_refused(replay: ReplaySource) -> None:
    with pytest.raises(InputError, match=r"unknown channel\(s\) mx"):
        ImuProvider("imu_in", (1, 2), replay, 0.1, order=("ax", "mx"))
    with pytest.raises(InputError, match=r"\[1, 5\].*6 channels"):
        ImuProvider("imu_in", (1, 5), replay, 0.1)


def test_a_model_with_an_imu_input_needs_a_source() -> None:
    class Spec:
        name, role, shape, layout, preprocess, length, order, labels = "imu_in", "imu", (1, 6), "NC", None, None, None, None

    with pytest.raises(InputError, match=r"IMU input 'imu_in'.*--imu URI.*\[imu\] uri"):
        ImuProvider.from_spec(Spec(), InputContext())
