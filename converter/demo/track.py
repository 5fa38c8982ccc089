"""Synthetic front-camera views of a lane-marked track, with the correct steering and throttle.

numpy + OpenCV only: calibration, benchmarks and runtime tests import this module, so it must not
pull in TensorFlow.

Geometry (car frame, metres). The camera sits ``CAMERA_HEIGHT`` above a flat ground plane and looks
along the car's axis. A ground point ``z`` ahead and ``x`` to the right projects to image column
``u = cx + f * x / z`` and row ``v = v_horizon + f * CAMERA_HEIGHT / z``. The lane centre line
ahead of the car is, to second order in distance (small heading angles),

    x_c(z) = -offset - heading * z + curvature * z**2 / 2

with the sign conventions used everywhere here and by the runtime's policy:

- ``curvature`` (1/m): > 0 the road bends to the right;
- ``offset`` (m): > 0 the car is right of the lane centre;
- ``heading`` (rad): > 0 the car points to the right of the road direction;
- ``steering`` in [-1, 1]: > 0 turns right (donkeycar's convention); ``throttle`` in [0, 1].

Targets (see :func:`steering_target`, :func:`throttle_target`): steering is pure pursuit to the
lane centre ``LOOKAHEAD`` ahead; throttle falls as the road ``FAR_LOOKAHEAD`` ahead moves off the
car's axis (tight curves, bad heading). Both are smooth in (curvature, offset, heading).

The lane is ``2 * LANE_HALF_WIDTH`` wide, bounded by two edge lines, with an optional dashed centre
line. Appearance (floor/road colours, line colour, texture, shadows, lighting, camera pitch, pixel
noise) is randomised so that a network has to learn the geometry, not the pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import overload

import cv2
import numpy as np
from numpy.typing import ArrayLike

CAMERA_HEIGHT = 0.25  # m above the ground
FOCAL_FRACTION = 0.55  # focal length in pixels / image width (about 85 degrees horizontal FOV)
LANE_HALF_WIDTH = 0.35  # m, centre to edge line
LINE_WIDTH = 0.05  # m, painted/taped line width
DASH_PERIOD = 0.40  # m, one dash plus one gap of the centre line
SHADOW_EVERY = 12.0  # m between shadows across the road (when the appearance has them)
FOG_DISTANCE = 8.0  # m, far ground fades into the haze (also hides aliasing at the horizon)

LOOKAHEAD = 1.0  # m, pure-pursuit look-ahead distance of the steering target
WHEELBASE = 0.26  # m
MAX_STEER_ANGLE = 0.45  # rad at steering = +-1 (before the tanh saturation)
FAR_LOOKAHEAD = 2.0  # m, where the throttle target looks
FAR_TOLERANCE = 1.0  # m, road that far off-axis at FAR_LOOKAHEAD: throttle 1/e of the way down

# Ranges of the i.i.d. states in generate_dataset (the drive stays within them too).
CURVATURE_RANGE = 0.8
OFFSET_RANGE = 0.25
HEADING_RANGE = 0.30


def _lane_x(curvature: ArrayLike, offset: ArrayLike, heading: ArrayLike, z: float) -> np.ndarray:
    """Lateral position (m, right of the car's axis) of the lane centre ``z`` metres ahead."""
    return -np.asarray(offset) - np.asarray(heading) * z + np.asarray(curvature) * z * z / 2


def _scalar_or_array(out: np.ndarray) -> float | np.ndarray:
    return float(out) if out.ndim == 0 else out.astype(np.float32)


@overload
def steering_target(curvature: float, offset: float, heading: float) -> float: ...
@overload
def steering_target(curvature: ArrayLike, offset: ArrayLike, heading: ArrayLike) -> np.ndarray: ...
def steering_target(curvature: ArrayLike, offset: ArrayLike, heading: ArrayLike) -> float | np.ndarray:
    """Pure pursuit to the lane centre ``LOOKAHEAD`` metres ahead, squashed smoothly into [-1, 1].

    ``k = 2 * x_c(LOOKAHEAD) / LOOKAHEAD**2`` is the path curvature that reaches the look-ahead
    point; the bicycle model's wheel angle for it is ``atan(WHEELBASE * k)``; steering is
    ``tanh(angle / MAX_STEER_ANGLE)``. Elementwise on arrays (float32 out); floats in, float out.
    """
    k = 2.0 * _lane_x(curvature, offset, heading, LOOKAHEAD) / LOOKAHEAD**2
    return _scalar_or_array(np.tanh(np.arctan(WHEELBASE * k) / MAX_STEER_ANGLE))


@overload
def throttle_target(curvature: float, offset: float, heading: float) -> float: ...
@overload
def throttle_target(curvature: ArrayLike, offset: ArrayLike, heading: ArrayLike) -> np.ndarray: ...
def throttle_target(curvature: ArrayLike, offset: ArrayLike, heading: ArrayLike) -> float | np.ndarray:
    """Slow down when the road far ahead is off the car's axis (a tight curve, or a bad heading).

    ``0.2 + 0.6 * exp(-(x_c(FAR_LOOKAHEAD) / FAR_TOLERANCE)**2)``, in [0.2, 0.8]: 0.8 on a straight
    with the car on line; 0.52 at curvature 0.4 and 0.25 at 0.8 (on line). Elementwise on arrays.
    """
    x_far = _lane_x(curvature, offset, heading, FAR_LOOKAHEAD)
    return _scalar_or_array(0.2 + 0.6 * np.exp(-((x_far / FAR_TOLERANCE) ** 2)))


@dataclass(frozen=True)
class Appearance:
    """Everything about a frame that must not change the labels. Colours are BGR in [0, 255]."""

    floor: tuple[float, float, float]
    road: tuple[float, float, float]
    line: tuple[float, float, float]
    sky: tuple[float, float, float]
    center_line: bool
    horizon: float  # horizon row as a fraction of the height (camera pitch)
    tex_amp: float
    tex_freq: tuple[float, float, float]  # 1/m: along, across, diagonal
    tex_phase: tuple[float, float, float]
    shadow_at: float  # m along the road of the first shadow
    shadow_len: float  # m; 0 means no shadows
    gain: float  # overall brightness
    tilt: float  # left-right brightness gradient
    noise: float  # pixel noise standard deviation


def random_appearance(rng: np.random.Generator) -> Appearance:
    """Outdoor (asphalt on grass or dirt) or indoor (tape on a floor, road = floor) looks."""
    indoor = rng.random() < 0.35
    if indoor:
        base = rng.uniform(70, 200)
        tint = rng.uniform(-25, 25, 3)
        floor = tuple(np.clip(base + tint, 0, 255))
        road = floor
    else:
        grass = rng.random() < 0.6
        floor = (
            (rng.uniform(20, 70), rng.uniform(90, 160), rng.uniform(30, 80))  # green
            if grass
            else (rng.uniform(40, 90), rng.uniform(80, 130), rng.uniform(110, 170))  # dirt
        )
        g = rng.uniform(45, 120)
        road = (g + rng.uniform(-6, 6), g + rng.uniform(-6, 6), g + rng.uniform(-6, 6))
    line = (
        (rng.uniform(215, 255),) * 3
        if rng.random() < 0.6
        else (rng.uniform(0, 40), rng.uniform(190, 230), 240.0)
    )
    sky_b = rng.uniform(150, 255)
    sky = (sky_b, sky_b * rng.uniform(0.75, 0.95), sky_b * rng.uniform(0.55, 0.9))
    return Appearance(
        floor=floor,
        road=road,
        line=line,
        sky=sky,
        center_line=bool(rng.random() < 0.6),
        horizon=float(rng.uniform(0.27, 0.33)),
        tex_amp=float(rng.uniform(0.0, 0.15)),
        tex_freq=tuple(float(v) for v in rng.uniform(0.5, 4.0, 3)),  # type: ignore[arg-type]
        tex_phase=tuple(float(v) for v in rng.uniform(0, 1, 3)),  # type: ignore[arg-type]
        shadow_at=float(rng.uniform(0.3, 3.0)),
        shadow_len=float(rng.uniform(0.1, 0.6) if rng.random() < 0.5 else 0.0),
        gain=float(rng.uniform(0.65, 1.25)),
        tilt=float(rng.uniform(-0.25, 0.25)),
        noise=float(rng.uniform(1.0, 8.0)),
    )


def _coverage(dist: np.ndarray, half: float, pix: np.ndarray) -> np.ndarray:
    """Fraction of a pixel ``pix`` wide centred at ``dist`` that lies inside [-half, half] (box filter)."""
    lo = np.maximum(dist - pix / 2, -half)
    hi = np.minimum(dist + pix / 2, half)
    return np.clip(hi - lo, 0.0, None) / pix


def _blend(img: np.ndarray, color: tuple[float, float, float], alpha: np.ndarray) -> None:
    """In place: ``img = img * (1 - alpha) + color * alpha``; alpha is (H, W) or (H, 1)."""
    a = alpha[..., None]
    img *= 1.0 - a
    img += a * np.asarray(color, np.float32)


def _render(
    curvature: float,
    offset: float,
    heading: float,
    app: Appearance,
    rng: np.random.Generator,
    width: int,
    height: int,
    dash_phase: float = 0.0,
) -> np.ndarray:
    # Plain Python floats: NumPy scalars (float64) would silently upcast every float32 array.
    curvature, offset, heading, dash_phase = (
        float(curvature),
        float(offset),
        float(heading),
        float(dash_phase),
    )
    f = FOCAL_FRACTION * width
    v_h = app.horizon * height
    v = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    u = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    below = np.clip(v - v_h + 0.5, 0.0, 1.0)  # soft horizon: ground coverage of each row
    z = (f * CAMERA_HEIGHT / np.maximum(v - v_h, 0.5)).astype(np.float32)  # (H, 1) metres ahead
    pix = z / f  # metres per pixel across, at that depth
    x = (u - width / 2) * pix  # (H, W) metres right of the camera axis
    x_c = -offset - heading * z + 0.5 * curvature * z * z
    dx = x - x_c  # metres right of the lane centre
    s = z + dash_phase  # metres along the road
    dz_pix = z * z / (f * CAMERA_HEIGHT)  # metres along the road covered by one pixel row

    img = np.empty((height, width, 3), np.float32)
    img[:] = np.asarray(app.floor, np.float32)
    _blend(img, app.road, _coverage(dx, LANE_HALF_WIDTH, pix))
    edges = _coverage(np.abs(dx) - LANE_HALF_WIDTH, LINE_WIDTH / 2, pix)
    _blend(img, app.line, edges)
    if app.center_line:
        sharp = np.clip(DASH_PERIOD / (4 * dz_pix), 0.0, 50.0)
        dash = np.clip(0.5 + 0.5 * sharp * np.sin(2 * np.pi * s / DASH_PERIOD), 0.0, 1.0)
        _blend(img, app.line, _coverage(dx, LINE_WIDTH / 2, pix) * dash)

    fa, fc, fd = app.tex_freq
    pa, pc, pd = app.tex_phase
    tex = 1.0 + app.tex_amp * (
        np.sin(2 * np.pi * (s * fa + pa)) * np.sin(2 * np.pi * (dx * fc + pc))
        + 0.5 * np.sin(2 * np.pi * ((s + dx) * fd + pd))
    )
    if app.shadow_len > 0:
        # Shadows lie across the road at fixed places along it (every SHADOW_EVERY metres), so in a
        # drive they come towards the car like the dashes do.
        along = np.mod(s - app.shadow_at + SHADOW_EVERY / 2, SHADOW_EVERY) - SHADOW_EVERY / 2
        tex = tex * (1.0 - 0.45 * _coverage(along, app.shadow_len / 2, dz_pix))
    img *= tex[..., None]
    haze = np.asarray(app.sky, np.float32) * 0.9
    _blend(img, tuple(haze), np.broadcast_to(1.0 - np.exp(-z / FOG_DISTANCE), (height, 1)))

    sky_grad = 0.75 + 0.25 * np.clip(v / max(v_h, 1.0), 0.0, 1.0)  # lighter towards the horizon
    sky = np.asarray(app.sky, np.float32) * sky_grad[..., None]
    a = below[..., None]
    img = img * a + sky * (1.0 - a)

    img *= (app.gain * (1.0 + app.tilt * (u / width - 0.5)))[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(app.noise)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def render_frame(
    curvature: float,
    offset: float,
    heading: float,
    rng: np.random.Generator,
    width: int = 160,
    height: int = 120,
) -> np.ndarray:
    """One HxWx3 uint8 BGR frame (as OpenCV delivers camera frames) of the given state, random look."""
    app = random_appearance(rng)
    phase = float(rng.uniform(0.0, SHADOW_EVERY))
    return _render(curvature, offset, heading, app, rng, width, height, dash_phase=phase)


def random_states(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` i.i.d. (curvature, offset, heading), uniform over the documented ranges."""
    curvature = rng.uniform(-CURVATURE_RANGE, CURVATURE_RANGE, n)
    offset = rng.uniform(-OFFSET_RANGE, OFFSET_RANGE, n)
    heading = rng.uniform(-HEADING_RANGE, HEADING_RANGE, n)
    return curvature, offset, heading


def generate_dataset(
    n: int, seed: int, width: int = 160, height: int = 120
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` i.i.d. random states, each with its own look: (frames (N,H,W,3) uint8 BGR, steering, throttle)."""
    rng = np.random.default_rng(seed)
    curvature, offset, heading = random_states(n, rng)
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        frames[i] = render_frame(curvature[i], offset[i], heading[i], rng, width, height)
    return frames, steering_target(curvature, offset, heading), throttle_target(curvature, offset, heading)


@dataclass(frozen=True)
class DriveStates:
    """The car's state at each frame of a drive, plus the distance driven (metres)."""

    curvature: np.ndarray
    offset: np.ndarray
    heading: np.ndarray
    distance: np.ndarray


def _road_curvature(length: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Curvature knots every 0.1 m: straights and left/right curves, eased in and out over ~1 m."""
    step = 0.1
    values: list[np.ndarray] = []
    total = 0.0
    while total < length + 5.0:
        seg = float(rng.uniform(2.0, 6.0))
        k = (
            0.0
            if rng.random() < 0.4
            else float(rng.choice([-1, 1]) * rng.uniform(0.3, CURVATURE_RANGE * 0.95))
        )
        values.append(np.full(round(seg / step), k))
        total += seg
    raw = np.concatenate(values)
    kernel = np.hanning(round(1.0 / step) * 2 + 1)
    smooth = np.convolve(raw, kernel / kernel.sum(), mode="same")
    return np.arange(smooth.size) * step, smooth


def drive_states(n_frames: int, seed: int, fps: float = 30.0) -> DriveStates:
    """Simulate the car following the track with an imperfect driver (lagged, noisy steering).

    Frenet-frame kinematics: ``d' = v sin(heading)``, ``heading' = v (k_car - curvature)`` with the
    bicycle model ``k_car = tan(MAX_STEER_ANGLE * steer) / WHEELBASE``. The driver steers at
    :func:`steering_target` plus slow Ornstein-Uhlenbeck noise, through a 0.1 s servo lag, so the car
    weaves a little; offset and heading stay in the documented ranges.
    """
    rng = np.random.default_rng(seed)
    dt = 1.0 / fps
    max_len = n_frames * dt * 3.0 + 10.0  # v <= 2.8 m/s
    knots_s, knots_k = _road_curvature(max_len, rng)
    out = np.zeros((4, n_frames))
    d, psi, s, steer, noise = float(rng.uniform(-0.1, 0.1)), 0.0, 0.0, 0.0, 0.0
    for i in range(n_frames):
        kappa = float(np.interp(s, knots_s, knots_k))
        out[:, i] = (kappa, d, psi, s)
        noise += -noise * dt / 0.7 + 0.12 * math.sqrt(2 * dt / 0.7) * float(rng.normal())
        cmd = float(np.clip(steering_target(kappa, d, psi) + noise, -1.0, 1.0))
        steer += (cmd - steer) * min(1.0, dt / 0.1)
        v = 0.4 + 2.4 * float(throttle_target(kappa, d, psi))
        k_car = math.tan(MAX_STEER_ANGLE * steer) / WHEELBASE
        d = float(np.clip(d + v * math.sin(psi) * dt, -OFFSET_RANGE, OFFSET_RANGE))
        psi = float(np.clip(psi + v * (k_car - kappa) * dt, -HEADING_RANGE, HEADING_RANGE))
        s += v * dt
    return DriveStates(out[0], out[1], out[2], out[3])


def drive_sequence(
    n_frames: int, seed: int, width: int = 160, height: int = 120, fps: float = 30.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A continuous drive (one look, straights and curves): (frames, steering, throttle) per frame."""
    st = drive_states(n_frames, seed, fps)
    rng = np.random.default_rng([seed, 1])
    app = random_appearance(rng)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        frames[i] = _render(
            st.curvature[i], st.offset[i], st.heading[i], app, rng, width, height, dash_phase=st.distance[i]
        )
    return (
        frames,
        steering_target(st.curvature, st.offset, st.heading),
        throttle_target(st.curvature, st.offset, st.heading),
    )


def write_video(path: str | Path, frames_bgr: np.ndarray, fps: float = 30) -> Path:
    """Write ``.mp4`` (mp4v) or ``.avi`` (MJPG), the codecs OpenCV's pip wheels carry; verify it reopens."""
    path = Path(path)
    codecs = {".mp4": "mp4v", ".avi": "MJPG"}
    if path.suffix.lower() not in codecs:
        raise ValueError(f"write_video: {path.name}: use a .mp4 (mp4v) or .avi (MJPG) file name")
    if len(frames_bgr) == 0:
        raise ValueError("write_video: no frames to write")
    h, w = frames_bgr[0].shape[:2]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")  # never leave a half video under the real name
    writer = cv2.VideoWriter(
        str(tmp), cv2.VideoWriter.fourcc(*codecs[path.suffix.lower()]), float(fps), (w, h)
    )
    try:
        if not writer.isOpened():
            raise OSError(
                f"write_video: OpenCV cannot open a {codecs[path.suffix.lower()]} writer for {path}"
            )
        for f in frames_bgr:
            writer.write(np.ascontiguousarray(f))
    finally:
        writer.release()
    cap = cv2.VideoCapture(str(tmp))
    try:
        count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else -1
    finally:
        cap.release()
    if count != len(frames_bgr):
        tmp.unlink(missing_ok=True)
        raise OSError(f"write_video: {path} reopened with {count} frames, wrote {len(frames_bgr)}")
    tmp.replace(path)
    return path


def write_image_folder(directory: str | Path, frames_bgr: np.ndarray, ext: str = ".png") -> list[Path]:
    """Write frames as ``000000.png``, ``000001.png``... (sorted name order = frame order)."""
    if ext not in (".png", ".jpg"):
        raise ValueError(f"write_image_folder: ext must be .png or .jpg, got {ext!r}")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    digits = max(6, len(str(len(frames_bgr) - 1)))
    paths = []
    for i, f in enumerate(frames_bgr):
        p = directory / f"{i:0{digits}d}{ext}"
        if not cv2.imwrite(str(p), f):
            raise OSError(f"write_image_folder: OpenCV could not write {p}")
        paths.append(p)
    return paths
