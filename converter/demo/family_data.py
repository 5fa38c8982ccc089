"""Drive clips for the donkeycar-kind family: frames plus every extra input a pilot kind reads.

numpy + OpenCV only (like :mod:`converter.demo.track`): tests and benchmarks build runtime inputs
(IMU CSVs, memory, behaviour) from it without TensorFlow.

A clip is a continuous drive (:func:`converter.demo.track.drive_states`) with one random look.
Each frame carries, besides the camera frame and its steering/throttle targets:

- ``imu`` (6,) float32 ``ax, ay, az, gx, gy, gz`` in m/s^2 and rad/s, car frame x forward, y left,
  z up (so a right turn has ``gz < 0`` and ``ay < 0``), derived from the simulated motion: the yaw
  rate is ``-v * k_car`` with the car's own path curvature ``k_car`` (from its lagged, noisy
  steering, not the road's), lateral acceleration ``v * gz``, forward acceleration ``dv/dt``, and
  gravity on z; MPU6050-like white noise and a per-clip gyro bias on top;
- ``lane`` 0 or 1, a behaviour (donkeycar's default ``BEHAVIOR_LIST``: ``Left_Lane``,
  ``Right_Lane``) and ``lane_steering`` / ``lane_throttle``: the targets for following the centre
  of that half of the road (:data:`LANE_SHIFT` left or right of the road centre). The frame is the
  same whichever lane is chosen, so only the behaviour input tells a pilot which target applies.

:func:`sequence_index` and :func:`memory_values` build sequence and memory inputs the way the
car's runtime does (oldest first; clamped at the start of a clip; neutral = zeros).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from converter.demo import track

FPS = 30.0
GRAVITY = 9.81  # m/s^2
ACCEL_NOISE = 0.08  # m/s^2, per-sample white noise (MPU6050 at a low DLPF setting)
GYRO_NOISE = 0.01  # rad/s
GYRO_BIAS = 0.01  # rad/s, standard deviation of the per-clip bias
BEHAVIORS = ("Left_Lane", "Right_Lane")  # donkeycar's cfg BEHAVIOR_LIST default
LANE_SHIFT = track.LANE_HALF_WIDTH / 2  # m: the centre of each half of the road
IMU_ORDER = ("ax", "ay", "az", "gx", "gy", "gz")


@dataclass
class Clips:
    """Frames of several drive clips, concatenated; every array has the frames' length N first."""

    frames: np.ndarray  # (N, H, W, 3) uint8 BGR
    clip: np.ndarray  # (N,) int: which clip each frame belongs to (frames of a clip are consecutive)
    steering: np.ndarray  # (N,) float32 in [-1, 1], the lane-centre target
    throttle: np.ndarray  # (N,) float32 in [0.2, 0.8]
    imu: np.ndarray  # (N, 6) float32, IMU_ORDER
    lane: np.ndarray  # (N,) int in {0, 1}: index into BEHAVIORS
    lane_steering: np.ndarray  # (N,) float32: target for following the chosen lane
    lane_throttle: np.ndarray  # (N,) float32

    def __len__(self) -> int:
        return len(self.frames)

    def subset(self, idx: np.ndarray) -> Clips:
        """The frames at ``idx`` (every field indexed alike)."""
        return Clips(*(getattr(self, f)[idx] for f in self.__dataclass_fields__))


def imu_from_states(st: track.DriveStates, rng: np.random.Generator, fps: float = FPS) -> np.ndarray:
    """(n-2, 6) IMU samples for the first n-2 frames of a drive simulated for n frames.

    The drive is Euler-integrated, so the car's speed and path curvature at frame i are exact
    finite differences: ``v_i = (s[i+1] - s[i]) * fps`` and ``heading' = v (k_car - curvature)``.
    """
    dt = 1.0 / fps
    v = np.diff(st.distance) / dt  # (n-1,)
    dpsi = np.diff(st.heading) / dt
    k_car = dpsi / np.maximum(v, 1e-3) + st.curvature[:-1]
    gz = -v * k_car  # counter-clockwise positive: a right turn (k_car > 0) is negative
    ax = np.diff(v) / dt
    n = len(ax)
    out = np.zeros((n, 6), np.float64)
    out[:, 0] = ax
    out[:, 1] = v[:n] * gz[:n]
    out[:, 2] = GRAVITY
    out[:, 5] = gz[:n]
    out[:, :3] += rng.normal(0.0, ACCEL_NOISE, (n, 3))
    out[:, 3:] += rng.normal(0.0, GYRO_NOISE, (n, 3)) + rng.normal(0.0, GYRO_BIAS, 3)
    return out.astype(np.float32)


def drive_clip(n_frames: int, seed: int, width: int = 160, height: int = 120, fps: float = FPS) -> Clips:
    """One continuous drive of ``n_frames`` with one look and every extra input (see module doc)."""
    st = track.drive_states(n_frames + 2, seed, fps)  # +2: speed and acceleration need the next states
    rng = np.random.default_rng([seed, 2])
    imu = imu_from_states(st, rng, fps)
    app = track.random_appearance(rng)
    k, d, psi = st.curvature[:n_frames], st.offset[:n_frames], st.heading[:n_frames]
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        # _render is the track module's own renderer (drive_sequence uses it the same way).
        frames[i] = track._render(k[i], d[i], psi[i], app, rng, width, height, dash_phase=st.distance[i])
    # A behaviour is held for stretches of 0.5-2 s, as a driver pressing a button would.
    lane = np.zeros(n_frames, np.int64)
    i, cur = 0, int(rng.integers(2))
    while i < n_frames:
        span = int(rng.integers(int(0.5 * fps), int(2 * fps)))
        lane[i : i + span] = cur
        i, cur = i + span, 1 - cur
    # Left lane: its centre is LANE_SHIFT left of the road's, so the car sits further right of it.
    shift = np.where(lane == 0, LANE_SHIFT, -LANE_SHIFT)
    return Clips(
        frames=frames,
        clip=np.zeros(n_frames, np.int64),
        steering=track.steering_target(k, d, psi),
        throttle=track.throttle_target(k, d, psi),
        imu=imu,
        lane=lane,
        lane_steering=track.steering_target(k, d + shift, psi),
        lane_throttle=track.throttle_target(k, d + shift, psi),
    )


def make_clips(n_clips: int, clip_len: int, seed: int) -> Clips:
    """``n_clips`` drives of ``clip_len`` frames (clip seeds ``seed * 1000 + i``), concatenated."""
    parts = [drive_clip(clip_len, seed * 1000 + i) for i in range(n_clips)]
    for i, p in enumerate(parts):
        p.clip[:] = i
    return Clips(*(np.concatenate([getattr(p, f) for p in parts]) for f in Clips.__dataclass_fields__))


def sequence_index(clip: np.ndarray, length: int) -> np.ndarray:
    """(N, length) frame indices of the last ``length`` frames of each frame, oldest first.

    Clamped at the start of each clip (the first frame repeats), as donkeycar's ``run`` fills its
    deque and as the reference samples are built.
    """
    n = len(clip)
    idx = np.arange(n)[:, None] + np.arange(-length + 1, 1)[None, :]
    starts = np.searchsorted(clip, clip, side="left")  # clip ids are sorted: first frame of each clip
    return np.maximum(idx, starts[:, None])


def memory_values(steering: np.ndarray, throttle: np.ndarray, clip: np.ndarray, length: int) -> np.ndarray:
    """(N, 2 * length) float32: the ``length`` commands before each frame, oldest first, interleaved
    ``s0, t0, s1, t1, ...``; before the start of a clip they are neutral (zeros), as on the car."""
    n = len(clip)
    out = np.zeros((n, 2 * length), np.float32)
    for j in range(length):
        back = length - j  # slot j holds the command `back` frames ago
        src = np.arange(n) - back
        ok = (src >= 0) & (clip[np.maximum(src, 0)] == clip)
        out[ok, 2 * j] = steering[src[ok]]
        out[ok, 2 * j + 1] = throttle[src[ok]]
    return out


def one_hot(lane: np.ndarray, n: int = len(BEHAVIORS)) -> np.ndarray:
    """(N, n) float32 one-hot of behaviour indices."""
    return np.eye(n, dtype=np.float32)[lane]


def write_imu_csv(path: str | Path, imu: np.ndarray, fps: float = FPS, t0: float = 0.0) -> Path:
    """Write ``t,ax,ay,az,gx,gy,gz`` rows, one per frame at ``t0 + i / fps`` seconds."""
    path = Path(path)
    with path.open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["t", *IMU_ORDER])
        for i, row in enumerate(imu):
            w.writerow([f"{t0 + i / fps:.6f}", *(f"{v:.6f}" for v in row)])
    return path
