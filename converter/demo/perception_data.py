"""Ground truth for perception on the synthetic road: drivable masks, traffic cones and their boxes.

numpy + OpenCV only (runtime and benchmark tests import it). Geometry is :mod:`converter.demo.track`'s
pinhole camera: focal length ``f = FOCAL_FRACTION * width`` pixels, principal point at the image's
horizontal centre, horizon row ``app.horizon * height``. Continuous pixel coordinates: pixel ``(r, c)``
covers ``[c, c + 1] x [r, r + 1]``, so a ground point ``z`` ahead and ``x`` right projects to
``u = width / 2 + f * x / z`` and ``v = v_horizon + f * CAMERA_HEIGHT / z``.

- **Drivable mask**: the lane between the two edge lines, exactly the ``_render`` rule
  ``_coverage(dx, LANE_HALF_WIDTH, pix) > 0.5`` on rows below the horizon, minus pixels a cone covers.
- **Cone**: an orange traffic cone (white band) standing at ground point (``z``, ``x``), drawn as a
  flat vertical trapezoid at depth ``z`` (its depth extent is small beside ``z``), ``CONE_HEIGHT`` tall
  and ``CONE_BASE`` wide at the ground. Its box is the silhouette's exact extent in pixels
  (x1, y1, x2, y2), clipped to the image; it occludes the road.

Masks may be asked for at another size than the frame (``mask_size``): they are then computed from
the same geometry at that resolution (same field of view and horizon fraction), which is what the
runtime's resize of the frame to the model input sees.

Cone pixels draw from their own random stream, so a drive's frames without the cone are bit-identical
to :func:`converter.demo.track.drive_sequence`'s.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from converter.demo.track import (
    CAMERA_HEIGHT,
    FOCAL_FRACTION,
    FOG_DISTANCE,
    LANE_HALF_WIDTH,
    SHADOW_EVERY,
    Appearance,
    _blend,
    _coverage,
    _lane_x,
    _render,
    drive_states,
    random_appearance,
    random_states,
    steering_target,
    throttle_target,
)

CONE_HEIGHT = 0.20  # m, an RC-scale traffic cone
CONE_BASE = 0.14  # m, width at the ground
CONE_TIP = 0.03  # m, width at the top
CONE_BAND = (0.45, 0.65)  # the white reflective band, as fractions of the height from the ground
CONE_Z_RANGE = (0.5, 1.8)  # m ahead, where the datasets place cones
CONE_LATERAL_RANGE = 0.45  # m either side of the lane centre (in the lane, on the lines, just off)
CONE_CLASSES = ("background", "cone")  # torchvision's convention: label 0 is background
ROAD_CLASSES = ("background", "road")
DRIVABLE = ("road",)


@dataclass(frozen=True)
class Cone:
    """A cone standing on the ground ``z`` metres ahead of the camera and ``x`` metres right of its axis."""

    z: float
    x: float


@dataclass(frozen=True)
class Scene:
    """One rendered frame with its ground truth.

    ``frame`` (H, W, 3) uint8 BGR; ``mask`` (h, w) bool drivable (``mask_size``, default the frame's);
    ``box`` (4,) float32 x1, y1, x2, y2 in frame pixels, or None when no cone is in the frame.
    """

    frame: np.ndarray
    mask: np.ndarray
    box: np.ndarray | None


def cone_box(cone: Cone, horizon: float, width: int, height: int) -> np.ndarray | None:
    """The cone's silhouette extent (x1, y1, x2, y2) in pixels of a ``width`` x ``height`` image whose
    horizon is at ``horizon * height``, clipped to the image; None if it is outside the view."""
    f = FOCAL_FRACTION * width
    v_h = horizon * height
    u_c = width / 2 + f * cone.x / cone.z
    half = f * CONE_BASE / 2 / cone.z
    box = np.array([u_c - half, v_h + f * (CAMERA_HEIGHT - CONE_HEIGHT) / cone.z,
                    u_c + half, v_h + f * CAMERA_HEIGHT / cone.z], np.float64)
    box = np.clip(box, 0.0, [width, height, width, height])
    if box[2] - box[0] < 0.5 or box[3] - box[1] < 0.5:
        return None
    return box.astype(np.float32)


def _cone_layers(cone: Cone, horizon: float, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """(alpha (H, W) coverage of the cone's silhouette, band (H, 1) share of each row in the white band)."""
    f = FOCAL_FRACTION * width
    v_h = horizon * height
    v = np.arange(height, dtype=np.float64)[:, None] + 0.5
    u = np.arange(width, dtype=np.float64)[None, :] + 0.5
    h = CAMERA_HEIGHT - (v - v_h) * cone.z / f  # height above the ground seen at row v, at depth z
    top, base = v_h + f * (CAMERA_HEIGHT - CONE_HEIGHT) / cone.z, v_h + f * CAMERA_HEIGHT / cone.z
    rows = np.clip(np.minimum(v + 0.5, base) - np.maximum(v - 0.5, top), 0.0, 1.0)  # vertical coverage
    half = np.clip(CONE_BASE / 2 + (CONE_TIP - CONE_BASE) / 2 * h / CONE_HEIGHT, CONE_TIP / 2, CONE_BASE / 2)
    dist, half_px = u - (width / 2 + f * cone.x / cone.z), f * half / cone.z  # per row: a varying half width
    across = np.clip(np.minimum(dist + 0.5, half_px) - np.maximum(dist - 0.5, -half_px), 0.0, 1.0)
    lo, hi = CONE_BAND
    band = ((h >= lo * CONE_HEIGHT) & (h <= hi * CONE_HEIGHT)).astype(np.float64)
    return (across * rows).astype(np.float32), band.astype(np.float32)


def drivable_mask(curvature: float, offset: float, heading: float, horizon: float, width: int, height: int,
                  cone: Cone | None = None) -> np.ndarray:
    """(height, width) bool: pixels of the lane between the edge lines (``_render``'s road coverage
    > 0.5 below the horizon at fraction ``horizon``), minus those a ``cone`` covers by more than half."""
    f = FOCAL_FRACTION * width
    v_h = horizon * height
    v = (np.arange(height, dtype=np.float32) + 0.5)[:, None]
    u = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    below = np.clip(v - v_h + 0.5, 0.0, 1.0)
    z = (f * CAMERA_HEIGHT / np.maximum(v - v_h, 0.5)).astype(np.float32)
    pix = z / f
    dx = (u - width / 2) * pix - _lane_x(float(curvature), float(offset), float(heading), z)
    road = _coverage(dx, LANE_HALF_WIDTH, pix) * below > 0.5
    if cone is not None:
        alpha, _ = _cone_layers(cone, horizon, width, height)
        road &= alpha <= 0.5
    return np.asarray(road, bool)


def draw_cone(frame: np.ndarray, cone: Cone, app: Appearance, rng: np.random.Generator) -> np.ndarray | None:
    """Paint ``cone`` into ``frame`` (H, W, 3 uint8 BGR, in place) under ``app``'s lighting and haze, with
    pixel noise from ``rng``. Returns its box (see :func:`cone_box`), None when it is out of view."""
    height, width = frame.shape[:2]
    box = cone_box(cone, app.horizon, width, height)
    if box is None:
        return None
    alpha, band = _cone_layers(cone, app.horizon, width, height)
    orange = np.array([rng.uniform(0, 40), rng.uniform(80, 130), rng.uniform(215, 255)], np.float32)
    img = np.empty((height, width, 3), np.float32)
    img[:] = orange
    _blend(img, (235.0, 235.0, 235.0), np.broadcast_to(band, (height, width)))
    u = (np.arange(width, dtype=np.float32) + 0.5)[None, :]
    f = FOCAL_FRACTION * width
    side = (u - (width / 2 + f * cone.x / cone.z)) / max(f * CONE_BASE / cone.z, 1.0)
    img *= (1.0 - 0.35 * np.clip(side + 0.5, 0.0, 1.0))[..., None]  # lit from the left: a round body
    haze = tuple(float(c) * 0.9 for c in app.sky)
    _blend(img, haze, np.full((height, 1), 1.0 - np.exp(-cone.z / FOG_DISTANCE), np.float32))  # type: ignore[arg-type]
    img *= (app.gain * (1.0 + app.tilt * (u / width - 0.5)))[..., None]
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(app.noise)
    out = frame.astype(np.float32)
    a = alpha[..., None]
    out = out * (1.0 - a) + np.clip(img, 0, 255) * a
    frame[:] = np.clip(out + 0.5, 0, 255).astype(np.uint8)
    return box


def render_scene(curvature: float, offset: float, heading: float, rng: np.random.Generator,
                 width: int = 160, height: int = 120, cone: Cone | None = None,
                 mask_size: tuple[int, int] | None = None) -> Scene:
    """One frame of the state with a random look (as :func:`~converter.demo.track.render_frame`), an
    optional ``cone``, the drivable mask at ``mask_size`` (width, height; default the frame's) and the box."""
    app = random_appearance(rng)
    phase = float(rng.uniform(0.0, SHADOW_EVERY))
    frame = _render(curvature, offset, heading, app, rng, width, height, dash_phase=phase)
    box = draw_cone(frame, cone, app, rng) if cone is not None else None
    mw, mh = mask_size or (width, height)
    mask = drivable_mask(curvature, offset, heading, app.horizon, mw, mh, cone if box is not None else None)
    return Scene(frame, mask, box)


def cone_on_road(curvature: float, offset: float, heading: float, z: float, lateral: float = 0.0) -> Cone:
    """A cone ``z`` metres ahead, ``lateral`` metres right of the lane centre there (in the car's path at 0)."""
    return Cone(float(z), float(_lane_x(curvature, offset, heading, z)) + float(lateral))


def random_cone(curvature: float, offset: float, heading: float, rng: np.random.Generator) -> Cone:
    """A cone somewhere on or beside the lane within ``CONE_Z_RANGE``, kept inside the camera's view."""
    z = float(rng.uniform(*CONE_Z_RANGE))
    cone = cone_on_road(curvature, offset, heading, z, float(rng.uniform(-CONE_LATERAL_RANGE, CONE_LATERAL_RANGE)))
    limit = 0.42 / FOCAL_FRACTION * z  # |u - cx| <= 0.42 width: the whole base in view
    return Cone(cone.z, float(np.clip(cone.x, -limit, limit)))


def segmentation_samples(n: int, seed: int, width: int = 160, height: int = 120,
                         mask_size: tuple[int, int] | None = None,
                         cone_fraction: float = 0.25) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. states and looks, a cone in about ``cone_fraction`` of them:
    (frames (N, H, W, 3) uint8 BGR, masks (N, h, w) bool drivable at ``mask_size``)."""
    rng = np.random.default_rng(seed)
    curvature, offset, heading = random_states(n, rng)
    mw, mh = mask_size or (width, height)
    frames = np.empty((n, height, width, 3), np.uint8)
    masks = np.empty((n, mh, mw), bool)
    for i in range(n):
        cone = random_cone(curvature[i], offset[i], heading[i], rng) if rng.random() < cone_fraction else None
        s = render_scene(curvature[i], offset[i], heading[i], rng, width, height, cone, (mw, mh))
        frames[i], masks[i] = s.frame, s.mask
    return frames, masks


def detection_samples(n: int, seed: int, width: int = 160, height: int = 120,
                      cone_fraction: float = 0.6) -> tuple[np.ndarray, np.ndarray]:
    """``n`` i.i.d. frames, a cone in about ``cone_fraction`` of them: (frames (N, H, W, 3) uint8 BGR,
    boxes (N, 4) float32 x1, y1, x2, y2 pixels, NaN where the frame has no cone)."""
    rng = np.random.default_rng(seed)
    curvature, offset, heading = random_states(n, rng)
    frames = np.empty((n, height, width, 3), np.uint8)
    boxes = np.full((n, 4), np.nan, np.float32)
    for i in range(n):
        cone = random_cone(curvature[i], offset[i], heading[i], rng) if rng.random() < cone_fraction else None
        s = render_scene(curvature[i], offset[i], heading[i], rng, width, height, cone)
        frames[i] = s.frame
        if s.box is not None:
            boxes[i] = s.box
    return frames, boxes


@dataclass(frozen=True)
class ObstacleDrive:
    """A continuous drive with a cone in the car's path on frames ``appear <= i < disappear``.

    ``frames`` (N, H, W, 3) uint8 BGR; ``steering``/``throttle`` (N,) the track's targets (the cone does
    not change them: stopping is the safety layer's job); ``present`` (N,) bool, the cone in view;
    ``boxes`` (N, 4) float32 pixels (NaN when absent); ``masks`` (N, H, W) bool drivable.
    """

    frames: np.ndarray
    steering: np.ndarray
    throttle: np.ndarray
    present: np.ndarray
    boxes: np.ndarray
    masks: np.ndarray
    appear: int
    disappear: int


def obstacle_drive(n_frames: int, seed: int, appear: int | None = None, disappear: int | None = None,
                   distance: float = 1.2, lateral: float = 0.0, width: int = 160, height: int = 120,
                   fps: float = 30.0) -> ObstacleDrive:
    """:func:`~converter.demo.track.drive_sequence`'s drive (same states, look and pixels) with a cone
    ``distance`` metres ahead, ``lateral`` metres right of the lane centre, on frames [appear, disappear).

    ``appear``/``disappear`` default to the middle third; ``appear=disappear`` gives the plain drive.
    Raises ValueError when the window is outside [0, n_frames].
    """
    appear = n_frames // 3 if appear is None else appear
    disappear = 2 * n_frames // 3 if disappear is None else disappear
    if not 0 <= appear <= disappear <= n_frames:
        raise ValueError(f"obstacle_drive: need 0 <= appear ({appear}) <= disappear ({disappear}) <= n_frames ({n_frames})")
    st = drive_states(n_frames, seed, fps)
    rng = np.random.default_rng([seed, 1])  # drive_sequence's stream: same look and pixel noise
    cone_rng = np.random.default_rng([seed, 2])
    app = random_appearance(rng)
    frames = np.empty((n_frames, height, width, 3), np.uint8)
    masks = np.empty((n_frames, height, width), bool)
    boxes = np.full((n_frames, 4), np.nan, np.float32)
    for i in range(n_frames):
        k, d, psi = float(st.curvature[i]), float(st.offset[i]), float(st.heading[i])
        frames[i] = _render(k, d, psi, app, rng, width, height, dash_phase=st.distance[i])
        cone = cone_on_road(k, d, psi, distance, lateral) if appear <= i < disappear else None
        box = draw_cone(frames[i], cone, app, cone_rng) if cone is not None else None
        if box is not None:
            boxes[i] = box
        masks[i] = drivable_mask(k, d, psi, app.horizon, width, height, cone if box is not None else None)
    return ObstacleDrive(
        frames, steering_target(st.curvature, st.offset, st.heading),
        throttle_target(st.curvature, st.offset, st.heading), ~np.isnan(boxes[:, 0]), boxes, masks,
        appear, disappear,
    )
