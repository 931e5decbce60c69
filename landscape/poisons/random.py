"""`random`: uniform noise, the control that should stay learnable."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch

from landscape.poisons.base import POISONS, MethodOptions, Perturbation, PoisonMethod


@dataclass(frozen=True)
class RandomOptions(MethodOptions):
    """The baseline's one option: "sample" (a pattern per image) or "class" (a pattern per class)."""

    mode: Literal["sample", "class"] = "sample"


@POISONS.register("random")
class RandomNoise(PoisonMethod):
    """Uniform random noise baseline (the control of Huang et al., ICLR 2021, arXiv:2101.04898, Table 1).

    Threat model: L∞, sample-wise (a fresh draw per image) or class-wise (one draw per class). Nothing
    in the noise correlates with the label in sample-wise mode, so a model should learn the images as
    if clean; it is the yardstick every real method must beat. Class-wise noise is a (weak) shortcut.

    Defaults:
        CIFAR: L∞ 8/255 (the literature's budget).
        Digits: L∞ 64/255, the digits default of the L∞ methods (`em`, `rem`, `tap`, `hypo`), so the control
        and the attacks spend the same budget and differ only in how the noise is chosen. Measured
        (sweep¹): sample-wise noise at 8, 16, 32, 64/255 gave 97.8, 97.5, 98.1, 97.8 %, i.e. no effect at
        any swept budget. Class-wise noise was a weak shortcut on digits in an early seed-0 run whose rows were
        not kept.
        MNIST family: L∞ 64/255, the family's L∞ budget (`em`, `rem`, `tap`, `hypo`); 64/255 gave 96.1 %
        (sweep², the only budget run: the digits sweep found no effect at any budget); seeds 0-2: 96.1, 96.7,
        95.5 % (clean 96.0, 96.6, 95.5 %).

    Args (options):
        mode: "sample" (default) or "class".

    Shape:
        images (N, C, H, W) in [0, 1], labels (N,); delta (N, C, H, W), |delta| <= eps.
    """

    norm = "linf"
    budgets = {"digits": 64 / 255, "mnist": 64 / 255, "cifar": 8 / 255}
    Options = RandomOptions
    options: RandomOptions

    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> Perturbation:
        if self.granularity == "class":
            patterns = (torch.rand((num_classes, *x.shape[1:]), generator=generator) * 2 - 1) * self.eps
            return Perturbation(patterns.to(x.device)[y])
        return Perturbation(((torch.rand(x.shape, generator=generator) * 2 - 1) * self.eps).to(x.device))
