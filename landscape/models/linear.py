"""Softmax regression: the paper's toy model (Ye et al., ICLR 2025, §3.1 uses a 120-parameter linear classifier)."""

from __future__ import annotations

from torch import nn

from landscape.models.base import MODELS


@MODELS.register("linear")
def linear(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """One linear layer on the flattened image; `width` is ignored. Digits: 64 x 10 + 10 = 650 parameters."""
    c, h, w = image_shape
    return nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, num_classes))
