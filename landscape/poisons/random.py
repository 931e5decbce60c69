"""`random`: uniform noise, the control that should stay learnable."""

from __future__ import annotations

import torch

from landscape.poisons import POISONS
from landscape.poisons.base import PoisonMethod


@POISONS.register("random")
class RandomNoise(PoisonMethod):
    """Uniform random noise baseline (the control of Huang et al., ICLR 2021, arXiv:2101.04898, Table 1).

    Threat model: L∞, sample-wise (a fresh draw per image) or class-wise (one draw per class). Nothing
    in the noise correlates with the label in sample-wise mode, so a model should learn the images as
    if clean; it is the yardstick every real method must beat. Class-wise noise is a (weak) shortcut.

    Defaults: CIFAR L∞ 8/255 (the literature's budget). Digits: L∞ 32/255, the same budget as the
    digits default of `em`, so the two differ only in the optimisation. Measured on digits (bench/ue_budget.py,
    cnn, 30 epochs): sample-wise noise up to 64/255 stays within a few points of clean training, so it is a
    fair control at any budget we use.

    Args (options):
        mode: "sample" (default) or "class".

    Shape:
        images (N, C, H, W) in [0, 1], labels (N,); delta (N, C, H, W), |delta| <= eps.
    """

    norm = "linf"
    modes = ("sample", "class")
    defaults = {"digits": {"eps": 64 / 255}, "cifar": {"eps": 8 / 255}}

    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> torch.Tensor:
        if self.granularity == "class":
            patterns = (torch.rand((num_classes, *x.shape[1:]), generator=generator) * 2 - 1) * self.eps
            return patterns.to(x.device)[y]
        return ((torch.rand(x.shape, generator=generator) * 2 - 1) * self.eps).to(x.device)
