"""The training stages: one run of the trainer (`landscape.train`) and SAL of a run (`landscape.sal`).

A run is keyed by data, model, training recipe and the (resolved) poison; with a defense, also by it. It is
trained once and stored once, as its `TrainStage` entry, whichever stage asks first. SAL of a run is an entry
of its own in the "sal" folder, computed in one of two ways (`sal_stage` picks one from the training recipe):

- the run keeps every epoch's float32 weights: SAL is measured after training on the stored checkpoints
  (`SALStage`), so one run serves every SAL setting;
- otherwise (`TrainSpec.checkpoint_every` > 1 or float16 checkpoints) the stored checkpoints cannot be replayed,
  so a trainer callback measures SAL during training (`TrainerSALStage`); that training also stores the run's
  own `TrainStage` entry (kept if already stored), the one surfaces, curvature and every other consumer read.

Both give the same numbers bit for bit (tested), and the callback does not change the training: the run a
`TrainerSALStage` stores is the run `TrainStage` trains on its own, bit for bit (tested).
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
    Version,
    build_net,
    get_splits,
    resolve_data,
    resolve_defense,
    resolve_model,
    resolve_poison,
)
from landscape.stages.poison import poison_stages, poisoned_train
from landscape.store import Entry
from landscape.train import EpochCallback, EpochState, TrainResult, train


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
    """One training run: per-epoch history and checkpoints (`TrainResult`)."""

    folder = "train"
    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    poison: PoisonSpec
    defense: DefenseSpec | None = None

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poison: PoisonSpec | None = None, *,
           defense: DefenseSpec | None = None) -> TrainStage:
        data = resolve_data(data)
        return cls(data, resolve_model(model, data), train, resolve_poison(poison, data), resolve_defense(defense))

    def parts(self) -> tuple[Spec | None, ...]:
        # The defense enters the key only when given, so plain runs keep their keys. The None before it is where
        # runs once keyed a SAL spec measured in the trainer (now `TrainerSALStage`'s own entry): kept so that
        # defended runs keep their keys too.
        extra = (None, self.defense) if self.defense is not None else ()
        return (self.data, self.model, self.train, self.poison, *extra)

    @classmethod
    def retired(cls, record: dict[str, Any]) -> str | None:
        # Before `TrainerSALStage` had its own "sal" entries, a run whose SAL the trainer measured was stored here
        # keyed (and recorded) with its SAL spec too; no key of today's `parts` is such a run's.
        spec = record.get("spec")
        if isinstance(spec, dict) and "sal" in spec:
            return "a run keyed with the SAL spec its trainer measured, the layout before SAL had entries of its own"
        return None

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "poison": self.poison.to_dict(),
                **({"defense": self.defense.to_dict()} if self.defense is not None else {})}

    def compute(self, ctx: Context) -> Computed:
        return self.trained(ctx).to_store()

    def trained(self, ctx: Context, callbacks: tuple[EpochCallback, ...] = ()) -> TrainResult:
        """The run trained from scratch (nothing is stored), each of `callbacks` called after every epoch.

        The callbacks only observe (`landscape.train.EpochState`): with or without them the run is the same.
        """
        if self.defense is not None:
            _warn_at_below_poison(self.poison, self.defense)
        images, batch_transform = training_set(self.data, self.poison, self.defense, ctx)
        return train(build_net(self.model, self.data, self.train.seed), images, get_splits(self.data).test,
                     self.train, device=ctx.torch_device(), callbacks=list(callbacks),
                     progress=ctx.reporter(f"train-{run_label(self.poison)}"), batch_transform=batch_transform)

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

    SAL of a run's stored checkpoints (`SALStage`), measured while the run trains (`TrainerSALStage`), per channel
    (`landscape.stages.channels`) and at imported weights (`landscape.stages.weights`): `stored` writes the entry,
    `decode` reads it.
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
        epochs = [e for e in replay.measured_epochs(self.sal, r.train.epochs) if within is None or e in within]
        with reproducible_threads(replay.device):
            for i, epoch in enumerate(epochs):
                tracker(EpochState(epoch, replay.at(epoch), replay.x, replay.y, *replay.running(epoch), r.train))
                ctx.progress(stage, i + 1, len(epochs))
        return tracker.trace()


IN_TRAINER = Version("sal-in-trainer")  # in `TrainerSALStage`'s key: see its `parts`


@dataclass(frozen=True)
class TrainerSALStage(SALOnRun):
    """SAL measured by a `SALTracker` callback while its run trains, for runs whose checkpoints cannot be replayed.

    For a run that does not keep every epoch's float32 weights (`sal_from_checkpoints` false) SAL cannot be
    measured afterwards, so `compute` trains the run with the tracker and stores two entries: this one (the SAL
    trace only, like `SALStage`'s) and, as a side effect, the run's own `TrainStage` entry (one already stored is
    kept), which is what surfaces, curvature, layer slices and `Replay` read. So an experiment
    followed by its surfaces trains each run once and stores its checkpoints once. The run is trained even when its
    entry is stored already (its sparse or rounded checkpoints cannot be replayed); then only SAL is new.

    `inputs()` is the run (`OnRun`): `compute` does not read its entry but writes it, and `closure` is what
    computing a stage stores, so a store (a demo snapshot) built from the closure holds the run's checkpoints too.
    Not a `SALStage`: `landscape.stages.pool` splits those by epochs over a stored run, which this stage has not.
    """

    folder = "sal"
    run: TrainStage
    sal: SALSpec

    def parts(self) -> tuple[Spec | None, ...]:
        # SALStage's layout plus a tag. Without the tag keys would only be equal for equal results as long as
        # `sal_stage` alone builds SAL stages (the training recipe in the key picks the stage), but a SALStage
        # built by hand on a sparse run is valid and means something else (SAL at its kept, maybe float16,
        # epochs only): with the tag no SALStage key is ever this stage's.
        r = self.run
        return (r.data, r.model, r.train, r.poison, self.sal, r.defense, IN_TRAINER)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "measured": "in the trainer"}

    def compute(self, ctx: Context) -> Computed:
        tracker = SALTracker(self.sal)
        trained: list[bool] = []

        def train_with_sal() -> TrainResult:
            trained.append(True)
            return self.run.trained(ctx, (tracker,))

        # Trained under the run's own lock (`Store.get_or_compute`), so a process asking for the plain run meanwhile
        # waits for this training instead of training the run too.
        ctx.store.get_or_compute(self.run.folder, self.run.key(), lambda: train_with_sal().to_store(),
                                 spec=self.run.record())
        if not trained:  # the run was stored already: trained again, for its SAL only
            train_with_sal()
        return self.stored(tracker.trace())


def sal_from_checkpoints(train_spec: TrainSpec) -> bool:
    """True if a run keeps every epoch's weights exactly (float32), so SAL can be measured after training."""
    return train_spec.checkpoint_every == 1 and train_spec.checkpoint_dtype == "float32"


def sal_stage(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec | None, sal: SALSpec, *,
              defense: DefenseSpec | None = None) -> Stage[SALTrace]:
    """The stage holding SAL of a run: on its stored checkpoints if it keeps them all, else from the trainer."""
    if sal_from_checkpoints(train_spec):
        return SALStage(TrainStage.of(data, model, train_spec, poison, defense=defense), sal)
    return TrainerSALStage(TrainStage.of(data, model, train_spec, poison, defense=defense), sal)
