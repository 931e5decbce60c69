"""The one orchestrator: spec -> data -> poison -> train -> (SAL, surfaces, UD), each stage cached in the store.

Pages and the CLI call these functions and nothing below them, so a result seen in the app is the
result the CLI prints. Progress is reported as `progress(stage, done, total)`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import torch

from landscape.config import DataSpec, ModelSpec, PoisonSpec, TrainSpec, combined_key
from landscape.data import ImageSet, Splits, load_data
from landscape.device import resolve_device
from landscape.models import build_model
from landscape.store import Store
from landscape.train import TrainResult, train

StageProgress = Callable[[str, int, int], None]


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@functools.lru_cache(maxsize=8)
def get_splits(spec: DataSpec) -> Splits:
    """The data of `spec` (kept in memory per process; treat the tensors as read-only)."""
    return load_data(spec)


def get_poisoned_train(data: DataSpec, poison: PoisonSpec, *, store: Store, device: torch.device | str = "cpu",
                       progress: StageProgress = _no_progress) -> ImageSet:
    """The training split with the poison of `poison` applied (the clean split when `method == "clean"`)."""
    splits = get_splits(data)
    if poison.method == "clean":
        return splits.train
    from landscape.poisons import Crafted, craft

    def compute() -> tuple[dict, dict]:
        crafted = craft(splits.train, poison, dataset=data.name, device=resolve_device(str(device)),
                        progress=lambda done, total: progress("craft", done, total))
        return crafted.to_store()

    key = combined_key(data, poison)
    entry = store.get_or_compute("poison", key, compute, spec={"data": data.to_dict(), "poison": poison.to_dict()})
    return Crafted.from_store(entry.meta, entry.arrays).apply(splits.train)


def get_training(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec | None = None, *,
                 store: Store, device: torch.device | str = "cpu",
                 progress: StageProgress = _no_progress) -> TrainResult:
    """Train `model` on the (poisoned) training split and return its trajectory, cached by all four specs."""
    poison = poison or PoisonSpec()
    stage = "train-clean" if poison.method == "clean" else f"train-{poison.method}"

    def compute() -> tuple[dict, dict]:
        splits = get_splits(data)
        train_set = get_poisoned_train(data, poison, store=store, device=device, progress=progress)
        net = build_model(model.name, splits.image_shape, splits.num_classes, width=model.width, seed=train_spec.seed)
        result = train(net, train_set, splits.test, train_spec, device=resolve_device(str(device)),
                       progress=lambda done, total: progress(stage, done, total))
        return result.to_store()

    key = combined_key(data, model, train_spec, poison)
    spec = {"data": data.to_dict(), "model": model.to_dict(), "train": train_spec.to_dict(),
            "poison": poison.to_dict()}
    entry = store.get_or_compute("train", key, compute, spec=spec)
    return TrainResult.from_store(entry.meta, entry.arrays)
