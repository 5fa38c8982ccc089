"""Camera frame -> model input, exactly as the manifest says. The one function everyone shares.

The runtime calls a :class:`Preprocessor` per frame (vectorised, into a preallocated buffer, no
allocation in the loop); calibration and benchmarks call :func:`preprocess_frame`, which runs the
same code, so INT8 calibration sees frames exactly as the car does.
"""

from __future__ import annotations

import cv2
import numpy as np

from runtime.manifest import PreprocessSpec


class Preprocessor:
    """Reusable, allocation-free preprocessing for one spec. Not thread-safe: one per thread."""

    def __init__(self, spec: PreprocessSpec) -> None:
        self.spec = spec
        h, w = spec.height, spec.width
        self._resized = np.empty((h, w, 3), np.uint8)
        self._colored = np.empty((h - spec.crop_top, w, 3), np.uint8)
        self.out = np.empty((1, h - spec.crop_top, w, 3), np.float32)
        # (x * scale - mean) / std == x * a + b, folded once here.
        std = np.asarray(spec.std, np.float32)
        self._a = (np.float32(spec.scale) / std).astype(np.float32)
        self._b = (-np.asarray(spec.mean, np.float32) / std).astype(np.float32)
        self._identity = bool(np.all(self._a == 1.0) and np.all(self._b == 0.0))

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Return the (1, H, W, 3) float32 input. The array is reused: copy it to keep it."""
        if frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            raise ValueError(f"expected an HxWx3 uint8 BGR frame, got {frame_bgr.shape} {frame_bgr.dtype}")
        spec = self.spec
        if frame_bgr.shape[:2] == (spec.height, spec.width):
            resized = frame_bgr
        else:
            resized = cv2.resize(frame_bgr, (spec.width, spec.height), dst=self._resized, interpolation=cv2.INTER_AREA)
        cropped = resized[spec.crop_top :]
        if spec.color == "RGB":
            cv2.cvtColor(cropped, cv2.COLOR_BGR2RGB, dst=self._colored)
        else:
            np.copyto(self._colored, cropped)
        out = self.out[0]
        if self._identity:
            np.copyto(out, self._colored, casting="unsafe")
        else:
            np.multiply(self._colored, self._a, out=out, casting="unsafe")
            out += self._b
        return self.out


def preprocess_frame(frame_bgr: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """One frame -> a fresh (1, H, W, 3) float32 array (same code path as the runtime)."""
    return Preprocessor(spec)(frame_bgr).copy()


def preprocess_batch(frames_bgr: list[np.ndarray] | np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """Many frames -> (N, H, W, 3) float32, e.g. for calibration sets and parity samples."""
    pre = Preprocessor(spec)
    return np.concatenate([pre(f).copy() for f in frames_bgr], axis=0)


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Float input -> integer input for builds with integer I/O (INT8 TFLite)."""
    info = np.iinfo(np.dtype(dtype))
    q = np.round(x / scale + zero_point)
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
