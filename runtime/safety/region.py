"""The path region: where in the camera frame an obstacle stops the car."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np


class PathRegion:
    """A convex polygon of (x, y) points in the camera frame's normalised coordinates (0..1, from
    the top-left). :meth:`overlap` is the fraction of a box's area inside it (OpenCV's
    ``intersectConvexConvex``). Raises ``ValueError`` for fewer than 3 points, a point outside
    [0, 1] or a polygon that is not convex or has no area."""

    def __init__(self, points: Sequence[Sequence[float]]) -> None:
        pts = np.asarray(points, np.float32).reshape(-1, 2)
        if pts.shape[0] < 3:
            raise ValueError(f"safety.region needs at least 3 [x, y] points, got {pts.tolist()}")
        if not ((pts >= 0) & (pts <= 1)).all():
            raise ValueError(f"safety.region points must be in [0, 1] (normalised frame coordinates): {pts.tolist()}")
        if cv2.contourArea(pts) <= 0 or not cv2.isContourConvex(pts):
            raise ValueError(f"safety.region {pts.tolist()} must be a convex polygon with an area, its points in order")
        self.points = pts

    def overlap(self, x1: float, y1: float, x2: float, y2: float) -> float:
        """The fraction (0..1) of the box x1 < x2, y1 < y2 (normalised) that lies inside the region."""
        area = max(0.0, x2 - x1) * max(0.0, y2 - y1)
        if area <= 0:
            return 0.0
        box = np.asarray([[x1, y1], [x2, y1], [x2, y2], [x1, y2]], np.float32)
        inter, _ = cv2.intersectConvexConvex(box, self.points)
        return float(min(1.0, max(0.0, inter / area)))
