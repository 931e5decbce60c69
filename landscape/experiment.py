"""The one orchestrator: spec -> data -> poison -> train -> (SAL, surfaces, UD), each stage cached in the store.

Pages and the CLI call these functions and nothing below them, so a result seen in the app is the
result the CLI prints. Progress is reported as `progress(stage, done, total)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from landscape.config import (
    DataSpec,
    DefenseSpec,
    ExperimentSpec,
    ModelSpec,
    PoisonSpec,
    SALSpec,
    Spec,
    SurfaceSpec,
    TrainSpec,
    combined_key,
)
from landscape.data import ImageSet, Splits, load_data
from landscape.device import resolve_device
from landscape.models import build_model
from landscape.sal import SALTrace
from landscape.store import Store
from landscape.surface import SurfaceSet
from landscape.train import TrainResult, train
from landscape.ud import UDReport, unlearnable_distance

StageProgress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@functools.lru_cache(maxsize=8)
def get_splits(spec: DataSpec) -> Splits:
    """The data of `spec` (kept in memory per process; treat the tensors as read-only)."""
    return load_data(spec)


def _resolved(poison: PoisonSpec, data: DataSpec) -> PoisonSpec:
    """The poison spec with its data-set defaults filled in (the form every cache key is taken from)."""
    if poison.method == "clean":
        return poison
    from landscape.poisons import resolve

    return resolve(poison, dataset=data.name)


def get_poisoned_train(data: DataSpec, poison: PoisonSpec, *, store: Store, device: torch.device | str = "cpu",
                       progress: StageProgress = _no_progress) -> ImageSet:
    """The training split with the poison of `poison` applied (the clean split when `method == "clean"`)."""
    splits = get_splits(data)
    if poison.method == "clean":
        return splits.train
    from landscape.poisons import Crafted, craft

    poison = _resolved(poison, data)  # key by the budget actually used, not by "default"

    def compute() -> tuple[dict, dict]:
        crafted = craft(splits.train, poison, dataset=data.name, device=resolve_device(str(device)),
                        progress=lambda done, total: progress("craft", done, total))
        return crafted.to_store()

    key = combined_key(data, poison)
    entry = store.get_or_compute("poison", key, compute, spec={"data": data.to_dict(), "poison": poison.to_dict()})
    return Crafted.from_store(entry.meta, entry.arrays).apply(splits.train)


def _training_set(data: DataSpec, poison: PoisonSpec, defense: DefenseSpec | None, *, store: Store,
                  device: torch.device | str, progress: StageProgress) -> tuple[ImageSet, Any]:
    """The images a run trains on (poisoned, then the defense's preprocessing) and the defense's batch transform."""
    train_set = get_poisoned_train(data, poison, store=store, device=device, progress=progress)
    if defense is None:
        return train_set, None
    from landscape.defenses import prepare_defense

    preprocess, batch_transform = prepare_defense(defense, get_splits(data).num_classes)
    return train_set.with_images(preprocess(train_set.x)), batch_transform


def _sal_from_checkpoints(train_spec: TrainSpec) -> bool:
    """True if a run keeps every epoch's weights exactly (float32), so SAL can be measured after training."""
    return train_spec.checkpoint_every == 1 and train_spec.checkpoint_dtype == "float32"


def get_training(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec | None = None, *,
                 store: Store, device: torch.device | str = "cpu",
                 progress: StageProgress = _no_progress, sal: SALSpec | None = None,
                 defense: DefenseSpec | None = None) -> TrainResult:
    """Train `model` on the (poisoned) training split and return its trajectory, cached by all four specs.

    With `sal`, SAL of every weight layer is measured after each `sal.every`-th epoch (and the last) and
    returned with the run: `landscape.sal.SALTrace.from_dict(result.extras["sal"])`. When the run keeps every
    epoch's float32 weights (`checkpoint_every=1`, the default), SAL is measured on the stored checkpoints
    after training, as its own cached stage ("sal-<method>"), so the run is shared with every SAL setting and
    with callers that want no SAL; the numbers are bit-identical to measuring inside the trainer (tested).
    Otherwise a trainer callback measures it during training (the key then includes `sal`).
    With a `defense` other than "none" (`landscape.defenses`), its preprocessing is applied to the (poisoned)
    training images once before training and its batch transform to every batch; the key then includes it.
    """
    defense = None if defense is None or defense.is_none else defense
    poison = _resolved(poison or PoisonSpec(), data)
    if sal is not None and _sal_from_checkpoints(train_spec):
        run = get_training(data, model, train_spec, poison, store=store, device=device, progress=progress,
                           defense=defense)
        trace = _get_sal(data, model, train_spec, poison, sal, defense, run, store=store, device=device,
                         progress=progress)
        run.extras["sal"] = trace.to_dict()
        return run
    stage = "train-clean" if poison.method == "clean" else f"train-{poison.method}"

    def compute() -> tuple[dict, dict]:
        splits = get_splits(data)
        train_set, batch_transform = _training_set(data, poison, defense, store=store, device=device,
                                                   progress=progress)
        net = build_model(model.name, splits.image_shape, splits.num_classes, width=model.width, seed=train_spec.seed)
        callbacks = []
        if sal is not None:
            from landscape.sal import SALTracker

            tracker = SALTracker(sal)
            callbacks.append(tracker)
        result = train(net, train_set, splits.test, train_spec, device=resolve_device(str(device)),
                       callbacks=callbacks, progress=lambda done, total: progress(stage, done, total),
                       batch_transform=batch_transform)
        if sal is not None:
            result.extras["sal"] = tracker.trace().to_dict()
        return result.to_store()

    key = combined_key(data, model, train_spec, poison) if sal is None else combined_key(
        data, model, train_spec, poison, sal)
    if defense is not None:
        key = combined_key(data, model, train_spec, poison, sal, defense)
    spec = {"data": data.to_dict(), "model": model.to_dict(), "train": train_spec.to_dict(),
            "poison": poison.to_dict(), **({"sal": sal.to_dict()} if sal is not None else {}),
            **({"defense": defense.to_dict()} if defense is not None else {})}
    entry = store.get_or_compute("train", key, compute, spec=spec)
    return TrainResult.from_store(entry.meta, entry.arrays)


def _get_sal(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec, sal: SALSpec,
             defense: DefenseSpec | None, run: TrainResult, *, store: Store, device: torch.device | str,
             progress: StageProgress) -> SALTrace:
    """SAL of `run`'s stored checkpoints, cached: the trainer's `SALTracker` replayed on the stored epochs.

    The tracker sees what it would have seen inside the trainer (the epoch's weights, training images,
    running loss and accuracy), under the trainer's thread setting, so it measures the same epochs and numbers.
    """
    from landscape.device import reproducible_threads
    from landscape.sal import SALTracker
    from landscape.train import EpochState

    stage = "sal-clean" if poison.method == "clean" else f"sal-{poison.method}"

    def compute() -> tuple[dict, dict]:
        dev = resolve_device(str(device))
        splits = get_splits(data)
        train_set, _ = _training_set(data, poison, defense, store=store, device=device, progress=progress)
        x, y = train_set.x.to(dev), train_set.y.to(dev)
        net = build_model(model.name, splits.image_shape, splits.num_classes, width=model.width,
                          seed=train_spec.seed).to(dev)
        tracker, h = SALTracker(sal), run.history
        # the epochs the run finished (a diverged run stops early) at which the tracker measures
        epochs = [e for e in run.checkpoint_epochs[1:] if tracker.measures(e, train_spec.epochs)]
        with reproducible_threads(dev):
            for i, epoch in enumerate(epochs):
                net.load_state_dict(run.checkpoints[run.checkpoint_epochs.index(epoch)])
                tracker(EpochState(epoch, net, x, y, float(h["train_loss"][epoch - 1]),
                                   float(h["train_acc"][epoch - 1]), float(h["test_loss"][epoch - 1]),
                                   float(h["test_acc"][epoch - 1]), train_spec))
                progress(stage, i + 1, len(epochs))
        return {"sal": tracker.trace().to_dict()}, {}

    key = combined_key(data, model, train_spec, poison, sal, defense)
    spec = {"data": data.to_dict(), "model": model.to_dict(), "train": train_spec.to_dict(),
            "poison": poison.to_dict(), "sal": sal.to_dict(),
            **({"defense": defense.to_dict()} if defense is not None else {})}
    entry = store.get_or_compute("sal", key, compute, spec=spec)
    return SALTrace.from_dict(entry.meta["sal"])


def get_surface(data: DataSpec, model: ModelSpec, train_spec: TrainSpec,
                poisons: PoisonSpec | Sequence[PoisonSpec] | None, surface: SurfaceSpec, *, store: Store,
                device: torch.device | str = "cpu", progress: StageProgress = _no_progress) -> SurfaceSet:
    """Loss/accuracy surfaces of the clean run and the poisoned run(s), cached by every spec involved.

    Trains (or loads) the clean run and one run per poison through `get_training`, then slices by
    `surface.kind` (see `landscape.surface.compute_surfaces` for what each kind and plane mode gives):
    "pca" with `plane="shared"` gives one surface {"shared"} with every optimisation path on it; "pca" with
    `plane="own"` and "random" give one surface per model, labelled "clean" and by poison method; "interp"
    gives {"interp"}, the clean -> poisoned line or the plane through clean, poisoned and a third model.
    Progress stages: the training stages, then "surface" in point-batches.
    """
    from landscape.surface import compute_surfaces, run_labels

    poison_list = [_resolved(p, data) for p in ([poisons] if isinstance(poisons, PoisonSpec) else list(poisons or []))
                   if p.method != "clean"]
    labels = run_labels(poison_list)

    def compute() -> tuple[dict, dict]:
        runs = {"clean": get_training(data, model, train_spec, None, store=store, device=device, progress=progress)}
        for label, poison in zip(labels[1:], poison_list, strict=True):
            runs[label] = get_training(data, model, train_spec, poison, store=store, device=device, progress=progress)
        splits = get_splits(data)
        net = build_model(model.name, splits.image_shape, splits.num_classes, width=model.width, seed=train_spec.seed)
        result = compute_surfaces(net, runs, splits, surface, device=resolve_device(str(device)),
                                  progress=lambda done, total: progress("surface", done, total))
        return result.to_store()

    key = combined_key(data, model, train_spec, surface, *poison_list)
    spec = {"data": data.to_dict(), "model": model.to_dict(), "train": train_spec.to_dict(),
            "poisons": [p.to_dict() for p in poison_list], "surface": surface.to_dict()}
    entry = store.get_or_compute("surface", key, compute, spec=spec)
    return SurfaceSet.from_store(entry.meta, entry.arrays)


UD_VERSION = "ud-1"  # bump when the UD computation changes, so cached UD entries are recomputed


@dataclass
class ExperimentResult:
    """Everything one clean-vs-poisoned experiment produced.

    Attributes:
        spec: the experiment's spec.
        clean, poisoned: the two training runs (history, checkpoints); `poisoned is clean` for method "clean".
        sal_clean, sal_poisoned: SAL of every weight layer at every measured epoch, (T, L) arrays.
        ud: β, per-epoch learnable counts and flags of both runs, UD and the continuous measures.
    """

    spec: ExperimentSpec
    clean: TrainResult
    poisoned: TrainResult
    sal_clean: SALTrace
    sal_poisoned: SALTrace
    ud: UDReport

    def summary(self) -> dict[str, Any]:
        """Headline numbers: final accuracies, β, #LP, UD, per-epoch counts and the continuous measures."""
        def final(run: TrainResult, key: str) -> float | None:
            values = run.history[key]
            return float(values[-1]) if len(values) else None

        return {
            "dataset": self.spec.data.name, "model": self.spec.model.name, "method": self.spec.poison.method,
            "sal": self.spec.sal.preset_name, "epochs": self.spec.train.epochs,
            "clean_test_acc": final(self.clean, "test_acc"), "poisoned_test_acc": final(self.poisoned, "test_acc"),
            "clean_train_acc": final(self.clean, "train_acc"),
            "poisoned_train_acc": final(self.poisoned, "train_acc"),
            "diverged": {"clean": self.clean.diverged, "poisoned": self.poisoned.diverged},
            **self.ud.summary(),
            "counts_clean": self.ud.counts_clean.tolist(), "counts_poisoned": self.ud.counts_poisoned.tolist(),
            "layers": list(self.sal_clean.layers),
            "w1_layers": None if self.ud.w1_layers is None else self.ud.w1_layers.tolist(),
            "mean_ratio_layers": None if self.ud.mean_ratio_layers is None else self.ud.mean_ratio_layers.tolist(),
            "notes": list(self.ud.notes),
            "sal_seconds": float(self.sal_clean.seconds.sum() + (0.0 if self.poisoned is self.clean
                                                                  else self.sal_poisoned.seconds.sum())),
        }


def run_experiment(spec: ExperimentSpec, *, store: Store, device: torch.device | str = "cpu",
                   progress: StageProgress = _no_progress) -> ExperimentResult:
    """Data -> (craft the UE) -> train clean and poisoned with SAL every epoch -> UD, every stage cached.

    Progress stages: "craft" (if the poison is not cached), "train-clean", "train-<method>" (one step per
    epoch), "sal-clean", "sal-<method>" (one step per measured epoch; inside the training stages when the
    runs do not keep every epoch's weights), "ud".
    """
    clean = get_training(spec.data, spec.model, spec.train, PoisonSpec(), store=store, device=device,
                         progress=progress, sal=spec.sal, defense=spec.defense)
    if spec.poison.method == "clean":
        poisoned = clean
    else:
        poisoned = get_training(spec.data, spec.model, spec.train, spec.poison, store=store, device=device,
                                progress=progress, sal=spec.sal, defense=spec.defense)
    sal_clean = SALTrace.from_dict(clean.extras["sal"])
    sal_poisoned = SALTrace.from_dict(poisoned.extras["sal"])

    def compute() -> tuple[dict, dict]:
        progress("ud", 0, 1)
        report = unlearnable_distance(sal_clean, sal_poisoned)
        return {"ud": report.to_dict()}, {}

    key = combined_key(spec.replace(poison=_resolved(spec.poison, spec.data)), _Version(UD_VERSION))
    entry = store.get_or_compute("ud", key, compute, spec=spec.to_dict())
    progress("ud", 1, 1)
    return ExperimentResult(spec, clean, poisoned, sal_clean, sal_poisoned, UDReport.from_dict(entry.meta["ud"]))


@dataclass(frozen=True)
class _Version(Spec):
    """A version tag that takes part in a `combined_key`."""

    tag: str
