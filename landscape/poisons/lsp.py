"""`lsp`: linear-separable synthetic patches, model-free."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from landscape.poisons.base import POISONS, MethodOptions, Perturbation, PoisonMethod
from landscape.spec import bounded


@dataclass(frozen=True)
class LSPOptions(MethodOptions):
    """LSP's options (digits defaults): patch side, class-centre separation, and the clusters' covariance.

    covariance: "random" is scikit-learn's `make_classification` cluster, as published; "identity" is N(0, I)
    around the centre, what this engine did before 2026-12-03, kept to reproduce earlier results.
    """

    patch: int = bounded(2, 1)
    class_sep: float = bounded(10.0, 0.0, lo_open=True)
    covariance: Literal["random", "identity"] = "random"


@POISONS.register("lsp")
class LinearSeparablePatches(PoisonMethod):
    """Linear-separable synthetic perturbations (Yu et al., KDD 2022, arXiv:2111.00898).

    Paper: "Availability Attacks Create Shortcuts".

    Threat model: L2, class-conditional sample-wise: every image gets its own pattern, drawn from its
    class's Gaussian cluster, so the patterns are linearly separable by class. That separability is the
    shortcut: a network fits the patterns long before the digits/objects.

    Algorithm (no model): with g = H/patch cells per side, draw one cluster centre per class at a
    distinct vertex of the hypercube {-class_sep, +class_sep}^d, d = g·g·C, and sample each image's point
    from its class's cluster as scikit-learn's `make_classification` does with one cluster per class and
    all features informative (what APBench's `lsp_poisons.py` calls): z·A_k + centre_k, z ~ N(0, I_d),
    A_k = 2·U(0, 1)^{d×d} − 1 drawn once per class (`class_points`); then reshape to (C, g, g), upsample
    every value into a patch×patch block (nearest neighbour), and scale each pattern to L2 norm eps.
    No label noise: APBench passes `flip_y=0.0` (scikit-learn's default would relabel 1 % of the points), and
    `make_classification`'s shuffle only reorders points that are then matched to images by class.

    As published (official code dayu11/Availability-Attacks-Create-Shortcuts, `synthetic_perturbations/
    cifar_train.py` and `util.py`): the same `make_classification` call (d = (32/8)²·3 = 48 informative features,
    class_sep 10, flip_y 0, one cluster per class), each value repeated into a patch×patch block, every pattern
    scaled to L2 norm sqrt(3072)·6/255 (`comput_l2norm_lim`, `normalize_l2norm`), added to a same-class image and
    clipped. Differences from that code, none changing the distribution of the patterns:
        - The official reshapes the points channel-last, (g, g, C); here (C, g, g). The cluster is invariant under
          permuting its coordinates (random hypercube vertex, i.i.d. mixing entries), so only the draw differs.
        - A patch that does not divide the image is refused here; the official adds a partial cell and crops.
        - The official draws N points split evenly over the classes and gives a class's images the first of its
          points (a class with more than N/K images runs short); here every image draws its own point.
        - The official stores the poisoned images as uint8 (x·255 clipped and truncated); δ stays in float here.

    Defaults:
        CIFAR (the paper): patch 8 (4x4x3 = 48 dims), class_sep 10, eps = sqrt(3072)·6/255 ≈ 1.30.
        Digits: patch 2 (4x4x1 = 16 dims, the same 4x4 grid as CIFAR), class_sep 10, eps = sqrt(64)·64/255
        ≈ 2.01, the per-pixel RMS of L∞ 64/255 (the other methods' digits budget). The CIFAR rule
        sqrt(d)·6/255 = 0.19 would be a tenth of a grey level per pixel. Why: the smallest swept budget that
        costs the victim 40 points (sweep¹): L2 0.251, 0.502, 1.00, 2.01 (RMS 8, 16, 32, 64/255) gave
        98.1, 96.7, 88.6, 50.0 %; seeds 0-2 at 2.01: 50.0, 46.7, 31.1 % (mean 42.6 %).
        (Both sweeps were measured with covariance="identity", before the published covariance was added.)
        MNIST family: patch 7 (the same 4x4 grid, of 28x28x1), eps = sqrt(784)·32/255 ≈ 3.51 (RMS 32/255): L2
        0.878, 1.76, 3.51, 7.03 gave 96.2, 96.2, 14.6, 10.1 % (sweep²; training accuracy 98-100 %, a learnt shortcut).
        Seeds 0-2 at 3.51: 14.6, 10.0, 10.0 %, but seeds 1 and 2 were not trained².

    Args (options):
        patch: side of the upsampled block (must divide H and W).
        class_sep: half the side of the hypercube of class centres.

    Shape:
        images (N, C, H, W) in [0, 1], labels (N,); delta (N, C, H, W), ||delta||_2 <= eps per image.
    """

    norm = "l2"
    budgets = {"digits": math.sqrt(64) * 64 / 255, "mnist": math.sqrt(784) * 32 / 255,
               "cifar": math.sqrt(3072) * 6 / 255}
    Options = LSPOptions
    family_options = {"mnist": LSPOptions(patch=7), "cifar": LSPOptions(patch=8)}
    options: LSPOptions

    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> Perturbation:
        from landscape.errors import SpecError

        n, c, h, w = x.shape
        patch = self.options.patch
        if patch < 1 or h % patch or w % patch:
            raise SpecError(f"option patch={patch} must divide the image size {h}x{w}")
        gh, gw = h // patch, w // patch
        d = c * gh * gw
        if d < 63 and num_classes > 2**d:
            raise SpecError(f"{num_classes} classes need more than {d} dimensions; use a smaller patch")
        centres = self._vertices(num_classes, d, generator) * self.options.class_sep  # (K, d)
        points = class_points(centres, y.cpu(), self.options.covariance, generator)  # (N, d)
        grid = points.view(n, c, gh, gw)
        pattern = F.interpolate(grid, scale_factor=patch, mode="nearest")  # (N, C, H, W)
        norms = pattern.flatten(1).norm(dim=1).clamp_min(1e-12)
        return Perturbation((pattern * (self.eps / norms)[:, None, None, None]).to(x.device))

    @staticmethod
    def _vertices(k: int, d: int, generator: torch.Generator) -> torch.Tensor:
        """`k` distinct random vertices of {-1, +1}^d."""
        chosen: list[tuple[int, ...]] = []
        seen: set[tuple[int, ...]] = set()
        while len(chosen) < k:
            v = tuple(int(b) for b in torch.randint(0, 2, (d,), generator=generator))
            if v not in seen:
                seen.add(v)
                chosen.append(v)
        return torch.tensor(chosen, dtype=torch.float32) * 2 - 1


def class_points(centres: torch.Tensor, y: torch.Tensor, covariance: str, generator: torch.Generator) -> torch.Tensor:
    """Each label's point of its class cluster: (N, d) from centres (K, d) and labels y (N,).

    "random" is `sklearn.datasets.make_classification`'s cluster (Guyon, 2003): z·A_k + centre_k with
    z ~ N(0, I_d) and A_k = 2·U(0, 1)^{d×d} − 1, so the within-class covariance is A_kᵀA_k (expected
    diagonal d/3); "identity" is z + centre_k. The N(0, I) draws come first, as before the covariance option.
    """
    k, d = centres.shape
    noise = torch.randn((len(y), d), generator=generator)  # (N, d)
    if covariance == "random":
        mixes = 2 * torch.rand((k, d, d), generator=generator) - 1  # (K, d, d): A_k per class
        for c in range(k):
            rows = y == c
            noise[rows] = noise[rows] @ mixes[c]
    return centres[y] + noise
