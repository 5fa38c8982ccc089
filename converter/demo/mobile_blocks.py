"""MobileNet-style building blocks in plain PyTorch (torchvision does not import beside this torch).

Only ops every edge format carries: Conv2d, BatchNorm2d (folded on export), ReLU/Hardswish.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: bool = True) -> nn.Sequential:
    """Conv k x k (same padding) -> BatchNorm -> Hardswish (as MobileNetV3's stem); (N, cin, H, W) ->
    (N, cout, ceil(H / stride), ceil(W / stride))."""
    layers: list[Any] = [nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.Hardswish())
    return nn.Sequential(*layers)


class SeparableBlock(nn.Module):
    """Depthwise-separable block: depthwise 3x3 (stride ``stride``) then pointwise 1x1, each with
    BatchNorm and Hardswish; a residual add when the shape is kept. (N, cin, H, W) -> (N, cout, H / s, W / s)."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.depthwise = conv_bn(cin, cin, 3, stride, groups=cin)
        self.pointwise = conv_bn(cin, cout, 1)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block."""
        y = self.pointwise(self.depthwise(x))
        return x + y if self.residual else y
