"""A small ReLU multilayer perceptron (3 linear layers)."""

from __future__ import annotations

from torch import nn

from landscape.models.base import MODELS


@MODELS.register("mlp")
def mlp(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """Flatten -> 64w -> 64w -> classes with ReLU; digits: about 9k parameters at width 1."""
    c, h, w = image_shape
    hidden = 64 * width
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )
