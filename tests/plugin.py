"""A new data set and a new model, registered the way a contributor adds one: through the registries only.

`rgb16` is a generated 16x16 three-channel data set (four classes, each a colour gradient in its own direction,
plus seeded pixel noise) and `twobranch` the non-Sequential two-branch residual net of `tests.fixtures`.
Importing this module registers both; `tests/test_extension.py` imports it in a fresh interpreter and runs the
CLI and the surfaces with them, with no other edit anywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from landscape.config import DataSpec
from landscape.data import DATASETS, ImageSet, Splits
from landscape.models import MODELS
from tests.fixtures import WIDTH, ResidualTwoBranchNet

NAME, MODEL = "rgb16", "twobranch"
CLASSES = ("red-right", "green-down", "blue-left", "grey-up")
SIDE, N_TRAIN, N_TEST = 16, 160, 80


def _images(n: int, rng: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, 3, 16, 16) images in [0, 1] and their labels (n,), balanced over the four classes."""
    y = np.arange(n) % len(CLASSES)
    ramp = np.linspace(0.0, 1.0, SIDE, dtype=np.float32)
    gradients = [ramp[None, :], ramp[:, None], ramp[None, ::-1], ramp[::-1, None]]  # right, down, left, up
    colours = [(1.0, 0.2, 0.2), (0.2, 1.0, 0.2), (0.2, 0.2, 1.0), (0.6, 0.6, 0.6)]
    x = np.empty((n, 3, SIDE, SIDE), dtype=np.float32)
    for i, c in enumerate(y):
        pattern = np.broadcast_to(gradients[c], (SIDE, SIDE))
        x[i] = np.asarray(colours[c], dtype=np.float32)[:, None, None] * pattern
    x += rng.normal(0.0, 0.15, x.shape).astype(np.float32)
    return torch.from_numpy(np.clip(x, 0.0, 1.0)), torch.from_numpy(y.astype(np.int64))


@DATASETS.register(NAME, family="cifar", channels=3, needs_root=False)
def rgb16(spec: DataSpec) -> Splits:
    """The generated set: 160 training and 80 test images, the same for every call with the same split seed."""
    rng = np.random.default_rng(1000 + spec.split_seed)
    train, test = _images(N_TRAIN, rng), _images(N_TEST, rng)
    return Splits(NAME, ImageSet(*train, CLASSES), ImageSet(*test, CLASSES))


@MODELS.register(MODEL)
def twobranch(image_shape: tuple[int, int, int], num_classes: int, width: int = 1) -> nn.Module:
    """`tests.fixtures.ResidualTwoBranchNet` (stem, a two-branch residual block, pooled linear head)."""
    return ResidualTwoBranchNet(image_shape[0], num_classes, width=WIDTH * width)
