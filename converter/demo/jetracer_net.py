"""ResNet-18 in plain PyTorch (torchvision does not import beside this torch build; DESIGN.md).

Imports torch at module level: import it only where torch is installed (the ``torch`` extra).
The classes live at module level so a pickled module (MLflow's ``serialization_format="pickle"``)
refers to them by name, and ``--model-class converter.demo.jetracer_net:ResNet18`` rebuilds one
from a state dict.
"""

from __future__ import annotations

from torch import Tensor, nn

DEMO_WIDTH = 16


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and a residual connection (1x1 projection when needed)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
            if stride != 1 or cin != cout else nn.Identity()
        )

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class ResNet18(nn.Module):
    """ResNet-18 topology: (N, 3, H, W) float32 ImageNet-normalised RGB -> (N, outputs).

    7x7/2 stem, 3x3/2 max pool, four stages of two BasicBlocks (channels w, 2w, 4w, 8w; stride 2
    from the second stage on), global average pool, linear head. ``width=64`` is torchvision's
    resnet18 (11.2 M parameters); the demo uses 16 (0.7 M).
    """

    def __init__(self, width: int = DEMO_WIDTH, outputs: int = 2) -> None:
        super().__init__()
        w = width
        self.conv1 = nn.Conv2d(3, w, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(w)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = nn.Sequential(BasicBlock(w, w, 1), BasicBlock(w, w, 1))
        self.layer2 = nn.Sequential(BasicBlock(w, 2 * w, 2), BasicBlock(2 * w, 2 * w, 1))
        self.layer3 = nn.Sequential(BasicBlock(2 * w, 4 * w, 2), BasicBlock(4 * w, 4 * w, 1))
        self.layer4 = nn.Sequential(BasicBlock(4 * w, 8 * w, 2), BasicBlock(8 * w, 8 * w, 1))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8 * w, outputs)

    def forward(self, image: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(image))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(self.avgpool(x).flatten(1))


def quick_resnet18() -> ResNet18:
    """The width-8 variant the quick demo (tests) trains; for ``--model-class`` with its state dict."""
    return ResNet18(width=8)
