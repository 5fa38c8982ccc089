"""The preprocessing flags shared by convert-model and rc-calibrate (same names, same parsing)."""

from __future__ import annotations

import argparse
from typing import Any

FLAGS = ("input_size", "crop_top", "color", "scale", "mean", "std")


def _size(text: str) -> tuple[int, int]:
    w, sep, h = text.lower().partition("x")
    if not sep or not w.isdigit() or not h.isdigit():
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT, e.g. 160x120, got {text!r}")
    return int(w), int(h)


def _floats(text: str) -> list[float]:
    try:
        vals = [float(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected numbers separated by commas, got {text!r}") from None
    if len(vals) not in (1, 3):
        raise argparse.ArgumentTypeError("give 1 or 3 values")
    return vals * 3 if len(vals) == 1 else vals


def add_preprocess_flags(group: Any) -> None:
    """--input-size, --crop-top, --color, --scale, --mean, --std on a parser or argument group."""
    group.add_argument("--input-size", type=_size, help="resize camera frames to WIDTHxHEIGHT before cropping")
    group.add_argument("--crop-top", type=int, help="rows removed from the top after resizing (default 0)")
    group.add_argument("--color", choices=["RGB", "BGR", "GRAY"], type=str.upper,
                       help="colour the model expects (default RGB; GRAY for one-channel pilots)")
    group.add_argument("--scale", type=float, help="multiplier applied to 0..255 pixels (default 1/255)")
    group.add_argument("--mean", type=_floats, help="per-channel mean subtracted after scaling, 1 or 3 values")
    group.add_argument("--std", type=_floats, help="per-channel std divided after the mean, 1 or 3 values")


def given_flags(args: argparse.Namespace) -> list[str]:
    """The preprocessing flags given on this command line, as typed (``--crop-top``, ...)."""
    return [f"--{k.replace('_', '-')}" for k in FLAGS if getattr(args, k, None) is not None]


def preprocess_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The flags that were given, as :class:`~runtime.manifest.PreprocessSpec` keys."""
    out: dict[str, Any] = {}
    if args.input_size is not None:
        out["width"], out["height"] = args.input_size
    for key in FLAGS[1:]:
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    return out
