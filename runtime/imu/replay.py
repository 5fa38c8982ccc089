"""``file://imu.csv``: replay a recorded IMU log, aligned with the frames.

The CSV has a header naming at least ``t,ax,ay,az,gx,gy,gz`` (extra columns are ignored): ``t`` in
seconds, strictly increasing, accel in m/s^2, gyro in rad/s.

Time mapping (the replay clock): the CSV's first row is aligned with the first frame the loop asks
about. If that frame was captured at monotonic time ``T0``, row ``t`` is taken to have been measured
at ``T0 + (t - t_first)``. So the replay runs in real time from the first frame on, which matches a
camera that runs in real time too (a live camera, or a video with ``realtime=1``). With a camera
that runs faster than real time (``realtime=0``) the IMU replay falls behind the frames; use
``realtime=1`` for IMU replays. After the last row the replay gives no newer sample, so the IMU goes
stale (neutral) one watchdog deadline after the CSV's end.
"""

from __future__ import annotations

import csv
import math
import threading
from pathlib import Path
from typing import Any

import numpy as np

from runtime.imu.base import CHANNELS, ImuError, ImuSample, ImuSource

COLUMNS = ("t", *CHANNELS)


def read_imu_csv(path: str | Path, uri: str = "") -> tuple[np.ndarray, np.ndarray]:
    """``(t (N,) float64 seconds, values (N, 6) float32 in CHANNELS order)`` from an IMU CSV.

    Raises :class:`ImuError` naming the file (and line) and the fix: missing file, missing
    columns, a value that is not a finite number, ``t`` not strictly increasing, no rows."""
    path = Path(path)
    where = uri or str(path)
    if not path.is_file():
        raise ImuError(f"IMU source {where}: {path} not found; record one with header "
                       f"{','.join(COLUMNS)} or fix --imu / [imu] uri")
    times: list[float] = []
    rows: list[list[float]] = []
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.reader(f)
            header = [h.strip() for h in next(reader, [])]
            missing = [c for c in COLUMNS if c not in header]
            if missing:
                raise ImuError(f"IMU source {where}: header {','.join(header) or '(empty)'} lacks "
                               f"{','.join(missing)}; the first line must name {','.join(COLUMNS)}")
            cols = [header.index(c) for c in COLUMNS]
            for lineno, row in enumerate(reader, start=2):
                if not row or all(not c.strip() for c in row):
                    continue
                try:
                    vals = [float(row[i]) for i in cols]
                except (ValueError, IndexError):
                    raise ImuError(f"IMU source {where}: line {lineno} is not {len(COLUMNS)} numbers "
                                   f"({','.join(row)}); fix or drop that line") from None
                if not all(math.isfinite(v) for v in vals):
                    raise ImuError(f"IMU source {where}: line {lineno} has a non-finite value; fix or drop it")
                if times and vals[0] <= times[-1]:
                    raise ImuError(f"IMU source {where}: line {lineno}: t={vals[0]} is not after the previous "
                                   f"t={times[-1]}; sort the rows by t and drop duplicates")
                times.append(vals[0])
                rows.append(vals[1:])
    except UnicodeDecodeError:
        raise ImuError(f"IMU source {where}: {path} is not a text CSV; give a CSV with header "
                       f"{','.join(COLUMNS)}") from None
    except OSError as e:
        raise ImuError(f"IMU source {where}: cannot read {path}: {e.strerror}; check the path and permissions") from None
    if not times:
        raise ImuError(f"IMU source {where}: {path} has no samples below its header; record some first")
    return np.asarray(times, np.float64), np.asarray(rows, np.float32).reshape(-1, len(CHANNELS))


class ReplaySource(ImuSource):
    """Replays :func:`read_imu_csv`'s samples on the replay clock described in the module doc."""

    def __init__(self, uri: str, path: str | Path) -> None:
        super().__init__(uri)
        self.path = Path(path)
        self._t = np.empty(0, np.float64)
        self._v = np.empty((0, len(CHANNELS)), np.float32)
        self._offset: float | None = None  # monotonic time minus CSV time, fixed at the first frame
        self._lock = threading.Lock()
        self.lookups = 0

    def start(self) -> ReplaySource:
        if not len(self._t):
            self._t, self._v = read_imu_csv(self.path, self.uri)
        return self

    def anchor(self, t0: float) -> None:
        """Align the first row with monotonic time ``t0`` (done by the first :meth:`nearest`)."""
        with self._lock:
            if self._offset is None:
                self._offset = t0 - float(self._t[0])

    def nearest(self, t: float) -> ImuSample | None:
        self.anchor(t)
        assert self._offset is not None
        self.lookups += 1
        x = t - self._offset
        i = int(np.searchsorted(self._t, x))
        if i == len(self._t) or (i > 0 and x - self._t[i - 1] <= self._t[i] - x):
            i -= 1
        return ImuSample(float(self._t[i]) + self._offset, self._v[i])

    def newest(self, now: float) -> ImuSample | None:
        if self._offset is None:
            return None
        i = int(np.searchsorted(self._t, now - self._offset, side="right")) - 1
        return ImuSample(float(self._t[i]) + self._offset, self._v[i]) if i >= 0 else None

    def stats(self) -> dict[str, Any]:
        span = float(self._t[-1] - self._t[0]) if len(self._t) else 0.0
        return {"uri": self.uri, "samples": len(self._t), "span_s": round(span, 3), "lookups": self.lookups}
