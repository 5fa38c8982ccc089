"""A small PyTorch pilot whose forward takes (image, speed): steering from the image and the car's
speed in m/s (as donkeycar pilots fed by an odometry part), for ``--model-class``."""

from __future__ import annotations

from typing import Any

import torch

SPEED_GAIN = 0.2  # steering per m/s: big enough that a wrong or missing speed shows on the wire


class SpeedNet(torch.nn.Module):
    """(image (N, 3, H, W), speed (N, 1)) -> (steering (N, 1), throttle (N, 1))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, stride=2)
        self.head = torch.nn.Linear(4, 1)
        self.speed = torch.nn.Linear(1, 1)

    def forward(self, image: Any, speed: Any) -> Any:
        x = torch.relu(self.conv(image)).mean(dim=(2, 3))
        steering = 0.4 * torch.tanh(self.head(x)) + self.speed(speed)
        return steering, torch.full_like(steering, 0.2)


def trained() -> SpeedNet:
    """Fixed weights (seeded), with steering = ... + SPEED_GAIN * speed - 0.3."""
    torch.manual_seed(5)
    net = SpeedNet()
    with torch.no_grad():
        net.speed.weight.fill_(SPEED_GAIN)
        net.speed.bias.fill_(-0.3)
    return net.eval()
