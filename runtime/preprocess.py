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
    """Reusable, allocation-free preprocessing for one spec. Not thread-safe: one per thread.

    Output: ``(1, H, W, C)`` float32 for layout NHWC (Keras), ``(1, C, H, W)`` for NCHW (PyTorch),
    with H, W = ``spec.input_hw`` and C = ``spec.channels`` (1 for GRAY). Raises ``ValueError``
    for a frame that is not HxWx3 uint8 BGR.
    """

    def __init__(self, spec: PreprocessSpec, layout: str = "NHWC") -> None:
        if layout not in ("NHWC", "NCHW"):
            raise ValueError(f"preprocessing makes NHWC or NCHW images, not {layout!r}")
        self.spec, self.layout = spec, layout
        h, w, c = spec.height, spec.width, spec.channels
        self._resized = np.empty((h, w, 3), np.uint8)
        self._colored = np.empty((h - spec.crop_top, w, c), np.uint8)
        hwc = np.empty((1, h - spec.crop_top, w, c), np.float32)
        # NCHW: normalise into an HWC scratch buffer, then one transposing copy into the output.
        self._hwc = hwc
        self.out = hwc if layout == "NHWC" else np.empty((1, c, h - spec.crop_top, w), np.float32)
        # (x * scale - mean) / std == x * a + b, folded once here. Broadcasting a (3,) array makes
        # numpy's inner loop 3 elements long (5x slower), so the per-channel case works on (H, W*C)
        # rows with the factors tiled to W*C, and equal channels use one scalar.
        std = np.asarray(spec.std, np.float32)[:c]
        a = np.float32(spec.scale) / std  # float32 / float32: float32
        b = -np.asarray(spec.mean, np.float32)[:c] / std
        self._uniform = bool(np.all(a == a[0]) and np.all(b == b[0]))
        self._a_scalar, self._b_scalar = np.float32(a[0]), np.float32(b[0])
        self._a_row, self._b_row = np.tile(a, w), np.tile(b, w)
        self._identity = self._uniform and a[0] == 1.0 and b[0] == 0.0
        self._rows = (h - spec.crop_top, w * c)  # the image as rows of W*C values

    def __call__(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Return the model input for one frame. The array is reused: copy it to keep it."""
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
        elif spec.color == "GRAY":
            cv2.cvtColor(cropped, cv2.COLOR_BGR2GRAY, dst=self._colored[:, :, 0])
        else:
            np.copyto(self._colored, cropped)
        rows_in = self._colored.reshape(self._rows)
        rows_out = self._hwc[0].reshape(rows_in.shape)
        if self._identity:
            np.copyto(rows_out, rows_in)  # uint8 -> float32: a safe cast
        elif self._uniform:
            np.multiply(rows_in, self._a_scalar, out=rows_out)
            if self._b_scalar != 0.0:
                rows_out += self._b_scalar
        else:
            np.multiply(rows_in, self._a_row, out=rows_out)
            rows_out += self._b_row
        if self.out is not self._hwc:
            np.copyto(self.out[0], self._hwc[0].transpose(2, 0, 1))
        return self.out


def preprocess_frame(frame_bgr: np.ndarray, spec: PreprocessSpec, layout: str = "NHWC") -> np.ndarray:
    """One frame -> a fresh (1, H, W, C) (or NCHW) float32 array (same code path as the runtime)."""
    return Preprocessor(spec, layout)(frame_bgr).copy()


def preprocess_batch(frames_bgr: list[np.ndarray] | np.ndarray, spec: PreprocessSpec, layout: str = "NHWC") -> np.ndarray:
    """Many frames -> (N, H, W, C) (or NCHW) float32, e.g. for calibration sets and parity samples."""
    pre = Preprocessor(spec, layout)
    return np.concatenate([pre(f).copy() for f in frames_bgr])


def sequence_windows(frames: np.ndarray, length: int) -> np.ndarray:
    """(N, ...) consecutive preprocessed frames -> (N, length, ...): sample i holds frames
    i-length+1 .. i, oldest first; before the start the first frame repeats (the car instead waits
    in neutral until it has ``length`` frames)."""
    idx = np.arange(frames.shape[0])[:, None] + np.arange(-length + 1, 1)[None, :]
    return frames[np.clip(idx, 0, None)]


def image_layout(layout: str) -> str:
    """The per-frame layout of an input layout: NTHWC -> NHWC, NTCHW -> NCHW."""
    return layout.replace("T", "")


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype: str) -> np.ndarray:
    """Float input -> integer input for builds with integer I/O (INT8 TFLite):
    ``q = clip(round(x / scale) + zero_point)`` per the TFLite quantization spec
    (https://ai.google.dev/edge/litert/models/quantization_spec), rounding half away from zero as
    TFLite's reference kernels do (``TfLiteRound``, i.e. ``std::round``), not numpy's half to even.
    Same shape as ``x``; ``dtype`` is the tensor's numpy integer dtype name (``int8``, ``uint8``),
    whose range bounds the clip."""
    info = np.iinfo(np.dtype(dtype))
    v = x / scale
    whole = np.trunc(v)
    # Ties are detected exactly (v - trunc(v) is exact); floor(|v| + 0.5) would round 0.49999997 up.
    q = np.where(np.abs(v - whole) == 0.5, whole + np.sign(v), np.rint(v)) + zero_point
    return np.clip(q, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Integer output -> float32 of the same shape: ``(q - zero_point) * scale`` (TFLite quantization spec)."""
    return ((q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)).astype(np.float32)
