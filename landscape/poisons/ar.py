"""`ar`: autoregressive perturbations, model-free."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from landscape.poisons.base import POISONS, MethodOptions, Perturbation, PoisonMethod
from landscape.spec import bounded


@dataclass(frozen=True)
class AROptions(MethodOptions):
    """AR's options: the border cropped off the generated canvas, and the std of the per-pixel innovation noise."""

    crop: int = bounded(4, 0)
    innovation: float = bounded(0.0, 0.0)


@POISONS.register("ar")
class Autoregressive(PoisonMethod):
    """Autoregressive perturbations (Sandoval-Segura et al., NeurIPS 2022, arXiv:2206.03693).

    Paper: "Autoregressive Perturbations for Data Poisoning".

    Threat model: L2, class-conditional sample-wise: one causal AR process per class, a fresh realisation
    per image. An AR process is exactly predictable by one convolution (its own filter), so a network
    finds the class from the noise with a single simple filter: a shortcut that needs no surrogate.

    Algorithm (no model): per class and per channel, one 3x3 causal filter (the current pixel excluded) is
    drawn N(0, 1) and scaled to sum to 1; channels are independent processes with no cross-channel terms,
    as the published `ARProcessPerturb3Channel` (a grouped convolution, also APBench's) runs them. A class's
    filters are kept only if the process stays bounded (the paper searches for such coefficients; we draw
    them from `seed`).
    Each image's noise starts as Gaussian on an (H+crop)x(W+crop) canvas; from the third row and column
    on, every pixel is replaced, in raster order, by the filter's combination of its 8 causal neighbours
    (no innovation by default, so the class filter predicts the noise exactly); the last H x W block is
    kept and scaled to L2 = eps.

    Defaults:
        CIFAR (the paper's recommended setting): eps = 1.0 (L2), crop 4.
        Digits: eps = sqrt(64)·64/255 ≈ 2.01 (L2; the per-pixel RMS of L∞ 64/255, the other methods'
        digits budget), crop 4. CIFAR's 1.0 spread over 3072 values is 4.6/255 RMS per value; over the
        64 digit pixels the same L2 is already 32/255 RMS.
        MNIST family: eps = sqrt(784)·64/255 ≈ 7.03 (RMS 64/255), crop 4. Unlike on digits it works at 28x28
        (sweep²): L2 0.878, 1.76, 3.51, 7.03 gave 95.0, 97.0, 91.2, 29.9 % (training accuracy 95.5 % at 7.03).
        Seeds 0-2 at 7.03: 29.9, 10.0 (not trained²), 37.1 %.

    Known limitation on digits: AR does **not** make digits unlearnable at any swept budget (sweep¹): L2 0.251,
    0.502, 1.00, 2.01 gave 96.9, 98.3, 97.8, 98.1 % (seeds 0-2 at 2.01: 98.1, 95.6, 86.7 %, mean 93.4 %). At 8x8 the
    noise does not seem to be an easy shortcut: in an early check whose rows were not kept, a `cnn` trained on the
    noise alone (no digit) learnt far less of it than of LSP's noise alone. The default is kept at the common budget
    rather than inflated until it "works".

    Args (options):
        crop: warm-up border removed from the canvas.
        innovation: standard deviation of an optional Gaussian innovation term (0 = the pure AR recursion).

    Shape:
        images (N, C, H, W) in [0, 1], labels (N,); delta (N, C, H, W), ||delta||_2 <= eps per image.
    """

    norm = "l2"
    budgets = {"digits": math.sqrt(64) * 64 / 255, "mnist": math.sqrt(784) * 64 / 255, "cifar": 1.0}
    revisions = {"cifar": 1}  # 2026-12-03: one causal process per channel, as APBench (were mixed across channels)
    Options = AROptions
    options: AROptions

    def filters(self, num_classes: int, channels: int, size: tuple[int, int],
                generator: torch.Generator) -> torch.Tensor:
        """(K, C, C, 3, 3) causal coefficients, zero off the channel diagonal; each (class, channel)'s own sum to 1.

        Channel c's process reads channel c alone (coefficients [k, c, c]), as the published grouped
        convolution does; the (C, C) layout keeps one form for any C. A draw is kept only if the process it
        defines neither explodes nor dies out on a test canvas (the kept block's spread within [0.2, 5] times
        the start noise's): a stand-in for the paper's coefficient search, which also keeps only processes
        that stay bounded.
        """
        causal = torch.ones(channels, 1, 3, 3)
        causal[..., 2, 2] = 0  # the current pixel (bottom-right of the window) is the one being generated
        diagonal = torch.arange(channels)
        chosen: list[torch.Tensor] = []
        for _ in range(1000 * num_classes):
            own = torch.randn((channels, 1, 3, 3), generator=generator) * causal  # one process per channel
            total = own.sum(dim=(1, 2, 3), keepdim=True)
            if bool((total.abs() < 0.1).any()):
                continue
            coef = torch.zeros((channels, channels, 3, 3))
            coef[diagonal, diagonal] = (own / total)[:, 0]  # no cross-channel terms
            start = torch.randn((16, channels, *size), generator=generator)
            probe = self._generate(coef.expand(16, *coef.shape), start, self.options.crop)
            spread = float(probe.std()) if bool(torch.isfinite(probe).all()) else float("inf")
            if 0.2 <= spread <= 5.0:
                chosen.append(coef)
                if len(chosen) == num_classes:
                    return torch.stack(chosen)
        from landscape.errors import SpecError

        raise SpecError(f"found only {len(chosen)} of {num_classes} stable AR processes; try another seed")

    @staticmethod
    def _generate(coef: torch.Tensor, canvas: torch.Tensor, crop: int, innovation: torch.Tensor | None = None
                  ) -> torch.Tensor:
        """Fill `canvas` (N, C, H', W') in raster order with the AR recursion of `coef` (N, C, C, 3, 3)."""
        canvas = canvas.clone()
        for i in range(2, canvas.shape[2]):
            for j in range(2, canvas.shape[3]):
                window = canvas[:, :, i - 2:i + 1, j - 2:j + 1]  # (N, C_in, 3, 3)
                value = (coef * window[:, None]).sum(dim=(2, 3, 4))  # (N, C_out)
                canvas[:, :, i, j] = value if innovation is None else value + innovation[:, :, i, j]
        return canvas[:, :, crop:, crop:]

    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> Perturbation:
        n, c, h, w = x.shape
        crop = self.options.crop
        filters = self.filters(num_classes, c, (h + crop, w + crop), generator)  # (K, C, C, 3, 3)
        canvas = torch.randn((n, c, h + crop, w + crop), generator=generator)
        innovation = torch.randn(canvas.shape, generator=generator) * self.options.innovation
        noise = self._generate(filters[y.cpu()], canvas, crop, innovation if self.options.innovation else None)
        norms = noise.flatten(1).norm(dim=1).clamp_min(1e-12)
        delta = (noise * (self.eps / norms)[:, None, None, None]).to(x.device)
        return Perturbation(delta, {"filters": filters.tolist()})
