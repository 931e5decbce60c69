"""ResNet-18, CIFAR variant (He et al., CVPR 2016; 3x3 stem, no max-pool), the paper's main model.

21 conv/linear weight layers: the stem, 16 block convolutions, 3 projection shortcuts and the classifier,
matching the 21 layers of the authors' SAL maps (Ye et al., ICLR 2025). Two registrations share the code:

- `resnet18`: 64, 128, 256, 512 channels (x `width`), 11.2M parameters, the paper's model (CIFAR on a GPU);
- `resnet18s`: the same topology at 1/8 width (8, 16, 32, 64 channels x `width`, 175k parameters for 10
  classes), the CPU stand-in for the paper's 21-layer SAL maps: every layer, BatchNorm and shortcut of the
  paper's model, at a cost a laptop trains on digits in seconds (`bench/train_baseline.py` measures it).
"""

from __future__ import annotations

import torch
from torch import nn

from landscape.models.base import MODELS


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity or 1x1-projection shortcut."""

    def __init__(self, c_in: int, c_out: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or c_in != c_out:
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride=stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return torch.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """Stem, four stages of two `BasicBlock`s (base x 1, 2, 4, 8 channels), global pool, linear."""

    def __init__(self, in_channels: int, num_classes: int, base: int = 64) -> None:
        super().__init__()
        chans = [base, 2 * base, 4 * base, 8 * base]
        self.conv1 = nn.Conv2d(in_channels, chans[0], 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(chans[0])
        blocks, c_in = [], chans[0]
        for i, c in enumerate(chans):
            stride = 1 if i == 0 else 2
            blocks += [BasicBlock(c_in, c, stride), BasicBlock(c, c, 1)]
            c_in = c
        self.layers = nn.Sequential(*blocks)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(chans[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.pool(self.layers(out)).flatten(1)  # (N, 8 * base)
        return self.fc(out)


@MODELS.register("resnet18")
def resnet18(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """CIFAR ResNet-18 (11.2M parameters at width 1 for 10 classes)."""
    return ResNet18(image_shape[0], num_classes, 64 * width)


@MODELS.register("resnet18s")
def resnet18s(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """CIFAR ResNet-18 at 1/8 width (8 base channels x `width`; 175k parameters at width 1 for 10 classes)."""
    return ResNet18(image_shape[0], num_classes, 8 * width)
