"""`ops`: one-pixel shortcut, model-free, class-wise."""

from __future__ import annotations

import itertools

import torch

from landscape.poisons.base import POISONS, Perturbation, PoisonMethod


@POISONS.register("ops")
class OnePixelShortcut(PoisonMethod):
    """One-pixel shortcut (Wu et al., ICLR 2023, arXiv:2205.12141).

    Paper: "One-Pixel Shortcut: on the Learning Preference of Deep Neural Networks".

    Threat model: L0, class-wise: the same pixel position(s) of every image of a class are set to one
    extreme colour; the value is unbounded. The pixel is a perfectly predictive, trivially learnable
    feature, so the network learns it instead of the content; L∞/L2 adversarial training cannot remove it.

    Algorithm (no model): for each class in turn, score every (position, colour) pair, colours being the
    corners of [0, 1]^C, by mean/std of the deviation |colour - pixel|, both taken over the class's images
    and the channels together (an (n_class, C) array per pair; 1e-3 is added to the std against a zero):
    large and consistent deviation = a salient pixel. This is the published pixel search (the OPS code,
    APBench's `ops_poisons.py`). Pairs already taken by an earlier class are excluded; the class takes its
    `eps` best pairs at distinct positions (ties: colour, then raster order). On one channel the score is
    the same as averaging over channels first.

    Defaults:
        CIFAR (the paper): eps = 1 pixel, colours {0, 1}^3.
        Digits: eps = 4 pixels (of 64). One pixel, the paper's budget, is a perfect per-class marker on
        the blank border but the digits are learnt as fast: (sweep¹) 1, 2, 4, 8 pixels gave 87.8, 80.8,
        39.7, 18.3 %. 4 is the smallest swept budget that costs the victim 40 points; it is 6 % of the
        pixels (CIFAR's 1 pixel is 0.1 %), a visible mark: say so when quoting digits OPS numbers.
        MNIST family: eps = 2 pixels (of 784, 0.26 %): 1, 2, 4, 8 pixels gave 96.0, 34.6, 35.8, 11.2 % (sweep²;
        training accuracy 98.5-100 %). Known miss: seeds 0-2 at 2 pixels gave 34.6, 96.3, 95.0 % (mean 75.3 %,
        a 21-point drop): the seed-0 sweep that chose it was the lucky draw.

    Args (options):
        none; `PoisonSpec.eps` is the L0 budget, the number of pixel positions per image (a whole number).

    Shape:
        images (N, C, H, W) in [0, 1], labels (N,); delta (N, C, H, W), at most eps positions non-zero.
    """

    norm = "l0"
    granularity_without_mode = "class"
    additive = False
    budgets = {"digits": 4, "mnist": 2, "cifar": 1}
    revisions = {"cifar": 1}  # 2026-12-03: mean and std over the images and channels together (was per channel)

    def search(self, x: torch.Tensor, y: torch.Tensor, num_classes: int) -> list[list[tuple[int, tuple]]]:
        """Per class, the chosen [(flat position, colour tuple), ...]."""
        n, c, h, w = x.shape
        k = int(self.eps)
        colours = list(itertools.product((0.0, 1.0), repeat=c))
        palette = torch.tensor(colours, dtype=x.dtype, device=x.device)  # (P, C)
        taken: set[tuple[int, int]] = set()
        chosen: list[list[tuple[int, tuple]]] = []
        flat = x.flatten(2)  # (N, C, H*W)
        for cls in range(num_classes):
            imgs = flat[y == cls]  # (n_c, C, HW)
            if len(imgs) == 0:
                chosen.append([])
                continue
            dev = (palette[None, :, :, None] - imgs[:, None]).abs()  # (n_c, P, C, HW)
            dev = dev.transpose(1, 2).reshape(-1, len(colours), h * w)  # (n_c * C, P, HW): images and channels
            score = dev.mean(0) / (dev.std(0, unbiased=False) + 1e-3)  # (P, HW)
            order = torch.argsort(score.flatten().cpu(), descending=True, stable=True)
            picks: list[tuple[int, tuple]] = []
            used_pos: set[int] = set()
            for flat_idx in order.tolist():
                p, pos = divmod(flat_idx, h * w)
                if (pos, p) in taken or pos in used_pos:
                    continue
                picks.append((pos, colours[p]))
                taken.add((pos, p))
                used_pos.add(pos)
                if len(picks) == k:
                    break
            chosen.append(picks)
        return chosen

    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> Perturbation:
        n, c, h, w = x.shape
        chosen = self.search(x, y, num_classes)
        poisoned = x.clone().flatten(2)  # (N, C, H*W)
        for cls, picks in enumerate(chosen):
            rows = y == cls
            for pos, colour in picks:
                poisoned[rows, :, pos] = torch.tensor(colour, dtype=x.dtype, device=x.device)
        pixels = [[[pos // w, pos % w, list(colour)] for pos, colour in picks] for picks in chosen]
        return Perturbation(poisoned.view_as(x) - x, {"pixels": pixels})
