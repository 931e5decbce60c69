"""What the surrogate-based methods (EM, REM, TAP, HYPO) share: `SurrogateMethod` and their option bases.

Building the surrogate with `landscape.models.build_model`, training it normally (TAP, HYPO:
`TrainedSurrogateMethod.train_surrogate`) or alternating its SGD steps with sweeps over the noise (EM, REM:
`alternate`), and signed-gradient (PGD) steps.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from landscape.config import Augment, Schedule, TrainSpec
from landscape.data.imageset import ImageSet
from landscape.errors import UnknownNameError
from landscape.poisons.base import MethodOptions, PoisonMethod
from landscape.spec import added_field, bounded
from landscape.train import evaluate


@contextlib.contextmanager
def frozen(model: nn.Module) -> Iterator[nn.Module]:
    """`model` in eval mode with its parameters out of autograd (gradients flow to inputs only), restored after."""
    model.eval()
    params = list(model.parameters())
    for p in params:
        p.requires_grad_(False)
    try:
        yield model
    finally:
        for p in params:
            p.requires_grad_(True)


class ShuffledBatches:
    """Endless mini-batches of indices into `n` items, from a seeded permutation.

    The permutation is drawn again when the next batch would run past its end (its last partial batch is skipped).
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> None:
        self.n, self.batch_size, self.generator, self.device = n, batch_size, generator, device
        self.order, self.cursor = torch.randperm(n, generator=generator).to(device), 0

    def next(self) -> torch.Tensor:
        """The next batch of indices (batch_size,) on the device."""
        if self.cursor + self.batch_size > self.n:
            self.order, self.cursor = torch.randperm(self.n, generator=self.generator).to(self.device), 0
        idx = self.order[self.cursor:self.cursor + self.batch_size]
        self.cursor += self.batch_size
        return idx


@dataclass(frozen=True)
class AlternatingOptions(MethodOptions):
    """The options EM and REM share: a surrogate trained from scratch, alternating with sweeps over the noise.

    Attributes:
        surrogate: registered model name of the surrogate.
        lr: surrogate learning rate (SGD, momentum 0.9, weight decay 5e-4, gradient norm clipped at 5).
        batch_size: surrogate batch; noise_batch: batch of a sweep over the noise.
        train_steps: surrogate SGD steps between sweeps.
        stop_acc: stop when the surrogate's (method-specific) accuracy on the poisoned images reaches this.
        max_loops: cap on (train, sweep) loops.
        pgd_steps, step_frac: error-minimising steps per sweep and their size (fraction of eps).
    """

    surrogate: str = "cnn"
    lr: float = bounded(0.05, 0.0, 10.0, lo_open=True)
    batch_size: int = bounded(128, 1)
    noise_batch: int = bounded(512, 1)
    train_steps: int = bounded(10, 1)
    stop_acc: float = bounded(0.99, 0.0, 1.0)
    max_loops: int = bounded(30, 1)
    pgd_steps: int = bounded(10, 1)
    step_frac: float = bounded(0.1, 0.0, lo_open=True)


@dataclass(frozen=True)
class SurrogateTrainingOptions(MethodOptions):
    """The options TAP and HYPO share: a surrogate trained normally on the clean data, then PGD on the images.

    Attributes:
        surrogate: registered model name; surrogate_epochs, lr, batch_size, augment, crop_padding (pixels of the
            random crop's zero padding), schedule (`TrainSpec.schedule`), nesterov (Nesterov momentum,
            `TrainSpec.nesterov`): its training (`TrainSpec`'s fields).
        steps, step_frac: PGD steps and their size (fraction of eps); noise_batch: PGD batch size.

    crop_padding, schedule and nesterov were added later: left out of keys at their defaults (TrainSpec's 1 px,
    "constant" and plain momentum, what every surrogate trained with before), so the digits and MNIST keys and
    results stay as they were.
    """

    surrogate: str = "cnn"
    surrogate_epochs: int = bounded(10, 1)
    lr: float = bounded(0.05, 0.0, 10.0, lo_open=True)
    batch_size: int = bounded(64, 1)
    augment: Augment = "none"
    crop_padding: int = bounded(1, 0, 16, omit_default=True)
    schedule: Schedule = added_field("constant")
    nesterov: bool = added_field(False)
    steps: int = bounded(100, 1)
    step_frac: float = bounded(0.05, 0.0, lo_open=True)
    noise_batch: int = bounded(512, 1)


# How TAP and HYPO train their CIFAR surrogate: the "conservative" recipe of TAP's official code (Fowl et al.,
# NeurIPS 2021, built on Witches' Brew: forest/victims/training.py, `get_optimizers`) and APBench: ResNet-18,
# 40 epochs, SGD with Nesterov momentum 0.9 and weight decay 5e-4, lr 0.1 x0.1 at about 3/8, 5/8 and 7/8 of them
# ("multistep"), batch 128, RandomCrop(32, padding=4) + horizontal flip. The official code augments with its
# differentiable `RandomTransform` (random translation, shift 8, bilinear, + flip; village/clients/training.py
# `run_step` through furnace.augment) rather than integer crops: a documented stand-in, not the same draw.
CIFAR_SURROGATE_TRAINING = {"surrogate": "resnet18", "surrogate_epochs": 40, "lr": 0.1, "batch_size": 128,
                            "augment": "crop_flip", "crop_padding": 4, "schedule": "multistep", "nesterov": True}


class SurrogateMethod(PoisonMethod):
    """Base of the surrogate-based methods: a model from `build_model`, SGD steps and signed-gradient steps.

    The surrogate runs on `self.device`; its initialisation and data order are seeded from the crafting
    generator. Options shared by all of them: `surrogate` (registered model name). They share their L∞ budgets
    too: 8/255 on CIFAR (the papers'), 64/255 on digits and the MNIST family (why: each method's docstring).
    """

    budgets = {"digits": 64 / 255, "mnist": 64 / 255, "cifar": 8 / 255}
    # The surrogate of a family without `family_options`: the paper's MNIST model LeNet-5 on the MNIST family.
    family_surrogates = {"mnist": "lenet5"}

    def default_options(self, family: str) -> MethodOptions:
        if family in self.family_options or family not in self.family_surrogates:
            return super().default_options(family)
        return dataclasses.replace(self.Options(), surrogate=self.family_surrogates[family])

    def _resolve_options(self, given: dict[str, Any]) -> MethodOptions:
        """The options, with `surrogate` checked to name a registered model (before any cost or crafting)."""
        from landscape.models import MODELS

        options = super()._resolve_options(given)
        name = str(options.surrogate)
        if name not in MODELS:
            raise UnknownNameError(f"{self.spec.method} option surrogate = {name!r} is not a registered model; "
                                   f"valid choices: {', '.join(MODELS.names())}")
        return options

    def build_surrogate(self, image_shape: tuple[int, int, int], num_classes: int,
                        generator: torch.Generator) -> nn.Module:
        from landscape.models import MODELS, build_model

        name = str(self.options.surrogate)
        MODELS.check(name)
        seed = int(torch.randint(2**31, (1,), generator=generator))
        return build_model(name, image_shape, num_classes, seed=seed).to(self.device)

    def alternate(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, *,
                  train_loss: Callable[[torch.Tensor], torch.Tensor], sweep: Callable[[], None],
                  score: Callable[[], float]) -> list[float]:
        """The min-min loop of EM and REM: surrogate SGD steps alternating with sweeps over the noise.

        Each loop takes `train_steps` SGD steps (lr, momentum 0.9, weight decay 5e-4, gradient norm clipped at
        5) on `train_loss(idx)` for shuffled batches `idx` (batch_size,), then, with the surrogate frozen in
        eval mode, runs `sweep()` (which updates the caller's noise) and `score()` (the surrogate's accuracy on
        the poisoned images). It stops once a score reaches `stop_acc`, or after `max_loops` loops.

        Returns:
            The score after each loop.
        """
        o = self.options
        assert isinstance(o, AlternatingOptions)
        opt = torch.optim.SGD(model.parameters(), lr=o.lr, momentum=0.9, weight_decay=5e-4)
        batches = ShuffledBatches(len(y), o.batch_size, generator, x.device)
        history: list[float] = []
        for loop in range(o.max_loops):
            model.train()
            for _ in range(o.train_steps):
                loss = train_loss(batches.next())
                opt.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
                opt.step()
            with frozen(model):
                sweep()
                history.append(score())
            self.report(loop + 1, o.max_loops)
            if history[-1] >= o.stop_acc:
                break
        return history

    @staticmethod
    def signed_steps(model: nn.Module, x: torch.Tensor, target: torch.Tensor, delta: torch.Tensor, *,
                     eps: float, step: float, steps: int, minimise: bool = True) -> torch.Tensor:
        """`steps` signed-gradient steps on the cross-entropy w.r.t. `delta`, projected to the L∞ ball and [0, 1].

        Args:
            model: fixed network (its mode is the caller's choice; parameters receive no gradient update).
            x: clean batch (B, C, H, W).
            target: labels (B,) the loss is measured against.
            delta: start (B, C, H, W); not modified.
            eps: L∞ radius.
            step: step size.
            steps: number of steps.
            minimise: descend (error-minimising / targeted) or ascend (error-maximising).
        """
        d = delta.detach().clone()
        sign = -1.0 if minimise else 1.0
        for _ in range(steps):
            d.requires_grad_(True)
            loss = F.cross_entropy(model((x + d).clamp(0.0, 1.0)), target)
            (grad,) = torch.autograd.grad(loss, d)
            with torch.no_grad():
                d = (d + sign * step * grad.sign()).clamp(-eps, eps)
                d = (x + d).clamp(0.0, 1.0) - x
        return d.detach()

    @staticmethod
    def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1024) -> float:
        """Accuracy of `model` (in eval mode; its mode restored) on images x (N, C, H, W), labels y (N,)."""
        return evaluate(model, x, y, batch_size=batch_size)[1]


class TrainedSurrogateMethod(SurrogateMethod):
    """Base of TAP and HYPO: PGD on the images against a surrogate first trained normally on the clean data.

    Their options derive from `SurrogateTrainingOptions`; `quick_options` train it one epoch and take 2 steps.
    """

    quick_options: ClassVar[dict[str, Any]] = {"surrogate_epochs": 1, "steps": 2}
    options: SurrogateTrainingOptions

    def train_surrogate(self, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                        generator: torch.Generator) -> tuple[nn.Module, list[float]]:
        """The surrogate trained on the clean data by the options; returns (model, its training accuracy per epoch).

        `landscape.train.train` for `surrogate_epochs` at `lr` under `schedule`, with `batch_size`, `augment`,
        `crop_padding` and `nesterov` (the other `TrainSpec` fields at their defaults: SGD, momentum 0.9, weight
        decay 5e-4); the model is returned in eval mode with its parameters out of autograd (PGD takes gradients to
        the images only).
        """
        from landscape.train import train

        o = self.options
        model = self.build_surrogate(tuple(x.shape[1:]), num_classes, generator)
        names = tuple(str(i) for i in range(num_classes))
        data = ImageSet(x.cpu(), y.cpu(), names)
        held = data.subset(torch.randperm(len(y), generator=generator)[: min(len(y), 1000)])
        spec = TrainSpec(epochs=o.surrogate_epochs, lr=o.lr, batch_size=o.batch_size, augment=o.augment,
                         crop_padding=o.crop_padding, schedule=o.schedule, nesterov=o.nesterov,
                         seed=int(torch.randint(2**31, (1,), generator=generator)), checkpoint_every=o.surrogate_epochs)
        result = train(model, data, held, spec, device=self.device,
                       progress=lambda done, total: self.report(done, total + 1))
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model, [float(a) for a in result.history["train_acc"]]
