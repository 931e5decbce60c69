"""The digits default: a small VGG-style CNN with 6 conv/linear weight layers and no BatchNorm.

Six weight layers give SAL and UD more than a handful of layers to count, while a 30-epoch digits run
stays within seconds on a laptop CPU. Adaptive pooling makes it accept any input size (8x8 digits,
32x32 CIFAR).
"""

from __future__ import annotations

from torch import nn

from landscape.models.base import MODELS


@MODELS.register("cnn")
def cnn(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """conv16-conv16-pool-conv32-conv32-pool-fc64-fc(classes), channels scaled by `width`."""
    c = image_shape[0]
    a, b, hidden = 16 * width, 32 * width, 64 * width
    return nn.Sequential(
        nn.Conv2d(c, a, 3, padding=1), nn.ReLU(),
        nn.Conv2d(a, a, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(a, b, 3, padding=1), nn.ReLU(),
        nn.Conv2d(b, b, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.AdaptiveAvgPool2d(2),  # (N, b, 2, 2) for any input of at least 8x8
        nn.Flatten(),
        nn.Linear(4 * b, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
