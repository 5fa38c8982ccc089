"""The ``[safety]`` config section: the detector bundle beside the pilot and its stopping rule."""

from __future__ import annotations

from dataclasses import dataclass

from runtime.backend_names import BACKEND_NAMES, canonical_backend

# The path ahead in the camera frame (x, y normalised, 0 at the top-left): a trapezoid from just
# below the horizon of a forward camera down to the bottom of the image.
DEFAULT_REGION: tuple[tuple[float, float], ...] = ((0.42, 0.35), (0.58, 0.35), (0.95, 1.0), (0.05, 1.0))
BACKGROUND = ("background", "__background__")  # torchvision's class 0: never an obstacle


@dataclass
class SafetyConfig:
    """``rc-runtime --safety BUNDLE`` / ``[safety]``: stop the car for obstacles a detector sees.

    ``bundle``: a detection bundle ("" = no safety layer); ``backend``, ``format``, ``threads`` as in
    ``[model]`` for it (``threads`` 1 by default: the pilot and the detector share the CPU);
    ``nice``: the detector thread runs this many nice steps below the process (Linux; 0 = as the
    process, 10 by default), so that on a busy CPU the pilot's thread is scheduled first.
    A detection stops the car when its class is in ``classes`` (empty: every class but background),
    its ``score`` >= ``min_score``, its box covers >= ``min_box_area`` of the frame and at least
    ``min_overlap`` of the box lies inside ``region``, a convex polygon of [x, y] points in the camera
    frame's normalised coordinates. The stop is lifted after ``clear_frames`` detector frames in a
    row without such a hit *and* ``clear_s`` seconds (capture time) since the last one. A verdict
    older than ``max_verdict_age_ms`` (its frame's capture time before the driven frame's; 0 = the
    watchdog deadline) means neutral (``safety.stale``). ``min_interval_ms``: the detector's rate
    cap; it judges the newest frame at most this often (capture time), skipping the frames between,
    so that a camera (or a benchmark) faster than 1000 / ``min_interval_ms`` Hz does not make it
    take a CPU from the pilot; at most half the verdict age limit (a stop may come this much later;
    the stale check still holds every drive). Raises ``ValueError`` naming the key.
    """

    bundle: str = ""
    backend: str = "auto"
    format: str = ""
    threads: int = 1
    nice: int = 10
    classes: tuple[str, ...] = ()
    min_score: float = 0.5
    min_box_area: float = 0.0005
    region: tuple[tuple[float, float], ...] = DEFAULT_REGION
    min_overlap: float = 0.2
    clear_frames: int = 5
    clear_s: float = 0.3
    max_verdict_age_ms: float = 0.0
    min_interval_ms: float = 10.0

    def __post_init__(self) -> None:
        self.backend = canonical_backend(self.backend)
        if self.backend not in ("auto", *BACKEND_NAMES):
            raise ValueError(f"safety.backend = {self.backend!r}; choose from auto, {', '.join(BACKEND_NAMES)}")
        if self.threads < 0:
            raise ValueError(f"safety.threads = {self.threads} must be >= 0")
        if not 0 <= self.nice <= 19:
            raise ValueError(f"safety.nice = {self.nice} must be in [0, 19] (nice steps below the process)")
        self.classes = tuple(str(c) for c in self.classes)
        self.region = tuple((float(p[0]), float(p[1])) for p in self.region)
        for name in ("min_score", "min_box_area", "min_overlap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"safety.{name} = {getattr(self, name)} must be in [0, 1]")
        if self.clear_frames < 1:
            raise ValueError(f"safety.clear_frames = {self.clear_frames} must be >= 1")
        if self.clear_s < 0 or self.max_verdict_age_ms < 0:
            raise ValueError("safety.clear_s and safety.max_verdict_age_ms must be >= 0")
        if self.min_interval_ms < 0:
            raise ValueError(f"safety.min_interval_ms = {self.min_interval_ms} must be >= 0")
        if self.max_verdict_age_ms:
            self.check_interval(self.max_verdict_age_ms, "safety.max_verdict_age_ms")
        from runtime.safety.region import PathRegion  # checks the polygon (ValueError)

        PathRegion(self.region)

    def check_interval(self, max_age_ms: float, name: str) -> None:
        """``ValueError`` when ``min_interval_ms`` leaves the detector less than half of the verdict
        age limit ``max_age_ms`` (``name``: where that limit comes from) for its own latency."""
        if self.min_interval_ms > max_age_ms / 2:
            raise ValueError(f"safety.min_interval_ms = {self.min_interval_ms:g} must be at most half of {name} "
                             f"({max_age_ms:g} ms): lower it, or 0 to judge every frame")
