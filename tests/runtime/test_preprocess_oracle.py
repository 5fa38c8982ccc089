"""Preprocessing and (de)quantization against independent oracles.

The expected values here are computed by plain per-pixel loops written from the manifest's words
(``PreprocessSpec``: resize, drop ``crop_top`` rows, convert to ``color``, ``(x * scale - mean) /
std`` per channel of the *converted* image; NHWC or NCHW) and from the TFLite quantization spec
(https://ai.google.dev/edge/litert/models/quantization_spec: ``real = scale * (q - zero_point)``),
never by calling ``runtime.preprocess``'s own code. A bug in the shared preprocessing (colour order
swapped, per-channel factors laid out wrongly) would otherwise be invisible: calibration, parity
and the car all call the same function.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from runtime.manifest import PreprocessSpec
from runtime.preprocess import Preprocessor, dequantize, preprocess_batch, preprocess_frame, quantize

# Per-channel constants chosen so that every channel's factor differs (a swapped or mis-tiled
# factor changes the result by far more than float rounding).
MEAN = (0.1, 0.45, 0.8)
STD = (0.2, 0.5, 0.9)

# OpenCV's BGR->GRAY: BT.601 luma (https://docs.opencv.org/4.x/de/d25/imgproc_color_conversions.html).
LUMA = {"R": 0.299, "G": 0.587, "B": 0.114}


def golden_frame(h: int, w: int, seed: int) -> np.ndarray:
    """A BGR uint8 frame whose three channels carry unrelated values (a colour swap shows)."""
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def hand_preprocess(frame_bgr: np.ndarray, spec: PreprocessSpec, layout: str) -> np.ndarray:
    """The manifest's formula, one pixel at a time. Only frames already at (height, width) or an
    exact integer multiple of it (block averaging: what INTER_AREA does for integer factors)."""
    fh, fw = frame_bgr.shape[:2]
    fy, fx = fh // spec.height, fw // spec.width
    assert fy * spec.height == fh and fx * spec.width == fw, "oracle handles integer factors only"
    rows = spec.height - spec.crop_top
    chans = ["Y"] if spec.color == "GRAY" else list(spec.color)  # e.g. ["R", "G", "B"]
    out = np.zeros((rows, spec.width, len(chans)), np.float64)
    for y in range(rows):
        for x in range(spec.width):
            block = frame_bgr[(y + spec.crop_top) * fy:(y + spec.crop_top + 1) * fy, x * fx:(x + 1) * fx]
            bgr = [float(block[:, :, i].astype(np.float64).mean()) for i in range(3)]
            # uint8 resize result: round half up (OpenCV's fixed-point area average)
            if fy * fx > 1:
                bgr = [math.floor(v + 0.5) for v in bgr]
            px = {"B": bgr[0], "G": bgr[1], "R": bgr[2]}
            for c, name in enumerate(chans):
                v = float(round(sum(LUMA[k] * px[k] for k in "RGB"))) if name == "Y" else px[name]
                out[y, x, c] = (v * spec.scale - spec.mean[c]) / spec.std[c]
    if layout == "NCHW":
        nchw = np.zeros((1, len(chans), rows, spec.width), np.float64)
        for c in range(len(chans)):
            for y in range(rows):
                for x in range(spec.width):
                    nchw[0, c, y, x] = out[y, x, c]
        return nchw
    return out[None]


CASES = [
    # (frame h, w, spec kwargs, layout)
    ((6, 8), dict(width=8, height=6, color="RGB", mean=MEAN, std=STD), "NHWC"),
    ((6, 8), dict(width=8, height=6, color="BGR", mean=MEAN, std=STD), "NHWC"),
    ((6, 8), dict(width=8, height=6, color="RGB", mean=MEAN, std=STD, crop_top=2), "NCHW"),
    ((6, 8), dict(width=8, height=6, color="BGR", mean=MEAN, std=STD, crop_top=1), "NCHW"),
    ((12, 16), dict(width=8, height=6, color="RGB", mean=MEAN, std=STD, crop_top=3), "NHWC"),
    ((6, 8), dict(width=8, height=6, color="RGB", scale=1.0), "NHWC"),  # model rescales inside
    ((6, 8), dict(width=8, height=6, color="BGR", scale=2.0 / 255, mean=(1, 1, 1), std=(1, 1, 1)), "NCHW"),
    ((6, 8), dict(width=8, height=6, color="RGB", mean=(-1, -1, -1), std=(1, 1, 1)), "NHWC"),  # offset +1
    ((6, 8), dict(width=8, height=6), "NHWC"),  # the defaults: x / 255
    ((6, 8), dict(width=8, height=6, crop_top=2), "NCHW"),
    ((6, 8), dict(width=8, height=6, color="BGR", scale=1.0, mean=(-1, -1, -1)), "NHWC"),  # raw + 1
    ((6, 8), dict(width=8, height=6, mean=(0.1, 0.2, 0.3)), "NHWC"),  # one factor, per-channel offsets
]


@pytest.mark.parametrize(("frame_hw", "kw", "layout"), CASES)
def test_matches_the_hand_formula(frame_hw: tuple[int, int], kw: dict[str, object], layout: str) -> None:
    spec = PreprocessSpec(**kw)  # type: ignore[arg-type]
    frame = golden_frame(*frame_hw, seed=len(repr(kw)) + frame_hw[0])  # deterministic
    if frame_hw != (spec.height, spec.width):
        # Integer downscale: make every block uniform so the area average is exact (no rounding).
        frame = np.kron(golden_frame(spec.height, spec.width, seed=5), np.ones((2, 2, 1), np.uint8))
    got = preprocess_frame(frame, spec, layout)
    want = hand_preprocess(frame, spec, layout)
    assert got.dtype == np.float32 and got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


@pytest.mark.parametrize("layout", ["NHWC", "NCHW"])
def test_gray_matches_bt601_luma(layout: str) -> None:
    spec = PreprocessSpec(width=8, height=6, crop_top=1, color="GRAY", mean=(0.2, 0.2, 0.2), std=(0.5, 0.5, 0.5))
    frame = golden_frame(6, 8, seed=11)
    got = preprocess_frame(frame, spec, layout)
    want = hand_preprocess(frame, spec, layout)
    assert got.shape == want.shape == ((1, 5, 8, 1) if layout == "NHWC" else (1, 1, 5, 8))
    # OpenCV computes luma in 14-bit fixed point: its rounding may differ from ours by one level.
    np.testing.assert_allclose(got, want, rtol=0, atol=1.0 / 255 / 0.5 + 1e-6)


def test_a_literal_pixel() -> None:
    """One pixel worked out on paper: BGR (0, 51, 255) -> RGB (255, 51, 0) / 255 -> (1, .2, 0)."""
    spec = PreprocessSpec(width=2, height=1, color="RGB", mean=(0.5, 0.1, 0.0), std=(0.5, 0.2, 0.25))
    frame = np.array([[[0, 51, 255], [255, 0, 0]]], np.uint8)  # pixel 0 red, pixel 1 blue
    got = preprocess_frame(frame, spec, "NHWC")
    # red:  R=(1-0.5)/0.5=1, G=(0.2-0.1)/0.2=0.5, B=(0-0)/0.25=0
    # blue: R=(0-0.5)/0.5=-1, G=(0-0.1)/0.2=-0.5, B=(1-0)/0.25=4
    np.testing.assert_allclose(got[0], [[[1.0, 0.5, 0.0], [-1.0, -0.5, 4.0]]], atol=1e-6)
    bgr = preprocess_frame(frame, PreprocessSpec(width=2, height=1, color="BGR", scale=1.0), "NCHW")
    np.testing.assert_array_equal(bgr[0, :, 0], [[0, 255], [51, 0], [255, 0]])  # channel-major


def test_the_reused_buffer_and_the_batch_agree_with_the_oracle() -> None:
    spec = PreprocessSpec(width=8, height=6, color="RGB", mean=MEAN, std=STD, crop_top=2)
    frames = [golden_frame(6, 8, seed=s) for s in range(3)]
    pre = Preprocessor(spec, "NCHW")
    for f in frames:  # the runtime's path: one buffer reused frame after frame
        np.testing.assert_allclose(pre(f), hand_preprocess(f, spec, "NCHW"), atol=1e-5)
    batch = preprocess_batch(frames, spec, "NCHW")
    np.testing.assert_allclose(batch, np.concatenate([hand_preprocess(f, spec, "NCHW") for f in frames]), atol=1e-5)


# -- quantization: the TFLite spec's formula -----------------------------------------------------

def tflite_quantize(x: float, scale: float, zero_point: int, lo: int, hi: int) -> int:
    """q = clamp(round(x / scale) + zero_point, lo, hi), rounding half away from zero (TFLite's
    ``TfLiteRound`` is ``std::round``; Python's ``round`` would round half to even)."""
    v = float(np.float32(x) / np.float32(scale))  # the kernel divides in float32
    r = math.floor(abs(v) + 0.5) if abs(v) % 1 == 0.5 else round(abs(v))
    return min(max(int(math.copysign(r, v)) + zero_point, lo), hi)


@pytest.mark.parametrize(("dtype", "zp"), [("int8", -128), ("int8", 3), ("uint8", 128)])
def test_quantize_rounds_exact_ties_away_from_zero_like_tflite(dtype: str, zp: int) -> None:
    scale = 0.5  # a power of two: x / scale is exactly half-way for these x
    xs = np.array([0.25, 0.75, 1.25, -0.25, -0.75, -1.25, np.nextafter(np.float32(0.25), np.float32(0))], np.float32)
    q = quantize(xs, scale, zp, dtype).astype(int)
    info = np.iinfo(np.dtype(dtype))
    by_hand = [zp + 1, zp + 2, zp + 3, zp - 1, zp - 2, zp - 3, zp + 0]  # half to even: +0, +2, +2, -0, -2, -2
    assert q.tolist() == np.clip(by_hand, info.min, info.max).tolist()
    assert q.tolist() == [tflite_quantize(float(v), scale, zp, int(info.min), int(info.max)) for v in xs]


@pytest.mark.parametrize(("dtype", "scale", "zp"), [("int8", 1 / 255, -128), ("int8", 0.0137, 5), ("uint8", 0.02, 128)])
def test_quantize_and_dequantize_follow_the_tflite_spec(dtype: str, scale: float, zp: int) -> None:
    info = np.iinfo(np.dtype(dtype))
    # Values between representable points (never exactly half-way, where rounding modes differ),
    # and far outside the range (must saturate, not wrap).
    xs = np.array([-100.0, -1.01, -0.3, 0.0, 0.26, 0.5 + scale / 3, 0.999, 1.7, 100.0], np.float32)
    q = quantize(xs, scale, zp, dtype)
    assert q.dtype == np.dtype(dtype)
    want = [tflite_quantize(float(v), scale, zp, int(info.min), int(info.max)) for v in xs]
    assert q.tolist() == want
    assert q[0] == info.min and q[-1] == info.max  # saturated
    deq = dequantize(q, scale, zp)
    assert deq.dtype == np.float32
    np.testing.assert_allclose(deq, [scale * (int(v) - zp) for v in want], rtol=1e-6, atol=1e-7)
    inside = (xs >= scale * (info.min - zp)) & (xs <= scale * (info.max - zp))
    assert np.all(np.abs(deq[inside] - xs[inside]) <= scale / 2 + 1e-6)  # round trip within half a step


def test_area_downscale_averages_whole_blocks() -> None:
    """4x smaller: INTER_AREA means every 4x4 block's mean (a bilinear resize would not)."""
    spec = PreprocessSpec(width=4, height=3, color="RGB", mean=MEAN, std=STD, crop_top=1)
    frame = golden_frame(12, 16, seed=21)
    got = preprocess_frame(frame, spec, "NHWC")
    want = hand_preprocess(frame, spec, "NHWC")
    # OpenCV rounds the block mean in fixed point: allow one grey level.
    np.testing.assert_allclose(got, want, rtol=0, atol=1.01 / 255 / min(STD))


@pytest.mark.parametrize("frame", [
    np.zeros((6, 8, 3), np.float32),  # not uint8
    np.zeros((6, 8), np.uint8),  # grey, 2-D
    np.zeros((6, 8, 4), np.uint8),  # BGRA
])
def test_a_frame_that_is_not_hxwx3_uint8_bgr_is_refused(frame: np.ndarray) -> None:
    with pytest.raises(ValueError, match="expected an HxWx3 uint8 BGR frame"):
        preprocess_frame(frame, PreprocessSpec(width=8, height=6), "NHWC")


def test_gray_raw_values_for_a_model_that_rescales() -> None:
    spec = PreprocessSpec(width=8, height=6, color="GRAY", scale=1.0)
    frame = golden_frame(6, 8, seed=12)
    got = preprocess_frame(frame, spec, "NHWC")
    np.testing.assert_allclose(got, hand_preprocess(frame, spec, "NHWC"), rtol=0, atol=1.0 + 1e-6)  # luma rounding


def test_the_folded_float32_arithmetic_bit_for_bit() -> None:
    """``x * a + b`` with a = scale / std and b = -mean / std folded in float32: calibration caches and
    parity references made by one version hold for the next only if these bits do not move."""
    spec = PreprocessSpec(width=8, height=6, color="RGB", scale=1 / 255, mean=(0.485, 0.456, 0.406),
                          std=(0.229, 0.224, 0.225))
    frame = golden_frame(6, 8, seed=13)
    std = np.asarray(spec.std, np.float32)
    a, b = np.float32(spec.scale) / std, -np.asarray(spec.mean, np.float32) / std
    want = frame[:, :, ::-1].astype(np.float32) * a + b
    np.testing.assert_array_equal(preprocess_frame(frame, spec)[0], want)


def test_nhwc_is_the_default_layout() -> None:
    spec = PreprocessSpec(width=8, height=6, crop_top=1)
    frame = golden_frame(6, 8, seed=14)
    assert Preprocessor(spec)(frame).shape == preprocess_frame(frame, spec).shape == (1, 5, 8, 3)
    assert preprocess_batch([frame, frame], spec).shape == (2, 5, 8, 3)


def test_an_unknown_layout_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^preprocessing makes NHWC or NCHW images, not 'NTHWC'$"):
        Preprocessor(PreprocessSpec(width=8, height=6), "NTHWC")


def test_a_resize_lands_in_the_preallocated_buffer() -> None:
    """No allocation per frame: the resized frame is written into the buffer made up front."""
    spec = PreprocessSpec(width=8, height=6)
    pre = Preprocessor(spec)
    frame = golden_frame(12, 16, seed=15)
    pre(frame)
    assert pre._resized.dtype == np.uint8
    np.testing.assert_array_equal(pre._resized, cv2.resize(frame, (8, 6), interpolation=cv2.INTER_AREA))
