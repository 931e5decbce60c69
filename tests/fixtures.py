"""A user model defined outside `landscape`, as a researcher would write one, plus factories that break the contract.

`factory` is the model the bring-your-own tests use (`--model tests.fixtures:factory`): a small residual network
whose block has two branches (3x3 conv-BN-ReLU-conv-BN and a 1x1 conv-BN projection) summed before the ReLU,
with BatchNorm throughout; not an `nn.Sequential`, so every engine path that has a Sequential fast path takes its
general one. The other factories each break one rule of the factory contract (`landscape.models.user`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

WIDTH = 8


class TwoBranchBlock(nn.Module):
    """relu(branch_a(x) + branch_b(x)): a 3x3 conv-BN-ReLU-conv-BN branch beside a 1x1 conv-BN projection."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.branch_a = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels),
        )
        self.branch_b = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.branch_a(x) + self.branch_b(x))


class ResidualTwoBranchNet(nn.Module):
    """Stem conv-BN-ReLU, one two-branch residual block, global average pooling, linear head (5 weight layers)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = WIDTH) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU())
        self.block = TwoBranchBlock(width)
        self.head = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) -> (N, classes)
        h = self.block(self.stem(x))
        return self.head(h.mean(dim=(2, 3)))


def factory(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """The factory contract: the data's (C, H, W) and class count in, a fresh module out."""
    return ResidualTwoBranchNet(image_shape[0], num_classes)


def wrong_width(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Logits one wider than the data's classes."""
    return ResidualTwoBranchNet(image_shape[0], num_classes + 1)


def rgb_only(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Ignores the image shape: always takes three input channels."""
    return ResidualTwoBranchNet(3, num_classes)


def raises(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A factory with a bug."""
    raise RuntimeError("this factory is broken")


def not_a_module(image_shape: tuple[int, int, int], num_classes: int) -> object:
    """Returns a plain function instead of a module."""
    return lambda x: x


def unseeded(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """Draws its weights from a generator of its own, so the run's seed cannot reproduce them."""
    model = ResidualTwoBranchNet(image_shape[0], num_classes)
    with torch.no_grad():
        model.head.weight.copy_(torch.randn(model.head.weight.shape, generator=torch.Generator().manual_seed(
            int(torch.seed() % 2**31))))
    return model


class NaNLogits(nn.Module):
    """Well-shaped logits that are all NaN: training diverges in its first batch."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(image_shape[0] * image_shape[1] * image_shape[2], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(x.flatten(1)) * float("nan")


def nan_logits(image_shape: tuple[int, int, int], num_classes: int) -> nn.Module:
    """A model whose training diverges before its first epoch ends."""
    return NaNLogits(image_shape, num_classes)


NOT_CALLABLE = 3


def quadrant_images(n: int, *, channels: int = 1, side: int = 8, classes: int = 4, seed: int = 0):
    """Generated labelled images: noise plus a bright quadrant (one per class, cycling): uint8 (N, H, W, C), int64 (N,).

    A learnable class signal, so a model trained on them reaches well above chance within a few epochs.
    """
    import numpy as np

    rng = np.random.default_rng(seed)
    y = np.arange(n) % classes
    x = rng.uniform(0, 128, size=(n, side, side, channels))
    half = side // 2
    for i, label in enumerate(y):
        r, c = divmod(int(label) % 4, 2)
        x[i, r * half:(r + 1) * half, c * half:(c + 1) * half] += 127
    return x.round().astype(np.uint8), y.astype(np.int64)
