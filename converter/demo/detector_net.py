"""The miniature CenterNet-style cone detector network (see :mod:`converter.demo.detector`)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from converter.demo.mobile_blocks import SeparableBlock, conv_bn

STRIDE = 8  # input pixels per grid cell


class ConeDetector(nn.Module):
    """(N, 3, H, W) normalised RGB -> detections, torchvision-style.

    A grid head at stride 8 with ``C = classes - 1`` heat maps (one per foreground class), then box
    size (log of width and height in cells) and the centre's offset inside its cell (logits of [0, 1)).

    - ``train()`` mode: ``forward`` returns the raw head, ``{"heatmap": (N, C, h, w) logits, "size":
      (N, 2, h, w), "offset": (N, 2, h, w)}`` (the losses are :func:`converter.demo.detector.detector_loss`);
    - ``eval()`` mode: ``forward`` decodes inside the graph, as torchvision's detectors do, into one dict
      per image ``{"boxes": (n, 4) float32 x1, y1, x2, y2 in input pixels, "scores": (n,), "labels": (n,)
      int64}`` (label 0 is background, so cones are 1): the local maxima of the heat maps (3x3 max-pool,
      CenterNet's NMS), the ``max_detections`` best, those above ``score_threshold``; n is data-dependent.
    """

    def __init__(self, width: int = 16, classes: int = 2, max_detections: int = 10,
                 score_threshold: float = 0.4) -> None:
        super().__init__()
        w = width
        self.classes = classes
        self.max_detections = max_detections
        self.score_threshold = score_threshold
        self.backbone = nn.Sequential(
            # A 4x4 stride-4 "patchify" stem (as YOLOv5's Focus / ConvNeXt's): the full-resolution layers
            # dominate CPU training time, and a cone is several pixels wide anyway.
            nn.Conv2d(3, w, 4, 4, bias=False), nn.BatchNorm2d(w), nn.Hardswish(),  # /4
            SeparableBlock(w, 2 * w), SeparableBlock(2 * w, 2 * w),
            SeparableBlock(2 * w, 3 * w, 2), SeparableBlock(3 * w, 3 * w), SeparableBlock(3 * w, 3 * w),  # /8
        )
        last = nn.Conv2d(32, classes - 1 + 4, 1)
        with torch.no_grad():  # heat map prior 0.1 (CenterNet): stable focal loss at the start
            bias = last.bias
            assert bias is not None  # Conv2d(bias=True)
            bias[: classes - 1].fill_(-2.2)
        self.head = nn.Sequential(conv_bn(3 * w, 3 * w, 3, groups=3 * w), conv_bn(3 * w, 32, 1), last)

    def raw(self, x: torch.Tensor) -> torch.Tensor:
        """The head: (N, classes - 1 + 4, H / 8, W / 8) logits."""
        return self.head(self.backbone(x))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor] | list[dict[str, torch.Tensor]]:
        """Raw head (training) or decoded detections per image (eval); see the class docstring."""
        head = self.raw(x)
        c = self.classes - 1
        if self.training:
            return {"heatmap": head[:, :c], "size": head[:, c:c + 2], "offset": head[:, c + 2:c + 4]}
        return self.postprocess(head, int(x.shape[-1]), int(x.shape[-2]))

    def postprocess(self, head: torch.Tensor, width: int, height: int) -> list[dict[str, torch.Tensor]]:
        """Decode the raw head of images ``width`` x ``height`` into detections per image."""
        n, _, gh, gw = head.shape
        c = self.classes - 1
        heat = torch.sigmoid(head[:, :c])
        peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat).to(heat.dtype)
        k = min(self.max_detections, c * gh * gw)
        scores, idx = torch.topk(peaks.reshape(n, -1), k)
        cls = torch.div(idx, gh * gw, rounding_mode="floor")
        cell = idx - cls * gh * gw
        cy = torch.div(cell, gw, rounding_mode="floor")
        cx = cell - cy * gw
        reg = torch.gather(head[:, c:].reshape(n, 4, gh * gw), 2, cell.unsqueeze(1).expand(n, 4, k))
        size = torch.exp(reg[:, 0:2].clamp(max=4.0)) * STRIDE  # (n, 2, k) pixels
        centre_x = (cx.to(head.dtype) + torch.sigmoid(reg[:, 2])) * STRIDE
        centre_y = (cy.to(head.dtype) + torch.sigmoid(reg[:, 3])) * STRIDE
        boxes = torch.stack([(centre_x - size[:, 0] / 2).clamp(0, width), (centre_y - size[:, 1] / 2).clamp(0, height),
                             (centre_x + size[:, 0] / 2).clamp(0, width), (centre_y + size[:, 1] / 2).clamp(0, height)],
                            dim=2)
        out = []
        for i in range(n):
            keep = scores[i] > self.score_threshold
            out.append({"boxes": boxes[i][keep], "scores": scores[i][keep], "labels": cls[i][keep] + 1})
        return out
