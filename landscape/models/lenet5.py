"""LeNet-5 (LeCun et al., 1998), with 'same' padding so it also fits 8x8 digits; 5 weight layers."""

from __future__ import annotations

from torch import nn

from landscape.models.base import MODELS


@MODELS.register("lenet5")
def lenet5(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """conv6(5x5)-pool-conv16(5x5)-pool-fc120-fc84-fc(classes) with ReLU; `width` scales every layer."""
    c, h, w = image_shape
    a, b = 6 * width, 16 * width
    return nn.Sequential(
        nn.Conv2d(c, a, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(a, b, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(b * (h // 4) * (w // 4), 120 * width), nn.ReLU(),
        nn.Linear(120 * width, 84 * width), nn.ReLU(),
        nn.Linear(84 * width, num_classes),
    )
