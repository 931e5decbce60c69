"""The training stages: one run of the trainer (`landscape.train`) and SAL of a run (`landscape.sal`).

A run is keyed by data, model, training recipe and the (resolved) poison; with a defense, also by it. SAL
of a run lives in one of two places (`sal_stage` picks it): when the run keeps every epoch's float32
weights, SAL is measured after training on the stored checkpoints, as its own stage (`SALStage`), so one
run serves every SAL setting; otherwise a trainer callback measures it during training and it is stored
with the run (`TrainerSALStage`, the run's entry keyed with the SAL spec too). Both give the same numbers
bit for bit (tested).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from landscape.config import DataSpec, DefenseSpec, ModelSpec, PoisonSpec, SALSpec, Spec, TrainSpec
from landscape.data import ImageSet
from landscape.defenses import BatchTransform, prepare_defense
from landscape.device import reproducible_threads
from landscape.errors import ModelError
from landscape.poisons import POISONS
from landscape.sal import Kept, SALTrace, SALTracker
from landscape.spec import format_value
from landscape.stages.base import (
    Computed,
    Context,
    OnRun,
    Stage,
    build_net,
    get_splits,
    resolve_data,
    resolve_defense,
    resolve_model,
    resolve_poison,
)
from landscape.stages.poison import poison_stages, poisoned_train
from landscape.store import Entry
from landscape.train import EpochState, TrainResult, train


def training_set(data: DataSpec, poison: PoisonSpec, defense: DefenseSpec | None,
                 ctx: Context) -> tuple[ImageSet, BatchTransform | None]:
    """The images a run trains on (poisoned, then the defense's preprocessing) and the defense's batch transform."""
    images = poisoned_train(data, poison, ctx)
    if defense is None:
        return images, None
    preprocess, batch_transform = prepare_defense(defense, get_splits(data).num_classes)
    return images.with_images(preprocess(images.x)), batch_transform


def _warn_at_below_poison(poison: PoisonSpec, defense: DefenseSpec) -> None:
    """Warn when adversarial training's L-inf radius is below the (resolved) L-inf poison's: it cannot undo it."""
    if defense.name != "at" or poison.method not in POISONS or POISONS.get(poison.method).norm != "linf":
        return
    at_eps = defense.options_dict()["eps"]
    if poison.eps is not None and at_eps < poison.eps:
        warnings.warn(f"defense 'at' eps {format_value(at_eps)} is below the poison's L-inf eps "
                      f"{format_value(poison.eps)} ({poison.method}): adversarial training in the smaller ball "
                      "cannot remove it", stacklevel=2)


def run_label(poison: PoisonSpec) -> str:
    """"clean" or the poison's method: the name of a run in progress stages and figures."""
    return "clean" if poison.is_clean else poison.method


@dataclass(frozen=True)
class TrainStage(Stage[TrainResult]):
    """One training run: per-epoch history and checkpoints (`TrainResult`).

    Attributes:
        sal: SAL measured by a trainer callback during the run (None = none); only for runs whose SAL cannot
            be measured on their stored checkpoints (see `sal_stage`).
    """

    folder = "train"
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    poison: PoisonSpec
    defense: DefenseSpec | None = None
    sal: SALSpec | None = None

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poison: PoisonSpec | None = None, *,
           defense: DefenseSpec | None = None, sal: SALSpec | None = None) -> TrainStage:
        data = resolve_data(data)
        return cls(data, resolve_model(model, data), train, resolve_poison(poison, data), resolve_defense(defense), sal)

    def parts(self) -> tuple[Spec | None, ...]:
        # the SAL spec and the defense enter the key only when given, so plain runs keep their keys
        extra = (self.sal, self.defense) if self.defense is not None else (self.sal,) if self.sal is not None else ()
        return (self.data, self.model, self.train, self.poison, *extra)

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "poison": self.poison.to_dict(), **({"sal": self.sal.to_dict()} if self.sal is not None else {}),
                **({"defense": self.defense.to_dict()} if self.defense is not None else {})}

    def compute(self, ctx: Context) -> Computed:
        stage = f"train-{run_label(self.poison)}"
        if self.defense is not None:
            _warn_at_below_poison(self.poison, self.defense)
        images, batch_transform = training_set(self.data, self.poison, self.defense, ctx)
        tracker = SALTracker(self.sal) if self.sal is not None else None
        result = train(build_net(self.model, self.data, self.train.seed), images, get_splits(self.data).test,
                       self.train, device=ctx.torch_device(), callbacks=[tracker] if tracker else [],
                       progress=ctx.reporter(stage), batch_transform=batch_transform)
        if tracker is not None:
            result.extras["sal"] = tracker.trace().to_dict()
        return result.to_store()

    def decode(self, entry: Entry) -> TrainResult:
        return TrainResult.from_store(entry.meta, entry.arrays)

    def inputs(self) -> tuple[Stage[Any], ...]:
        return poison_stages(self.data, self.poison)


@dataclass(frozen=True)
class Replay:
    """What a stage measuring a run's stored checkpoints needs, on the context's device.

    Attributes:
        run: the stored run (history and checkpoints).
        x, y: the run's own training images (N, C, H, W) (poisoned, then the defense's preprocessing) and labels (N,).
        net: a model of the run's architecture; `at(epoch)` loads that epoch's checkpoint into it.
        kept: SAL's split graphs of `net` (`landscape.sal.model_sal`), shared by every epoch measured on it.
    """

    run: TrainResult
    x: torch.Tensor
    y: torch.Tensor
    net: nn.Module
    device: torch.device
    kept: Kept = field(default_factory=dict)

    @classmethod
    def of(cls, stage: TrainStage, ctx: Context) -> Replay:
        run, device = stage.get(ctx), ctx.torch_device()
        images, _ = training_set(stage.data, stage.poison, stage.defense, ctx)
        net = build_net(stage.model, stage.data, stage.train.seed).to(device)
        return cls(run, images.x.to(device), images.y.to(device), net, device)

    def measured_epochs(self, sal: SALSpec, epochs: int) -> list[int]:
        """The finished epochs (a diverged run stops early) at which SAL is measured: every `sal.every`-th, the last."""
        tracker = SALTracker(sal)
        return [e for e in self.run.checkpoint_epochs[1:] if tracker.measures(e, epochs)]

    def at(self, epoch: int) -> nn.Module:
        """`net` holding the checkpoint of `epoch`."""
        self.net.load_state_dict(self.run.checkpoints[self.run.checkpoint_epochs.index(epoch)])
        return self.net

    def running(self, epoch: int) -> tuple[float, float]:
        """The running training loss and accuracy the trainer logged for `epoch`."""
        h = self.run.history
        return float(h["train_loss"][epoch - 1]), float(h["train_acc"][epoch - 1])


class SALOnRun(OnRun[SALTrace]):
    """A stage whose entry is one `SALTrace` of its `run` under `sal`, kept in the entry's metadata as "sal".

    SAL of a run's stored checkpoints (`SALStage`), per channel (`landscape.stages.channels`) and at imported
    weights (`landscape.stages.weights`): `stored` writes the entry, `decode` reads it.
    """

    sal: SALSpec

    def record(self) -> dict[str, Any]:
        return {**self.run.record(), "sal": self.sal.to_dict()}

    @staticmethod
    def stored(trace: SALTrace) -> Computed:
        """The entry of `trace`."""
        return {"sal": trace.to_dict()}, {}

    def decode(self, entry: Entry) -> SALTrace:
        return SALTrace.from_dict(entry.meta["sal"])


@dataclass(frozen=True)
class SALStage(SALOnRun):
    """SAL of a run's stored checkpoints: the trainer's `SALTracker` replayed on the stored epochs.

    The tracker sees what it would have seen inside the trainer (the epoch's weights, training images, running
    loss and accuracy), under the trainer's thread setting, so it measures the same epochs and numbers.
    """

    folder = "sal"
    run: TrainStage
    sal: SALSpec

    def parts(self) -> tuple[Spec | None, ...]:
        r = self.run
        return (r.data, r.model, r.train, r.poison, self.sal, r.defense)

    def compute(self, ctx: Context) -> Computed:
        return self.stored(self.measure(Replay.of(self.run, ctx), ctx))

    def measure(self, replay: Replay, ctx: Context, within: range | None = None) -> SALTrace:
        """SAL at the run's measured epochs (those `within`, if given: a part of the stage, `landscape.stages.pool`).

        Every epoch is measured on its own checkpoint with its own seeds, so the parts of a split stage,
        concatenated (`SALTrace.concat`), are the whole stage's trace bit for bit.
        """
        if replay.run.epochs_done == 0:  # nothing to measure: say why instead of building an empty trace
            raise ModelError(f"no SAL for the {run_label(self.run.poison)} run: it has no finished epoch "
                             f"({replay.run.diverged or 'it stopped before the first'})")
        r, stage, tracker = self.run, f"sal-{run_label(self.run.poison)}", SALTracker(self.sal, kept=replay.kept)
        h, epochs = replay.run.history, replay.measured_epochs(self.sal, r.train.epochs)
        epochs = [e for e in epochs if within is None or e in within]
        with reproducible_threads(replay.device):
            for i, epoch in enumerate(epochs):
                tracker(EpochState(epoch, replay.at(epoch), replay.x, replay.y, *replay.running(epoch),
                                   float(h["test_loss"][epoch - 1]), float(h["test_acc"][epoch - 1]), r.train))
                ctx.progress(stage, i + 1, len(epochs))
        return tracker.trace()


@dataclass(frozen=True)
class TrainerSALStage(OnRun[SALTrace]):
    """SAL measured by the trainer during a run: the run's own entry (keyed with the SAL spec), its SAL part."""

    folder = "train"
    run: TrainStage

    def parts(self) -> tuple[Spec | None, ...]:
        return self.run.parts()

    def record(self) -> dict[str, Any]:
        return self.run.record()

    def compute(self, ctx: Context) -> Computed:
        return self.run.compute(ctx)

    def inputs(self) -> tuple[Stage[Any], ...]:
        return self.run.inputs()  # the run's own entry is this one

    def decode(self, entry: Entry) -> SALTrace:
        return SALTrace.from_dict(entry.meta["extras"]["sal"])


def sal_from_checkpoints(train_spec: TrainSpec) -> bool:
    """True if a run keeps every epoch's weights exactly (float32), so SAL can be measured after training."""
    return train_spec.checkpoint_every == 1 and train_spec.checkpoint_dtype == "float32"


def sal_stage(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec | None, sal: SALSpec, *,
              defense: DefenseSpec | None = None) -> Stage[SALTrace]:
    """The stage holding SAL of a run: on its stored checkpoints if it keeps them all, else from the trainer."""
    if sal_from_checkpoints(train_spec):
        return SALStage(TrainStage.of(data, model, train_spec, poison, defense=defense), sal)
    return TrainerSALStage(TrainStage.of(data, model, train_spec, poison, defense=defense, sal=sal))
