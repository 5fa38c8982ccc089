"""The stopping rule: which detections are obstacles in the path, and when a stop is lifted."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.manifest import PreprocessSpec
from runtime.perception import Detection
from runtime.safety.config import BACKGROUND, SafetyConfig
from runtime.safety.region import PathRegion


def to_frame(det: Detection, spec: PreprocessSpec) -> Detection:
    """A detection in the detector input's normalised coordinates (after its crop) -> the camera
    frame's normalised coordinates (the crop dropped the top ``crop_top`` of ``height`` rows)."""
    top = spec.crop_top / spec.height
    keep = 1.0 - top
    return Detection(det.x1, top + det.y1 * keep, det.x2, top + det.y2 * keep, det.score, det.class_id, det.label)


@dataclass(frozen=True)
class StopRule:
    """``[safety]``'s rule over detections in frame coordinates (see :class:`SafetyConfig`)."""

    classes: frozenset[str]
    min_score: float
    min_box_area: float
    min_overlap: float
    region: PathRegion

    @classmethod
    def from_config(cls, cfg: SafetyConfig, detector_classes: tuple[str, ...]) -> StopRule:
        """The rule for a detector naming ``detector_classes``; ``ValueError`` for a configured class the
        detector does not have (it could never stop the car)."""
        unknown = [c for c in cfg.classes if c not in detector_classes]
        if unknown:
            raise ValueError(f"safety.classes {unknown} are not classes of the detector "
                             f"({', '.join(detector_classes)}); fix [safety] classes")
        classes = cfg.classes or tuple(c for c in detector_classes if c not in BACKGROUND)
        return cls(frozenset(classes), cfg.min_score, cfg.min_box_area, cfg.min_overlap, PathRegion(cfg.region))

    def stops_for(self, det: Detection) -> bool:
        """True when ``det`` (frame-normalised) is a configured class, scored and sized enough, in the path."""
        return (det.label in self.classes and det.score >= self.min_score and det.area >= self.min_box_area
                and self.region.overlap(det.x1, det.y1, det.x2, det.y2) >= self.min_overlap)


class Hysteresis:
    """Blocked from the first hit; clear again after ``clear_frames`` verdicts in a row without a hit
    and ``clear_s`` seconds (capture times) since the last hit."""

    def __init__(self, clear_frames: int, clear_s: float) -> None:
        self.clear_frames, self.clear_s = clear_frames, clear_s
        self.blocked = False
        self._clean = 0
        self._t_hit = 0.0

    def update(self, hit: bool, t_capture: float) -> bool:
        """One detector frame's outcome (``t_capture``: its capture time, s); whether the car is blocked."""
        if hit:
            self.blocked, self._clean, self._t_hit = True, 0, t_capture
        elif self.blocked:
            self._clean += 1
            if self._clean >= self.clear_frames and t_capture - self._t_hit >= self.clear_s:
                self.blocked = False
        return self.blocked
