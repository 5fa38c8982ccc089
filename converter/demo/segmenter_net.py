"""The miniature LRASPP-MobileNetV3 network (see :mod:`converter.demo.segmenter`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from converter.demo.mobile_blocks import SeparableBlock, conv_bn


class MiniLRASPP(nn.Module):
    """(N, 3, H, W) normalised RGB -> ``{"out": (N, classes, H, W)}`` logits.

    Backbone strides 2, 4 (low-level features, ``2w`` channels), 8, 16 (high-level, ``4w``);
    LRASPP head with 32 inner channels; bilinear upsampling (``align_corners=False``) as torchvision's.
    """

    def __init__(self, width: int = 16, classes: int = 2, inner: int = 32) -> None:
        super().__init__()
        w = width
        self.stem = conv_bn(3, w, 3, 2)  # /2
        self.low = nn.Sequential(SeparableBlock(w, 2 * w, 2), SeparableBlock(2 * w, 2 * w))  # /4
        self.high = nn.Sequential(
            SeparableBlock(2 * w, 3 * w, 2), SeparableBlock(3 * w, 3 * w),  # /8
            SeparableBlock(3 * w, 4 * w, 2), SeparableBlock(4 * w, 4 * w), SeparableBlock(4 * w, 4 * w),  # /16
        )
        self.cbr = nn.Sequential(nn.Conv2d(4 * w, inner, 1, bias=False), nn.BatchNorm2d(inner), nn.ReLU())
        self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(4 * w, inner, 1, bias=False), nn.Sigmoid())
        self.low_classifier = nn.Conv2d(2 * w, classes, 1)
        self.high_classifier = nn.Conv2d(inner, classes, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Logits per pixel at the input's size, under ``"out"`` (torchvision's key)."""
        low = self.low(self.stem(x))
        high = self.high(low)
        y = self.cbr(high) * self.scale(high)
        y = F.interpolate(y, size=low.shape[-2:], mode="bilinear", align_corners=False)
        out = self.low_classifier(low) + self.high_classifier(y)
        return {"out": F.interpolate(out, size=x.shape[-2:], mode="bilinear", align_corners=False)}
