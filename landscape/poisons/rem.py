"""`rem`: robust error-minimising noise (min-min-max against an adversarially trained surrogate)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from landscape.poisons.base import POISONS, Perturbation
from landscape.poisons.surrogate import AlternatingOptions, SurrogateMethod
from landscape.spec import bounded


@dataclass(frozen=True)
class REMOptions(AlternatingOptions):
    """REM's options (digits defaults); see `RobustErrorMinimizing`."""

    max_loops: int = bounded(12, 1)
    pgd_steps: int = bounded(4, 1)
    step_frac: float = bounded(0.2, 0.0, lo_open=True)
    adv_eps_frac: float = bounded(0.5, 0.0, 1.0)
    adv_steps: int = bounded(2, 0)
    adv_step_frac: float = bounded(0.5, 0.0, lo_open=True)
    eot: int = bounded(1, 1)


@POISONS.register("rem")
class RobustErrorMinimizing(SurrogateMethod):
    """Robust error-minimising noise (Fu et al., ICLR 2022, arXiv:2203.14533).

    Paper: "Robust Unlearnable Examples: Protecting Data Against Adversarial Learning".

    Threat model: L∞, sample-wise, defensive radius eps (ρ_u) against a learner that may itself train
    adversarially with radius `adv_eps` (ρ_a < ρ_u). The noise minimises the surrogate's loss even under
    the worst ρ_a-bounded perturbation, so EM's shortcut survives (weak) adversarial training.

    Algorithm (min_θ min_δu max_δa L(f_θ(x + δu + δa), y), scaled down as `reference/ue_methods.md` §7 suggests for
    a CPU): the surrogate is trained *adversarially* on (x + δu): each SGD step uses an `adv_steps`-step PGD ascent
    of radius `adv_eps`. Between `train_steps` such SGD steps, one sweep over the training set updates every δu by
    `pgd_steps` signed-gradient descent steps, continuing from its previous δu (warm start), each taken at the
    current worst-case δa (recomputed by `adv_steps` ascent steps). The loop stops when the surrogate's
    *adversarial* accuracy on (x + δu) reaches `stop_acc` or after `max_loops` loops. The noise returned is the
    last sweep's: `pgd_steps` more warm-started steps against the final surrogate. That is not the official code's
    final regeneration (`regenerate_def_noise`), which recomputes every δu from scratch (random start) with a fresh
    10-step PGD (EOT over 5 samples) against the final model. EM's alternation of sweeps with training steps is
    kept because it is what makes REM affordable on a CPU.

    Deviations from the official code (Fu et al., `generate_robust_em.py` with `scripts/cifar10/gen_rem.sh`):
        - Budget: the official surrogate takes 5,000 adversarial-training SGD steps at batch 128, lr 0.1 x0.1
          every 2,000 steps, and before each step regenerates that batch's δu from scratch (10 PGD steps, EOT 5).
          Here it takes at most `max_loops` x `train_steps` SGD steps at a constant lr (CIFAR defaults: 30 x 10 =
          300, 6 % of the official count), and δu is warm-started from sweep to sweep.
        - EOT: `eot` > 1 averages over random crops (1-pixel padding on digits, 4 on CIFAR) without the horizontal
          flip; the official EOT draws 5 samples of flip + RandomCrop(32, 4). The default `eot` is 1 (none), and
          the surrogate trains on unaugmented (x + δu) unless `eot` > 1 (the official trains on flip + crop).
        - No PGD random start: δu and δa start at 0; the official starts both uniformly in their balls
          (`--pgd-random-start`, `--atk-pgd-random-start`).
        - The surrogate's SGD steps clip the gradient norm at 5 (inherited from `em`'s alternation); the official
          REM steps do not clip.
        - The early stop at `stop_acc` (99 %) adversarial accuracy, measured on a random probe of `noise_batch`
          (512) images after each sweep, is EM's rule; the official code runs its fixed 5,000 steps.
        - δu is kept in float; the official stores it rounded to integers on the 0-255 scale.
        - Each defensive step also projects δu so that x + δu stays in [0, 1]; the official projects δu onto the
          ε-ball only and clamps x + δu inside the loss (`attacks/robust_workers.py`). The images are the same; a δu
          past the pixel range there gets a zero gradient (sign 0) and stays put for the rest of that PGD run, here
          it sits on the range's edge and can step back.

    What holds as published (checked against `attacks/robust_workers.py` and `generate_robust_em.py`): the signs
    (δa ascends, δu descends the cross-entropy on the true label), the order x + δu -> clamp -> augmentation -> + δa
    -> clamp, the δu gradient taken at the inner maximiser with δa held fixed (the official's first-order
    `(def_x * grad).sum()`), gradients summed over the EOT draws before the sign, both PGDs in eval mode and the
    surrogate's SGD step in train mode on the adversarial batch.

    Defaults:
        CIFAR: the official radii and PGD settings (eps 8/255, adv_eps 4/255, 10 defensive steps of 1.6/255 =
        eps/5, 10 adversarial steps of 0.8/255 = adv_eps/5, ResNet-18, SGD lr 0.1, batch 128) but not its budget:
        at most 300 SGD steps (30 loops of 10) against the official 5,000, no EOT (the official 5 samples), no lr
        decay. A budget choice (CIFAR is not measured on this CPU machine), so the CIFAR noise is under-optimised
        relative to the paper's; raise `max_loops`, `train_steps` and `eot` to approach it.
        Digits: eps 64/255 with the paper's ratio adv_eps = eps/2 (32/255), 4 defensive steps of eps/5, 2
        adversarial steps of adv_eps/2, `cnn`, lr 0.05, at most 12 loops (about 9-11 s on one CPU thread: 8.9-10.7 s
        in the sweep¹ and over seeds 0-2). Why 64/255: the smallest swept budget that costs the victim 40 points
        (sweep¹): 8, 16, 32, 64/255 gave 97.5, 96.1, 90.0, 52.5 %. adv_eps eps/4 and eps/8 were no better at 64/255
        in an early seed-0 run whose rows were not kept, so the paper's ratio was kept.
        MNIST family: eps 64/255 (the family's L∞ budget), `lenet5` surrogate, the other options as for digits.
        It misses the target (sweep², only 64/255 run): 80.3 % (training accuracy 99.9 %); the surrogate's
        adversarial accuracy was 90 % after the 12 loops (211 s of crafting), short of the 99 % stop.

    Known limitation on digits: over seeds 0-2 (bench/ue_effect.py) the default gave 52.5, 83.6, 80.3 %
    (mean 72.1 %, a 25-point drop), short of the 40-point target. The surrogate's adversarial accuracy
    never reached the 99 % stop within the 12 loops the CPU budget allows in the recorded runs (12-40 % at
    64/255 over seeds 0-2, 75-84 % at 8-32/255; the paper runs 5 000 steps with EOT), so the noise is
    under-optimised; more loops (25, an earlier 5+2-step setting) did not help in a run whose rows were not kept.

    Args (options):
        surrogate, lr, batch_size, noise_batch, train_steps, stop_acc, max_loops: as for `em`.
        adv_eps_frac: adversarial radius ρ_a as a fraction of eps (0.5 = the paper's 4/255 of 8/255).
        pgd_steps, step_frac: defensive (error-minimising) steps and step size (fraction of eps).
        adv_steps, adv_step_frac: adversarial steps and step size (fraction of ρ_a).
        eot: number of random crops averaged per gradient (1 = none).

    Shape:
        images (N, C, H, W) in [0, 1], labels (N,); delta (N, C, H, W), |delta| <= eps.
    """

    norm = "linf"
    Options = REMOptions
    family_options = {"cifar": REMOptions(surrogate="resnet18", lr=0.1, pgd_steps=10, adv_steps=10,
                                          adv_step_frac=0.2, max_loops=30)}
    quick_options = {"pgd_steps": 1, "adv_steps": 1, "max_loops": 2, "train_steps": 2}
    options: REMOptions

    def gradient_evals(self, n: int) -> int:
        o = self.options
        train = o.train_steps * o.batch_size * (o.adv_steps + 1)
        sweep = n * o.pgd_steps * (o.adv_steps + 1) * o.eot + min(n, o.noise_batch) * (o.adv_steps + 1)
        return int(o.max_loops * (train + sweep))

    def _augment(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.options.eot <= 1:
            return x
        from landscape.train import random_crop_flip

        return random_crop_flip(x, 1 if self.family == "digits" else 4, False, generator)

    def _adversary(self, model: torch.nn.Module, xp: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Worst-case δa (radius ρ_a) for the already perturbed batch `xp` (error-maximising PGD)."""
        o = self.options
        rho = o.adv_eps_frac * self.eps
        return self.signed_steps(model, xp, y, torch.zeros_like(xp), eps=rho, step=o.adv_step_frac * rho,
                                 steps=o.adv_steps, minimise=False)

    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> Perturbation:
        o = self.options
        model = self.build_surrogate(tuple(x.shape[1:]), num_classes, generator)
        step = o.step_frac * self.eps
        delta = torch.zeros_like(x)
        n = len(y)

        def train_loss(idx: torch.Tensor) -> torch.Tensor:  # adversarial training on x + δu
            xp = self._augment((x[idx] + delta[idx]).clamp(0, 1), generator)
            model.eval()
            xa = (xp + self._adversary(model, xp, y[idx])).clamp(0, 1)
            model.train()
            return F.cross_entropy(model(xa), y[idx])

        def sweep() -> None:
            for s in range(0, n, o.noise_batch):
                xb, yb = x[s:s + o.noise_batch], y[s:s + o.noise_batch]
                delta[s:s + len(yb)] = self._min_max(model, xb, yb, delta[s:s + len(yb)], step, generator)

        def score() -> float:  # adversarial accuracy on a random probe of the poisoned images
            probe = torch.randperm(n, generator=generator)[: min(n, o.noise_batch)].to(x.device)
            return self._adversarial_accuracy(model, (x[probe] + delta[probe]).clamp(0, 1), y[probe], o.noise_batch)

        history = self.alternate(model, x, y, generator, train_loss=train_loss, sweep=sweep, score=score)
        return Perturbation(delta, {"surrogate_adv_acc": history, "loops": len(history),
                                    "adv_eps": o.adv_eps_frac * self.eps,
                                    "stopped_early": bool(history and history[-1] >= o.stop_acc)})

    def _min_max(self, model: torch.nn.Module, xb: torch.Tensor, yb: torch.Tensor, d: torch.Tensor,
                 step: float, generator: torch.Generator) -> torch.Tensor:
        """Defensive steps: descend on the loss at the worst-case δa of the current δu (averaged over EOT draws)."""
        for _ in range(self.options.pgd_steps):
            grad = torch.zeros_like(d)
            for _ in range(self.options.eot):
                d_var = d.clone().requires_grad_(True)
                xp = self._augment((xb + d_var).clamp(0, 1), generator)
                xa = (xp + self._adversary(model, xp.detach(), yb)).clamp(0, 1)
                (g,) = torch.autograd.grad(F.cross_entropy(model(xa), yb), d_var)
                grad += g
            with torch.no_grad():
                d = (d - step * grad.sign()).clamp(-self.eps, self.eps)
                d = (xb + d).clamp(0, 1) - xb
        return d

    def _adversarial_accuracy(self, model: torch.nn.Module, xp: torch.Tensor, y: torch.Tensor, batch: int) -> float:
        correct = 0
        for s in range(0, len(y), batch):
            xa = (xp[s:s + batch] + self._adversary(model, xp[s:s + batch], y[s:s + batch])).clamp(0, 1)
            with torch.no_grad():
                correct += int((model(xa).argmax(1) == y[s:s + batch]).sum())
        return correct / max(1, len(y))
