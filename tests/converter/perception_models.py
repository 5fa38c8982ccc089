"""Small perception models shaped like the ones teams log, for the converter's tests, the demo and
the end-to-end tests (torchvision does not import beside the CPU torch here, so these are plain
PyTorch with torchvision's structure and output types; random init unless trained by the caller).

- :func:`tiny_segmenter`: an LRASPP-style head on a MobileNetV3-ish backbone (Hardswish, squeeze-
  excite with Hardsigmoid, depthwise convs); ``forward(image (N, 3, H, W))`` returns
  ``{"out": (N, K, H, W)}`` (and ``"aux"`` when asked) as torchvision's segmentation models do,
  bilinear-upsampled to the input size. ``head="deeplab"`` gives a DeepLabV3-style ASPP head
  instead (its image-pooling branch is a 1x1 map upsampled back: a Resize of a 1x1 tensor).
- :func:`tiny_detector`: an SSD-lite-style grid head; in eval mode ``forward(images)`` returns a list
  of dicts ``[{"boxes": (n, 4) xyxy input pixels, "scores": (n,), "labels": (n,) int64}]`` with n
  data-dependent (score threshold, top-k, a loop-free "fast NMS" as YOLACT does), labels from 1 with
  0 the background, as torchvision's detectors. ``returns="tuple"|"dict"`` gives the same detections
  as fixed-size tensors instead (a detector exported with its post-processing).
- :func:`yolo_onnx`: an ONNX file with one output ``output0`` (1, 4 + K, N), Ultralytics YOLOv8's
  export layout (boxes cx, cy, w, h in input pixels, then K class scores after a sigmoid).

Every factory takes no required argument, so its class works as ``--model-class`` for a state dict
(``tests.converter.perception_models:TinySegmenter``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

SEG_HW = (48, 64)  # (H, W) the segmentation fixtures take by default
DET_HW = (48, 64)
YOLO_HW = (96, 128)  # (H, W) of the YOLO-style fixture: N = 12*16 + 6*8 + 3*4 = 252 anchors


def _cbh(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, act: type[nn.Module] = nn.Hardswish) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout), act())


class SqueezeExcite(nn.Module):
    """MobileNetV3's squeeze-excite: global average pool -> 1x1 convs -> Hardsigmoid gate (N, C, 1, 1)."""

    def __init__(self, c: int) -> None:
        super().__init__()
        self.fc1, self.fc2 = nn.Conv2d(c, max(c // 4, 4), 1), nn.Conv2d(max(c // 4, 4), c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) -> the same, scaled per channel."""
        s = F.adaptive_avg_pool2d(x, 1)
        return x * F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))


class TinyBackbone(nn.Module):
    """(N, 3, H, W) -> low (N, 16, H/4, W/4) and high (N, 32, H/8, W/8) features."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = _cbh(3, 8, stride=2)
        self.b1 = nn.Sequential(_cbh(8, 8, groups=8, act=nn.ReLU), _cbh(8, 16, k=1, stride=1), _cbh(16, 16, stride=2, groups=16))
        self.b2 = nn.Sequential(_cbh(16, 32, k=1), _cbh(32, 32, stride=2, groups=32), SqueezeExcite(32), _cbh(32, 32, k=1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Image in, (low, high) features out."""
        low = self.b1(self.stem(x))
        return low, self.b2(low)


class TinySegmenter(nn.Module):
    """torchvision-style segmentation model: ``forward(image) -> {"out": (N, K, H, W)}`` logits.

    ``head``: ``lraspp`` (LRASPP: a 1x1 conv branch gated by a pooled sigmoid, plus a low-level
    classifier) or ``deeplab`` (ASPP: dilated convs and an image-pooling branch). ``aux`` adds an
    ``"aux"`` output (N, K, H, W) from the low-level features, as torchvision's ``aux_loss=True``."""

    def __init__(self, classes: int = 2, head: str = "lraspp", aux: bool = False) -> None:
        super().__init__()
        if head not in ("lraspp", "deeplab"):
            raise ValueError(f"head {head!r}: lraspp or deeplab")
        self.head, self.backbone = head, TinyBackbone()
        if head == "lraspp":
            self.cbr = nn.Sequential(nn.Conv2d(32, 16, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU())
            self.scale = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 16, 1, bias=False), nn.Sigmoid())
            self.low_classifier, self.high_classifier = nn.Conv2d(16, classes, 1), nn.Conv2d(16, classes, 1)
        else:
            self.aspp = nn.ModuleList([_cbh(32, 16, k=1, act=nn.ReLU)] + [
                nn.Sequential(nn.Conv2d(32, 16, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(16), nn.ReLU())
                for d in (2, 3)])
            self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(32, 16, 1, bias=False), nn.ReLU())
            self.project = _cbh(64, 16, k=1, act=nn.ReLU)
            self.classifier = nn.Conv2d(16, classes, 1)
        self.aux_classifier = nn.Conv2d(16, classes, 1) if aux else None

    def forward(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, 3, H, W) float -> {"out": (N, K, H, W) logits[, "aux": (N, K, H, W)]}."""
        size = image.shape[-2:]
        low, high = self.backbone(image)
        if self.head == "lraspp":
            x = self.cbr(high) * self.scale(high)
            x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
            y = self.low_classifier(low) + self.high_classifier(x)
        else:
            pooled = F.interpolate(self.pool(high), size=high.shape[-2:], mode="bilinear", align_corners=False)
            y = self.classifier(self.project(torch.cat([b(high) for b in self.aspp] + [pooled], dim=1)))
        out = {"out": F.interpolate(y, size=size, mode="bilinear", align_corners=False)}
        if self.aux_classifier is not None:
            out["aux"] = F.interpolate(self.aux_classifier(low), size=size, mode="bilinear", align_corners=False)
        return out


def tiny_segmenter(classes: int = 2, hw: tuple[int, int] = SEG_HW, head: str = "lraspp", aux: bool = False,
                   seed: int = 0) -> TinySegmenter:
    """A :class:`TinySegmenter` in eval mode, seeded (random init; BatchNorm statistics made non-trivial
    so a model in training mode would differ). ``hw`` is only checked: the model takes any H, W
    divisible by 8."""
    if hw[0] % 8 or hw[1] % 8:
        raise ValueError(f"hw {hw}: both must be divisible by 8")
    torch.manual_seed(seed)
    model = TinySegmenter(classes, head, aux)
    _settle_batchnorm(model, hw)
    return model.eval()


def _settle_batchnorm(model: nn.Module, hw: tuple[int, int]) -> None:
    """A few training-mode passes on random images so BatchNorm's running stats are not 0/1."""
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, *hw))


# --- detection ------------------------------------------------------------------------------------


def fast_nms(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor, iou: float) -> torch.Tensor:
    """Loop-free NMS (YOLACT's "fast NMS"): with boxes sorted by score, drop a box overlapping any
    higher-scoring box of its class by more than ``iou``. (n, 4) xyxy, (n,), (n,) -> (n,) bool keep.
    It suppresses a little more than greedy NMS (a suppressed box still suppresses), but has no
    data-dependent loop, so it traces and exports."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    area = (x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)
    iw = (torch.minimum(x2[:, None], x2[None]) - torch.maximum(x1[:, None], x1[None])).clamp(min=0)
    ih = (torch.minimum(y2[:, None], y2[None]) - torch.maximum(y1[:, None], y1[None])).clamp(min=0)
    inter = iw * ih
    overlap = inter / (area[:, None] + area[None] - inter + 1e-9)
    same = labels[:, None] == labels[None]
    higher = torch.triu(torch.ones_like(overlap, dtype=torch.bool), diagonal=1)  # row j scores above column i
    return ~((overlap > iou) & same & higher).any(dim=0)


class TinyDetector(nn.Module):
    """SSD-lite-style detector: one anchor per cell of the stride-8 grid, box offsets and class logits
    (background first). Eval ``forward`` returns torchvision's list of dicts (see the module);
    ``returns`` ``tuple`` / ``dict`` gives (boxes (1, K, 4), scores (1, K), labels (1, K) float) instead,
    padded with score 0 to ``max_detections``. Training mode returns the raw head
    (N, cells, 4), (N, cells, classes + 1) for a loss."""

    def __init__(self, classes: int = 3, score_threshold: float = 0.3, iou_threshold: float = 0.5,
                 top_k: int = 20, returns: str = "list", max_detections: int = 10) -> None:
        super().__init__()
        if returns not in ("list", "tuple", "dict"):
            raise ValueError(f"returns {returns!r}: list, tuple or dict")
        self.backbone = TinyBackbone()
        self.reg = nn.Conv2d(32, 4, 3, padding=1)
        self.cls = nn.Conv2d(32, classes + 1, 3, padding=1)
        # Each class also reads the cell's mean colour directly (a random-init backbone's features
        # hardly vary across cells, so without this every cell scores the same).
        self.colour = nn.Conv2d(3, classes + 1, 1)
        self.classes, self.score_threshold, self.iou_threshold = classes, score_threshold, iou_threshold
        self.top_k, self.returns, self.max_detections = top_k, returns, max_detections

    def head(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) -> boxes (N, cells, 4) xyxy input pixels, logits (N, cells, classes + 1)."""
        _, high = self.backbone(image)
        n, _, gh, gw = high.shape
        h, w = image.shape[-2], image.shape[-1]
        sy, sx = h / gh, w / gw
        ys = (torch.arange(gh, dtype=image.dtype) + 0.5) * sy
        xs = (torch.arange(gw, dtype=image.dtype) + 0.5) * sx
        cy, cx = torch.meshgrid(ys, xs, indexing="ij")
        d = self.reg(high).permute(0, 2, 3, 1).reshape(n, gh * gw, 4)
        logits = self.cls(high) + self.colour(F.adaptive_avg_pool2d(image, (gh, gw)))
        ccx = cx.reshape(1, -1) + torch.tanh(d[..., 0]) * sx
        ccy = cy.reshape(1, -1) + torch.tanh(d[..., 1]) * sy
        bw, bh = 2 * sx * torch.exp(d[..., 2].clamp(max=2.0)), 2 * sy * torch.exp(d[..., 3].clamp(max=2.0))
        boxes = torch.stack([(ccx - bw / 2).clamp(0, w), (ccy - bh / 2).clamp(0, h),
                             (ccx + bw / 2).clamp(0, w), (ccy + bh / 2).clamp(0, h)], dim=-1)
        return boxes, logits.permute(0, 2, 3, 1).reshape(n, gh * gw, self.classes + 1)

    def forward(self, images: Any) -> Any:
        """A (N, 3, H, W) tensor or a list of (3, H, W) images -> detections (see the class)."""
        if isinstance(images, list | tuple):
            images = torch.stack(list(images))
        boxes, logits = self.head(images)
        if self.training:
            return boxes, logits
        probs = logits.softmax(-1)[..., 1:]  # drop the background
        dets = [self._postprocess(boxes[i], probs[i]) for i in range(boxes.shape[0])]
        if self.returns == "list":
            return dets
        k = self.max_detections
        padded = [_pad(d, k) for d in dets]
        b, s, lab = (torch.stack([p[j] for p in padded]) for j in range(3))
        return (b, s, lab) if self.returns == "tuple" else {"boxes": b, "scores": s, "labels": lab}

    def _postprocess(self, boxes: torch.Tensor, probs: torch.Tensor) -> dict[str, torch.Tensor]:
        scores, idx = probs.max(-1)
        keep = scores > self.score_threshold
        boxes, scores, labels = boxes[keep], scores[keep], idx[keep] + 1
        order = scores.argsort(descending=True)[: self.top_k]
        boxes, scores, labels = boxes[order], scores[order], labels[order]
        ok = fast_nms(boxes, scores, labels, self.iou_threshold)
        return {"boxes": boxes[ok], "scores": scores[ok], "labels": labels[ok].to(torch.int64)}


def _pad(d: dict[str, torch.Tensor], k: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    b, s, lab = d["boxes"][:k], d["scores"][:k], d["labels"][:k].to(torch.float32)
    n = b.shape[0]
    return F.pad(b, (0, 0, 0, k - n)), F.pad(s, (0, k - n)), F.pad(lab, (0, k - n))


def tiny_detector(classes: int = 3, hw: tuple[int, int] = DET_HW, score_threshold: float = 0.3,
                  returns: str = "list", max_detections: int = 10, seed: int = 0) -> TinyDetector:
    """A :class:`TinyDetector` in eval mode, seeded. Random init finds nothing or everything, so its
    colour weights are scaled up and its background bias set so that about 8% of the grid cells clear
    ``score_threshold`` on :func:`images` (a few boxes per image, n varying with the image)."""
    torch.manual_seed(seed)
    model = TinyDetector(classes, score_threshold, returns=returns, max_detections=max_detections)
    cls_bias, colour_bias = model.cls.bias, model.colour.bias
    assert cls_bias is not None and colour_bias is not None  # both convs have a bias
    with torch.no_grad():
        model.colour.weight.mul_(12.0)
        model.reg.weight.mul_(2.0)
        cls_bias.zero_()
        colour_bias.zero_()
    _settle_batchnorm(model, hw)
    model.eval()
    with torch.no_grad():
        _, logits = model.head(torch.from_numpy(images(8, hw, seed=seed + 100)))
        fg = logits[..., 1:].max(-1).values
        # the best class's score > t roughly when its logit leads the background's by log(t / (1 - t))
        bg = torch.quantile((fg - logits[..., 0]).flatten(), 0.92) - float(np.log(score_threshold / (1 - score_threshold)))
        cls_bias[0] = bg
    return model


# --- YOLO-style ONNX ------------------------------------------------------------------------------


class TinyYoloHead(nn.Module):
    """Three-scale anchor-free head as YOLOv8 exports it: (1, 3, H, W) -> (1, 4 + K, N), rows cx, cy,
    w, h in input pixels then K sigmoid class scores; N = sum over strides 8, 16, 32 of (H/s)(W/s)."""

    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.classes = classes
        self.stem = nn.Sequential(_cbh(3, 8, stride=2, act=nn.SiLU), _cbh(8, 16, stride=2, act=nn.SiLU))
        self.down = nn.ModuleList([_cbh(16, 16, stride=2, act=nn.SiLU), _cbh(16, 16, stride=2, act=nn.SiLU),
                                   _cbh(16, 16, stride=2, act=nn.SiLU)])
        self.pred = nn.ModuleList([nn.Conv2d(16, 4 + classes, 1) for _ in range(3)])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(1, 3, H, W) -> (1, 4 + K, N)."""
        x = self.stem(images)
        outs = []
        for down, pred in zip(self.down, self.pred, strict=True):
            x = down(x)
            p = pred(x)
            n, _, gh, gw = p.shape
            s = images.shape[-1] / gw
            ys, xs = torch.meshgrid(torch.arange(gh, dtype=p.dtype), torch.arange(gw, dtype=p.dtype), indexing="ij")
            grid = torch.stack([xs, ys]).reshape(1, 2, -1)
            p = p.reshape(n, 4 + self.classes, -1)
            cxcy = (grid + 0.5 + torch.tanh(p[:, :2])) * s
            wh = torch.exp(p[:, 2:4].clamp(max=3.0)) * s
            outs.append(torch.cat([cxcy, wh, torch.sigmoid(p[:, 4:])], dim=1))
        return torch.cat(outs, dim=2)


def yolo_onnx(path: Path, classes: int = 3, hw: tuple[int, int] = YOLO_HW, opset: int = 17, seed: int = 0) -> Path:
    """Write a YOLOv8-layout ONNX to ``path``: input ``images`` (1, 3, H, W), output ``output0``
    (1, 4 + classes, N). Made by ``torch.onnx.export(dynamo=False)`` of :class:`TinyYoloHead`
    (random init, seeded), as Ultralytics exports (TorchScript exporter, opset 17 here)."""
    if hw[0] % 32 or hw[1] % 32:
        raise ValueError(f"hw {hw}: both must be divisible by 32")
    torch.manual_seed(seed)
    model = TinyYoloHead(classes).eval()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(model, (torch.zeros(1, 3, *hw),), str(path), input_names=["images"], output_names=["output0"],
                      opset_version=opset, dynamo=False)
    return path


def images(n: int = 4, hw: tuple[int, int] = SEG_HW, seed: int = 0) -> np.ndarray:
    """(n, 3, H, W) float32 in [0, 1]: smooth random blobs (a random (H/8, W/8) grid upsampled) plus a
    little noise, so a detector's grid cells see different things; for loading and parity tests."""
    rng = np.random.default_rng(seed)
    coarse = torch.from_numpy(rng.random((n, 3, max(hw[0] // 8, 1), max(hw[1] // 8, 1)), dtype=np.float32))
    smooth = F.interpolate(coarse, size=hw, mode="bilinear", align_corners=False).numpy()
    return np.clip(smooth + rng.normal(0, 0.03, smooth.shape), 0, 1).astype(np.float32)
