"""The ``preprocess`` section of an image input: how a camera frame becomes the model input."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from runtime.manifest.errors import BundleError

COLORS = ("RGB", "BGR", "GRAY")


@dataclass(frozen=True)
class PreprocessSpec:
    """How a camera frame (BGR, as OpenCV delivers it) becomes the model input.

    Order: resize the whole frame to ``width`` x ``height``; drop ``crop_top`` rows from the top
    (sky, bonnet-free horizon); convert to ``color`` (RGB, BGR, or GRAY: one channel, OpenCV's
    BT.601 luma as donkeycar's ``IMAGE_DEPTH = 1`` uses); ``(x * scale - mean) / std`` per channel.
    The model input is therefore ``(height - crop_top, width, channels)`` before the layout. ``model_rescales`` is true when
    the model normalises inside itself (a ``Rescaling`` layer); then scale is 1 and the model gets
    raw 0..255 values. Raises :class:`BundleError` for a non-positive size, ``crop_top`` outside
    ``[0, height)``, an unknown color, or ``mean``/``std`` without 3 values (or a zero ``std``).
    """

    width: int
    height: int
    crop_top: int = 0
    color: str = "RGB"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    model_rescales: bool = False

    def __post_init__(self) -> None:
        if self.width <= 0 or self.height <= 0:
            raise BundleError(f"preprocess: width and height must be positive, got {self.width}x{self.height}")
        if not 0 <= self.crop_top < self.height:
            raise BundleError(f"preprocess: crop_top={self.crop_top} must be in [0, height={self.height})")
        if self.color not in COLORS:
            raise BundleError(f"preprocess: color must be one of {', '.join(COLORS)}, got {self.color!r}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            raise BundleError("preprocess: mean and std need 3 values each and std must not be 0")

    @property
    def input_hw(self) -> tuple[int, int]:
        """(rows, columns) of the model input after the crop."""
        return (self.height - self.crop_top, self.width)

    @property
    def channels(self) -> int:
        """1 for GRAY, else 3."""
        return 1 if self.color == "GRAY" else 3

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PreprocessSpec:
        """Parse the manifest's ``preprocess`` object; :class:`BundleError` for an unknown or missing key or a
        bad value.
        """
        known = {"width", "height", "crop_top", "color", "scale", "mean", "std", "model_rescales"}
        unknown = set(d) - known
        if unknown:
            raise BundleError(f"preprocess: unknown keys {sorted(unknown)}")
        try:
            return cls(
                width=int(d["width"]),
                height=int(d["height"]),
                crop_top=int(d.get("crop_top", 0)),
                color=str(d.get("color", "RGB")).upper(),
                scale=float(d.get("scale", 1.0 / 255.0)),
                mean=_triple(d.get("mean", (0.0, 0.0, 0.0))),
                std=_triple(d.get("std", (1.0, 1.0, 1.0))),
                model_rescales=bool(d.get("model_rescales")),  # absent: False
            )
        except KeyError as e:
            raise BundleError(f"preprocess: missing key {e.args[0]!r}") from None

    def to_dict(self) -> dict[str, Any]:
        """The ``preprocess`` object as ``manifest.json`` stores it (``from_dict`` reads it back)."""
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d


def _triple(v: Any) -> tuple[float, float, float]:
    if isinstance(v, int | float):
        return (float(v), float(v), float(v))
    vals = [float(x) for x in v]
    if len(vals) != 3:
        raise BundleError(f"preprocess: expected 3 channel values, got {vals}")
    return (vals[0], vals[1], vals[2])
