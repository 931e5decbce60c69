"""The one trainer and the one evaluation loop.

`train` runs mini-batch SGD (or Adam) on tensors that live on the device, records per-epoch train and
clean-test metrics and a parameter checkpoint (the trajectory), and calls per-epoch callbacks (the SAL
tracker hooks in there). It never prints; progress goes through a callback. A NaN/inf loss stops
training with a message and keeps every epoch finished before it.

Classification with cross-entropy is the default. Passing a `task` (see `TaskObjective`, implemented by
`landscape.tasks`) trains another objective with the same loop: per-sample targets are passed alongside
the images, the task's loss replaces cross-entropy, and the `*_acc` history entries hold the task's
primary metric instead of the accuracy.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landscape.config import TrainSpec
from landscape.data import ImageSet
from landscape.device import with_reproducible_threads
from landscape.display import clip, number
from landscape.spec import plural

# (model, x, y, generator) -> (x', target): a defense's per-batch transform; target may be int labels
# (N,) or class probabilities (N, K) (e.g. mixup). It must not modify its inputs in place.
BatchTransform = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]
Progress = Callable[[int, int], None]

HISTORY_KEYS = ("train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds")


class TaskObjective(Protocol):
    """A non-classification training objective (e.g. `landscape.tasks.Task`).

    `loss` is the mean loss of a batch; `stats` returns summable statistics (1-D float64) of a batch, and
    `primary_metric` turns their sum into the task's headline metric (exact over batches).
    """

    def loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def stats(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def primary_metric(self, stats: torch.Tensor) -> float: ...


@dataclass
class EpochState:
    """What an epoch callback sees after epoch `epoch` (1-based) has finished.

    `x_train`/`y_train` are the tensors the model was trained on, already on the device; `train_loss`
    and `train_acc` are the running means over the epoch (train mode, augmented, weights changing),
    the quantities the SAL paper's code uses as its baseline.
    """

    epoch: int
    model: nn.Module
    x_train: torch.Tensor
    y_train: torch.Tensor
    train_loss: float
    train_acc: float
    spec: TrainSpec
    task: TaskObjective | None = None  # with a task, y_train holds its targets and *_acc its primary metric


EpochCallback = Callable[[EpochState], None]


@dataclass(repr=False)
class TrainResult:
    """Per-epoch metrics and the parameter trajectory of one training run.

    Attributes:
        history: arrays of length `epochs_done` for each key of `HISTORY_KEYS`.
        checkpoint_epochs: epochs whose checkpoint is kept (0 = initialisation).
        checkpoints: one CPU state dict per kept epoch (parameters and buffers, `spec.checkpoint_dtype`).
        diverged: None, or the message explaining why training stopped early.
    """

    history: dict[str, np.ndarray]
    checkpoint_epochs: list[int]
    checkpoints: list[dict[str, torch.Tensor]]
    diverged: str | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def epochs_done(self) -> int:
        return len(self.history["train_loss"])

    @property
    def final_state(self) -> dict[str, torch.Tensor]:
        return self.checkpoints[-1]

    def __repr__(self) -> str:
        last = {k: v[-1] if len(v) else None for k, v in self.history.items()}
        diverged = f", diverged: {clip(self.diverged)}" if self.diverged else ""
        return (f"TrainResult({plural(self.epochs_done, 'epoch')}, {plural(len(self.checkpoints), 'checkpoint')}; "
                f"final train loss {number(last.get('train_loss'))}, train acc {number(last.get('train_acc'))}, "
                f"test acc {number(last.get('test_acc'))}{diverged})")

    def to_store(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata, arrays) for `Store.save`; `from_store` inverts it exactly."""
        arrays = {f"history/{k}": v for k, v in self.history.items()}
        for epoch, state in zip(self.checkpoint_epochs, self.checkpoints, strict=True):
            arrays.update({f"ckpt/{epoch}/{name}": t.numpy() for name, t in state.items()})
        meta = {"checkpoint_epochs": self.checkpoint_epochs, "diverged": self.diverged,
                "state_keys": list(self.checkpoints[0]), "extras": self.extras}
        return meta, arrays

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TrainResult:
        history = {k: arrays[f"history/{k}"] for k in HISTORY_KEYS}
        checkpoints = [
            {name: torch.from_numpy(arrays[f"ckpt/{epoch}/{name}"].copy()) for name in meta["state_keys"]}
            for epoch in meta["checkpoint_epochs"]
        ]
        return cls(history, list(meta["checkpoint_epochs"]), checkpoints, meta["diverged"], dict(meta["extras"]))


@torch.no_grad()
def evaluate_task(model: nn.Module, x: torch.Tensor, targets: torch.Tensor, task: TaskObjective, *,
                  batch_size: int = 1024) -> tuple[float, torch.Tensor]:
    """Mean task loss and summed task statistics of `model` (eval mode) on `x` (N, C, H, W) and `targets` (N, ...).

    The model's train/eval mode is restored afterwards.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, stats = 0.0, None
    for start in range(0, len(targets), batch_size):
        xb = x[start:start + batch_size].to(device)
        tb = targets[start:start + batch_size].to(device)
        outputs = model(xb)
        total_loss += float(task.loss(outputs, tb)) * len(tb)
        batch_stats = task.stats(outputs, tb)
        stats = batch_stats if stats is None else stats + batch_stats
    model.train(was_training)
    return total_loss / max(len(targets), 1), stats  # type: ignore[return-value]


@torch.no_grad()
def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int = 1024,
             task: TaskObjective | None = None) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of `model` (eval mode) on `x` (N, C, H, W), `y` (N,).

    With a `task`, `y` holds the task's targets and the result is (mean task loss, primary metric).
    The model's train/eval mode is restored afterwards.
    """
    if task is not None:
        loss, stats = evaluate_task(model, x, y, task, batch_size=batch_size)
        return loss, task.primary_metric(stats)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total_loss, correct = 0.0, 0
    for start in range(0, len(y), batch_size):
        xb = x[start:start + batch_size].to(device)
        yb = y[start:start + batch_size].to(device)
        logits = model(xb)
        total_loss += float(F.cross_entropy(logits, yb, reduction="sum"))
        correct += int((logits.argmax(1) == yb).sum())
    model.train(was_training)
    n = max(len(y), 1)
    return total_loss / n, correct / n


def random_crop_flip(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Per-image random crop after zero padding, and optional horizontal flip; x is (N, C, H, W)."""
    n, c, h, w = x.shape
    out = x
    if padding > 0:
        padded = F.pad(x, (padding,) * 4)  # (N, C, H+2p, W+2p)
        oy = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * padding + 1, (n,), generator=generator).to(x.device)
        rows = (oy[:, None] + torch.arange(h, device=x.device))[:, None, :, None]  # (N, 1, H, 1)
        cols = (ox[:, None] + torch.arange(w, device=x.device))[:, None, None, :]  # (N, 1, 1, W)
        batch = torch.arange(n, device=x.device)[:, None, None, None]
        chan = torch.arange(c, device=x.device)[None, :, None, None]
        out = padded[batch, chan, rows, cols]
    if flip:
        mask = (torch.rand(n, generator=generator) < 0.5).to(x.device)[:, None, None, None]
        out = torch.where(mask, out.flip(3), out)
    return out


def _snapshot(model: nn.Module, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    return {
        k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().to("cpu")).clone()
        for k, v in model.state_dict().items()
    }


def _make_optimizer(model: nn.Module, spec: TrainSpec) -> torch.optim.Optimizer:
    if spec.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                               nesterov=spec.nesterov)
    if spec.optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=spec.lr, weight_decay=spec.weight_decay)
    raise ValueError(f"unknown optimizer {spec.optimizer!r}; valid: sgd, adam")


# Witches' Brew's "linear" schedule (Geiping et al., ICLR 2021; forest/victims/training.py, `get_optimizers`),
# which TAP's official code trains its surrogate with (Fowl et al., NeurIPS 2021): MultiStepLR(gamma=0.1,
# milestones=[epochs // 2.667, epochs // 1.6, epochs // 1.142]), stepped once per epoch.
MULTISTEP_DIVISORS = (2.667, 1.6, 1.142)


def multistep_milestones(epochs: int) -> tuple[int, ...]:
    """The 0-based epochs from which the "multistep" schedule's lr is x0.1 once more (about 3/8, 5/8, 7/8).

    Witches' Brew's float floor divisions, kept as they are (its comment means 3/8, 5/8, 7/8: "160 leads to drops at
    60, 100, 140"), so they land an epoch early at some lengths: 40 epochs drop at 14, 24 and 35 (not 15, 25, 35;
    2.667 > 8/3, and 1.6 is stored as 1.6000000000000000888), 8 epochs at 2, 4 and 7.
    """
    return tuple(int(epochs // d) for d in MULTISTEP_DIVISORS)


def lr_at(spec: TrainSpec, epoch: int) -> float:
    """Learning rate of 0-based `epoch` under `spec.schedule` (the trainer sets it at the start of each epoch).

    "constant": `spec.lr`; "cosine": `lr·(1 + cos(π·epoch/epochs))/2`; "multistep": `lr·0.1^k`, k the number of
    `multistep_milestones(epochs)` at or before `epoch` (as `torch.optim.lr_scheduler.MultiStepLR` stepped per epoch).
    """
    if spec.schedule == "cosine":
        return spec.lr * 0.5 * (1 + math.cos(math.pi * epoch / spec.epochs))
    if spec.schedule == "multistep":
        return spec.lr * 0.1 ** sum(m <= epoch for m in multistep_milestones(spec.epochs))
    return spec.lr


@with_reproducible_threads
def train(
    model: nn.Module,
    train_set: ImageSet,
    test_set: ImageSet,
    spec: TrainSpec,
    *,
    device: torch.device | str = "cpu",
    callbacks: Sequence[EpochCallback] = (),
    progress: Progress | None = None,
    batch_transform: BatchTransform | None = None,
    task: TaskObjective | None = None,
    train_targets: torch.Tensor | None = None,
    test_targets: torch.Tensor | None = None,
) -> TrainResult:
    """Train `model` in place on `train_set` and evaluate on the clean `test_set` after every epoch.

    Args:
        model: the network (moved to `device`; its weights are updated in place).
        train_set: the (possibly poisoned) training images.
        test_set: the clean test images.
        spec: optimiser, schedule, augmentation, seed and checkpointing settings.
        device: where tensors live for the whole run.
        callbacks: called with an `EpochState` after each epoch (e.g. the SAL tracker).
        progress: called as `progress(epochs_done, epochs)`.
        batch_transform: a training-time defense applied to each augmented batch.
        task: a non-classification objective (default: classification with cross-entropy). Needs
            `train_targets`/`test_targets` (one per image, computed by the caller); augmentation and
            `batch_transform` are not supported with it (they would move the images but not dense targets).
        train_targets: the task's targets of `train_set`, (N_train, ...).
        test_targets: the task's targets of `test_set`, (N_test, ...).

    Returns:
        The per-epoch history and the trajectory of checkpoints (epoch 0 = initialisation).
    """
    device = torch.device(device)
    model.to(device)
    x_train, y_train = train_set.x.to(device), train_set.y.to(device)
    y_test = test_set.y
    if task is not None:
        _check_task_args(train_set, test_set, spec, batch_transform, train_targets, test_targets)
        y_train, y_test = train_targets.to(device), test_targets  # type: ignore[union-attr]
    generator = torch.Generator().manual_seed(spec.seed)  # shuffling and augmentation; CPU for determinism
    optimizer = _make_optimizer(model, spec)
    dtype = torch.float16 if spec.checkpoint_dtype == "float16" else torch.float32
    history: dict[str, list[float]] = {k: [] for k in HISTORY_KEYS}
    epochs_kept, checkpoints = [0], [_snapshot(model, dtype)]
    kept = set(spec.kept_epochs)  # 0 is the initialisation, kept above
    diverged = None
    n = len(y_train)
    for epoch in range(spec.epochs):
        started = time.perf_counter()
        lr = lr_at(spec, epoch)
        for group in optimizer.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=generator).to(device)
        loss_sum, correct, stats = 0.0, 0, None
        for start in range(0, n, spec.batch_size):
            idx = order[start:start + spec.batch_size]
            xb, yb = x_train[idx], y_train[idx]
            if spec.augment != "none":
                xb = random_crop_flip(xb, spec.crop_padding, spec.augment == "crop_flip", generator)
            target = yb
            if batch_transform is not None:
                xb, target = batch_transform(model, xb, yb, generator)
                model.train()
            logits = model(xb)
            loss = F.cross_entropy(logits, target) if task is None else task.loss(logits, target)
            if not torch.isfinite(loss):
                diverged = (
                    f"training diverged at epoch {epoch + 1}, batch {start // spec.batch_size + 1}: loss is "
                    f"{float(loss.detach())}; kept the {epoch} finished epoch(s). Lower the learning rate "
                    f"(TrainSpec.lr = {spec.lr}) or the budget."
                )
                break
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += float(loss.detach()) * len(idx)
            if task is None:
                correct += int((logits.argmax(1) == yb).sum())
            else:
                batch_stats = task.stats(logits.detach(), yb)
                stats = batch_stats if stats is None else stats + batch_stats
        if diverged:
            break
        train_loss, train_acc = loss_sum / n, (correct / n if task is None else task.primary_metric(stats))
        test_loss, test_acc = evaluate(model, test_set.x, y_test, task=task)
        for key, value in zip(
            HISTORY_KEYS, (train_loss, train_acc, test_loss, test_acc, lr, time.perf_counter() - started), strict=True
        ):
            history[key].append(value)
        done = epoch + 1
        if done in kept:
            epochs_kept.append(done)
            checkpoints.append(_snapshot(model, dtype))
        state = EpochState(done, model, x_train, y_train, train_loss, train_acc, spec, task)
        for callback in callbacks:
            callback(state)
        if progress is not None:
            progress(done, spec.epochs)
    if diverged and epochs_kept[-1] != len(history["train_loss"]) and history["train_loss"]:
        # Keep the last finished epoch's weights as the final checkpoint; the diverged step never stepped.
        epochs_kept.append(len(history["train_loss"]))
        checkpoints.append(_snapshot(model, dtype))
    model.eval()
    return TrainResult(
        history={k: np.asarray(v, dtype=np.float64) for k, v in history.items()},
        checkpoint_epochs=epochs_kept,
        checkpoints=checkpoints,
        diverged=diverged,
    )


def _check_task_args(train_set: ImageSet, test_set: ImageSet, spec: TrainSpec, batch_transform: BatchTransform | None,
                     train_targets: torch.Tensor | None, test_targets: torch.Tensor | None) -> None:
    from landscape.errors import ShapeError, SpecError

    if train_targets is None or test_targets is None:
        raise SpecError("training a task needs train_targets and test_targets (one target per image)")
    for name, targets, images in (("train", train_targets, train_set), ("test", test_targets, test_set)):
        if len(targets) != len(images):
            raise ShapeError(f"{len(images)} {name} images but {len(targets)} {name} targets; they must match")
    if spec.augment != "none" or batch_transform is not None:
        raise SpecError("augmentation and batch transforms move the images but not the task targets; use "
                        "TrainSpec.augment = 'none' and no defense when training a task")
