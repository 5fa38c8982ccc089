"""``lane_follow``: a segmentation bundle drives by its drivable mask.

Per frame: the ``segmentation`` output decoded by its kind (:class:`~runtime.perception.SegmentationDecoder`:
argmax, drivable classes) -> the mask's centreline (:mod:`runtime.pilots.lane_geometry`) -> pure
pursuit steering and a curvature-dependent throttle (``[lane]``, :class:`LaneConfig`). No or too
little drivable ground, or no centreline at the look-ahead: hold (the loop commands neutral and
raises ``lane.lost``; it is cleared when the lane is back).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from runtime.camera import CameraFrame
from runtime.manifest import Manifest, PreprocessSpec
from runtime.perception import SegmentationDecoder
from runtime.pilots.base import Pilot, PilotError, PilotResult
from runtime.pilots.lane_config import LaneConfig
from runtime.pilots.lane_geometry import GroundCamera, decide, mask_pixel_centres, measure_centreline

RECORDED_POINTS = 8  # centreline points kept per frame in a recording (evenly spaced, nearest first)


class LaneFollowPilot(Pilot):
    """Pure pursuit on the drivable mask's centreline (see the module). ``decoder``: the bundle's
    segmentation decoder; ``spec``: the camera input's preprocessing (to map mask pixels back to the
    frame); ``cfg``: the ``[lane]`` section."""

    kind = "lane_follow"
    tasks = ("segmentation",)
    event = "lane.lost"

    def __init__(self, decoder: SegmentationDecoder, spec: PreprocessSpec, cfg: LaneConfig) -> None:
        self.decoder, self.spec, self.cfg = decoder, spec, cfg
        self.gives_throttle = True
        self._geometry: dict[tuple[int, ...], tuple[GroundCamera, np.ndarray, np.ndarray]] = {}

    @classmethod
    def for_bundle(cls, manifest: Manifest, options: Any = None) -> LaneFollowPilot:
        """The pilot for a segmentation bundle; ``options`` a :class:`LaneConfig` (None: the defaults)."""
        decoder = manifest.perception_decoder("segmentation")
        if not isinstance(decoder, SegmentationDecoder):
            raise PilotError(f"pilot lane_follow needs a segmentation bundle; {manifest.model.name} is a "
                             f"{manifest.task} model")
        return cls(decoder, manifest.preprocess, options if isinstance(options, LaneConfig) else LaneConfig())

    def geometry(self, mask_hw: tuple[int, int], frame_hw: tuple[int, int]) -> tuple[GroundCamera, np.ndarray, np.ndarray]:
        """The camera and the mask's pixel centres in the frame, for these sizes (cached: sizes rarely change)."""
        key = (*mask_hw, *frame_hw)
        g = self._geometry.get(key)
        if g is None:
            cam = GroundCamera.for_frame(self.cfg, frame_hw[1], frame_hw[0])
            g = (cam, *mask_pixel_centres(mask_hw, self.spec, frame_hw))
            self._geometry[key] = g
        return g

    def __call__(self, outputs: Mapping[str, np.ndarray], frame: CameraFrame) -> PilotResult:
        """Steering and throttle from the mask, or a hold naming why; ``record`` holds the drivable
        fraction, up to :data:`RECORDED_POINTS` centreline points and the look-ahead point as
        [row, column] frame pixels, the curvature (1/m) and the hold reason."""
        mask = self.decoder(outputs).drivable
        frame_hw = (int(frame.image.shape[0]), int(frame.image.shape[1]))
        cam, v_rows, u_cols = self.geometry((int(mask.shape[0]), int(mask.shape[1])), frame_hw)
        line = measure_centreline(mask, v_rows, u_cols, cam, self.cfg)
        d = decide(line, self.cfg)
        pick = np.unique(np.linspace(0, line.z.size - 1, min(RECORDED_POINTS, line.z.size)).round().astype(int))
        points = [[round(float(line.v[i]), 1), round(float(line.u[i]), 1)] for i in pick] if line.z.size else []
        look = None
        if d.hold is None:
            v, u = cam.to_pixel(self.cfg.lookahead_m, d.lookahead_x)
            look = [round(float(v), 1), round(float(u), 1)]
        record = {"drivable_fraction": round(line.drivable_fraction, 4), "centreline": points, "lookahead": look,
                  "curvature": round(d.curvature, 4), "lost": d.hold}
        overlay = {"mask": mask, "mask_top": self.spec.crop_top * frame_hw[0] / self.spec.height,
                   "centreline": points, "lookahead": look}
        if d.hold is not None:
            return PilotResult(0.0, 0.0, d.hold, record, overlay)
        return PilotResult(d.steering, d.throttle, None, record, overlay)
