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
        # (x * scale - mean) / std == x * a + b, folded once here. Broadcasting a (3,) array makes
        # numpy's inner loop 3 elements long (5x slower), so the per-channel case works on (H, W*3)
        # rows with the factors tiled to W*3, and equal channels use one scalar.
        std = np.asarray(spec.std, np.float32)
        a = (np.float32(spec.scale) / std).astype(np.float32)
        b = (-np.asarray(spec.mean, np.float32) / std).astype(np.float32)
        self._uniform = bool(np.all(a == a[0]) and np.all(b == b[0]))
        self._a_scalar, self._b_scalar = np.float32(a[0]), np.float32(b[0])
        self._a_row, self._b_row = np.tile(a, w), np.tile(b, w)
        self._identity = self._uniform and a[0] == 1.0 and b[0] == 0.0

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
        rows_in = self._colored.reshape(self._colored.shape[0], -1)
        rows_out = self.out[0].reshape(rows_in.shape)
        if self._identity:
            np.copyto(rows_out, rows_in, casting="unsafe")
        elif self._uniform:
            np.multiply(rows_in, self._a_scalar, out=rows_out, casting="unsafe")
            if self._b_scalar != 0.0:
                rows_out += self._b_scalar
        else:
            np.multiply(rows_in, self._a_row, out=rows_out, casting="unsafe")
            rows_out += self._b_row
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
