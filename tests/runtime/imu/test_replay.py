"""file:// replay: the CSV is read strictly, and its rows land on the frames' clock."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from runtime.imu import ImuError, open_imu, read_imu_csv
from tests.runtime.imu.helpers import imu_log, write_imu_csv


def test_reads_the_columns_in_channel_order(tmp_path: Path) -> None:
    t, v = imu_log(n=5)
    path = tmp_path / "imu.csv"
    path.write_text("gz,t,ax,ay,az,gx,gy,temp\n" + "".join(
        f"{r[5]},{ti},{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},25\n" for ti, r in zip(t, v, strict=True)))
    tt, vv = read_imu_csv(path)
    np.testing.assert_allclose(tt, t)
    np.testing.assert_allclose(vv, v, atol=1e-6)
    assert vv.dtype == np.float32 and vv.shape == (5, 6)


def test_replay_clock_starts_at_the_first_frame(tmp_path: Path) -> None:
    t, v = imu_log(n=100, rate_hz=100.0, t0=1000.0)
    src = open_imu(f"file://{write_imu_csv(tmp_path / 'imu.csv', t, v, extra_column=True)}")
    assert src.newest(50.0) is None  # not anchored yet
    s = src.nearest(50.0)  # the first frame, captured at monotonic 50.0 s: row 0
    assert s is not None and s.t == 50.0 and s.values[0] == 0.0
    s = src.nearest(50.2349)  # 234.9 ms later: row 23
    assert s is not None and s.values[0] == pytest.approx(0.23) and s.t == pytest.approx(50.23)
    assert src.nearest(40.0).values[0] == 0.0  # type: ignore[union-attr]  # before the log: its first row
    assert src.nearest(60.0).values[0] == pytest.approx(0.99)  # type: ignore[union-attr]  # after: its last
    n = src.newest(50.1055)
    assert n is not None and n.values[0] == pytest.approx(0.10)  # the latest row at or before that time
    assert src.stats()["samples"] == 100


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("time,ax,ay,az,gx,gy,gz\n0,0,0,0,0,0,0\n", "lacks t; the first line must name t,ax,ay,az,gx,gy,gz"),
        ("t,ax,ay,az,gx,gy,gz\n", "no samples"),
        ("t,ax,ay,az,gx,gy,gz\n0,0,0,0,0,0,0\n0.01,0,0,x,0,0,0\n", "line 3 is not 7 numbers"),
        ("t,ax,ay,az,gx,gy,gz\n0,0,0,0,0,0,0\n0,1,0,0,0,0,0\n", r"line 3: t=0.0 is not after.*sort the rows"),
        ("t,ax,ay,az,gx,gy,gz\n0,0,0,nan,0,0,0\n", "line 2 has a non-finite value"),
        ("", r"header \(empty\)"),
    ],
)
def test_bad_csvs(tmp_path: Path, text: str, match: str) -> None:
    path = tmp_path / "imu.csv"
    path.write_text(text)
    with pytest.raises(ImuError, match=match) as e:
        open_imu(f"file://{path}")
    assert "\n" not in str(e.value) and str(path) in str(e.value)


def test_a_missing_file_names_the_uri_and_the_fix(tmp_path: Path) -> None:
    uri = f"file://{tmp_path}/nope.csv"
    with pytest.raises(ImuError, match=r"IMU source file://.*nope.csv not found; record one .*--imu / \[imu\] uri"):
        open_imu(uri)
