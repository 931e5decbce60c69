"""The digits default: a small VGG-style CNN with 6 conv/linear weight layers and no BatchNorm.

Six weight layers give SAL and UD more than a handful of layers to count, while a 30-epoch digits run
stays within seconds on a laptop CPU. Adaptive pooling makes it accept any input size (8x8 digits,
32x32 CIFAR).
"""

from __future__ import annotations

from torch import nn

from landscape.models.base import MODELS


def conv_layers(in_channels: int, width: int = 1) -> list[nn.Module]:
    """The `cnn`'s four conv layers and two 2x pools, conv16-conv16-pool-conv32-conv32-pool (channels x `width`).

    (N, C, H, W) -> (N, 32·width, H/4, W/4). The cross-task models (`landscape.tasks.dense_cnn`) start with
    these too, so under one seed their encoder is created with the `cnn`'s weights.
    """
    a, b = 16 * width, 32 * width
    return [
        nn.Conv2d(in_channels, a, 3, padding=1), nn.ReLU(),
        nn.Conv2d(a, a, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(a, b, 3, padding=1), nn.ReLU(),
        nn.Conv2d(b, b, 3, padding=1), nn.ReLU(),
        nn.MaxPool2d(2),
    ]


@MODELS.register("cnn")
def cnn(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """conv16-conv16-pool-conv32-conv32-pool-fc64-fc(classes), channels scaled by `width`."""
    b, hidden = 32 * width, 64 * width
    return nn.Sequential(
        *conv_layers(image_shape[0], width),
        nn.AdaptiveAvgPool2d(2),  # (N, b, 2, 2) for any input of at least 8x8
        nn.Flatten(),
        nn.Linear(4 * b, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
