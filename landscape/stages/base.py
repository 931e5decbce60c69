"""The pattern every cached stage follows: resolve -> key -> spec record -> exists / load / compute.

A stage is a frozen dataclass holding *resolved* specs (`resolve_*` below fill in the data set's defaults
and check every registered name through `Registry.get`), built by its `of(...)` constructor. From those
specs alone it derives its store key (`key()`, which also hashes the content of the data files,
`landscape.data.fingerprint`), the spec record written beside the entry (`record()`), how to compute the
entry (`compute(ctx)`), which stages' entries that reads (`inputs()`; `closure` follows them, e.g. to ship the demo
snapshot with nothing missing and nothing stale) and how to turn an entry back into the result object
(`decode(entry)`). So "is this
computed?" (`exists`), "load it" (`load`) and "compute it" (`get`) can never disagree: they all go
through the same key. Nothing outside `landscape.stages` builds a key or talks to the store with one.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np
import torch
from torch import nn

from landscape.config import DataSpec, DefenseSpec, ModelSpec, PoisonSpec, Spec, combined_key
from landscape.data import DATASETS, Splits, load_data
from landscape.data.fingerprint import data_fingerprint
from landscape.defenses import resolve_defense as _complete_defense
from landscape.device import resolve_device
from landscape.errors import SpecError
from landscape.models.base import build_model, model_builder, weight_layers
from landscape.models.user import fingerprint, is_user_model
from landscape.poisons import provided, resolve
from landscape.store import Entry, Store

R = TypeVar("R")
StageProgress = Callable[[str, int, int], None]
Computed = tuple[dict[str, Any], dict[str, np.ndarray]]


def no_progress(stage: str, done: int, total: int) -> None:
    """The default progress callback: report nothing."""
    return None


# ------------------------------------------------------------------------------------------------ resolve


def resolve_data(data: DataSpec) -> DataSpec:
    """`data` once its data set is known to be registered (an unknown name lists the valid ones)."""
    DATASETS.get(data.name)
    return data


def resolve_model(model: ModelSpec, data: DataSpec | None = None) -> ModelSpec:
    """`model` once its architecture is known: registered, or a user model checked on `data` and fingerprinted.

    A user model (``package.module:factory``, `landscape.models.user`) is built for the data's image shape and
    classes (every check of `build_model` runs) and its code-and-architecture fingerprint is put in
    `ModelSpec.code`, so every key holding the spec changes when the model does. Registered models keep
    `code = None` (their keys are those of before user models existed) and need no `data`.
    """
    if not is_user_model(model.name):
        model_builder(model.name)  # an unknown name lists the valid ones
        return model if model.code is None else model.replace(code=None)
    if data is None:
        raise SpecError(f"user model {model.name!r} is resolved for a data set (its image shape and classes); "
                        f"give the DataSpec")
    splits = get_splits(data)
    return model.replace(code=fingerprint(model.name, splits.image_shape, splits.num_classes, model.width))


def resolve_poison(poison: PoisonSpec | None, data: DataSpec) -> PoisonSpec:
    """The poison with eps and every option filled in from the method's defaults for the data set.

    Cache keys are taken from the resolved spec, so a changed default never serves a stale poison. None and
    "clean" give `PoisonSpec()`. What only the data's training split tells is checked here too, before any work:
    a ratio that poisons none of its images, and the shape of provided images (`landscape.poisons.provided`);
    the split is loaded for that (once per process, `get_splits`), for a ratio below 1 or provided images only.
    """
    if poison is None or poison.is_clean:
        return PoisonSpec()
    if poison.method == provided.PROVIDED:  # the user's own poisoned images
        return provided.resolve(poison, tuple(get_splits(data).train.x.shape), data.name)
    return resolve(poison, dataset=data, n_train=len(get_splits(data).train) if poison.ratio < 1 else None)


def resolve_poisons(poisons: PoisonSpec | Sequence[PoisonSpec] | None, data: DataSpec) -> tuple[PoisonSpec, ...]:
    """The poisoned runs of a request, resolved (clean entries dropped: the clean run is always there)."""
    given = [poisons] if isinstance(poisons, PoisonSpec) else list(poisons or [])
    return tuple(resolve_poison(p, data) for p in given if not p.is_clean)


def resolve_defense(defense: DefenseSpec | None) -> DefenseSpec | None:
    """The defense with its options completed, or None for no defense ("none")."""
    if defense is None or defense.is_none:
        return None
    return _complete_defense(defense)


@dataclass(frozen=True)
class Version(Spec):
    """A version tag that takes part in a key (bump it when a stage's computation changes)."""

    tag: str


@dataclass(frozen=True)
class DataFiles(Spec):
    """The content fingerprint of a file-backed data set's files (part of every key that depends on them)."""

    fingerprint: str


def data_parts(data: DataSpec) -> tuple[Spec, ...]:
    """What a key hashes about the data: nothing for data sets that read no files, else their content."""
    fingerprint = data_fingerprint(data)
    return () if fingerprint is None else (DataFiles(fingerprint),)


@functools.lru_cache(maxsize=8)
def _splits(data: DataSpec, fingerprint: str | None) -> Splits:
    return load_data(data)


def get_splits(data: DataSpec) -> Splits:
    """The data of `data` (kept in memory per process and file content; treat the tensors as read-only)."""
    return _splits(resolve_data(data), data_fingerprint(data))


def build_net(model: ModelSpec, data: DataSpec, seed: int = 0) -> nn.Module:
    """A fresh network of `model` for `data`'s image shape and classes, its parameters initialised from `seed`."""
    splits = get_splits(data)
    return build_model(model.name, splits.image_shape, splits.num_classes, width=model.width, seed=seed)


@functools.lru_cache(maxsize=16)
def _tensor_names(model: ModelSpec, data: DataSpec, fingerprint: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    net = build_net(model, data)
    return tuple(net.state_dict()), tuple(weight_layers(net))


def check_layers(layers: Sequence[str], model: ModelSpec, data: DataSpec) -> None:
    """Refuse layer names that are not state-dict entries of `model` built for `data`, listing its weight layers.

    The network is built (not trained) to read its names, once per model and data content, so a request that
    names a wrong layer is refused before any run trains.
    """
    names, weights = _tensor_names(model, data, data_fingerprint(data))
    missing = [n for n in layers if n not in names]
    if missing:
        what = "is not a tensor" if len(missing) == 1 else "are not tensors"
        raise SpecError(f"LayerSliceSpec.layers: {', '.join(missing)} {what} of {model.name}; its weight layers: "
                        f"{', '.join(weights)}")


# ------------------------------------------------------------------------------------------------ stages


@dataclass(frozen=True)
class Context:
    """Where a stage computes: the store its inputs and results live in, the device and a progress callback."""

    store: Store
    device: torch.device | str = "cpu"
    progress: StageProgress = no_progress

    def torch_device(self) -> torch.device:
        """`device` as a torch device ("auto" and names resolved, `landscape.device.resolve_device`)."""
        return resolve_device(str(self.device))

    def reporter(self, stage: str) -> Callable[[int, int], None]:
        """A `(done, total)` callback reporting to `progress` under the name `stage`."""
        return lambda done, total: self.progress(stage, done, total)


class Stage(ABC, Generic[R]):
    """One cached stage; a concrete stage is a frozen dataclass of resolved specs with a `data` field.

    Class data:
        folder: the store's stage folder.
    """

    folder: ClassVar[str]
    data: DataSpec

    @abstractmethod
    def parts(self) -> tuple[Spec | None, ...]:
        """The resolved specs the key hashes (in a fixed order; the data files' fingerprint is appended)."""

    @abstractmethod
    def record(self) -> dict[str, Any]:
        """The spec record stored beside the entry."""

    @abstractmethod
    def compute(self, ctx: Context) -> Computed:
        """(metadata, arrays) of the entry, computed from scratch (inputs from their own stages)."""

    @abstractmethod
    def decode(self, entry: Entry) -> R:
        """The result object of a stored entry."""

    @abstractmethod
    def inputs(self) -> tuple[Stage[Any], ...]:
        """The stages whose entries `compute` reads (their own inputs are theirs to list; see `closure`)."""

    @classmethod
    def retired(cls, record: dict[str, Any]) -> str | None:
        """Why an intact entry of this folder (its meta.json `record`) is one this stage no longer reads, or None.

        A layout the stage wrote once and writes no more (its keys are no key of today's); see
        `landscape.stages.folders`. By default every entry may be read.
        """
        return None

    def key(self) -> str:
        """The store key: the specs of `parts()` and the content of the data files."""
        return combined_key(*self.parts(), *data_parts(self.data))

    def exists(self, store: Store) -> bool:
        """True if the store holds a valid, decodable entry (nothing is computed; an unusable one is dropped)."""
        return self.load(store) is not None

    def load(self, store: Store) -> R | None:
        """The stored result, or None if absent (nothing is computed)."""
        return store.load(self.folder, self.key(), self.decode)  # an undecodable entry is dropped, not raised

    def origin(self, store: Store) -> Path | None:
        """The folder that serves the stored result (a read-only snapshot of the store, or its own), or None."""
        return store.origin(self.folder, self.key())

    def get(self, ctx: Context) -> R:
        """The stored result, or computed (under the store's per-key lock), stored and returned."""
        return ctx.store.get_or_compute(self.folder, self.key(), lambda: self.compute(ctx), spec=self.record(),
                                        decode=self.decode)

    def put(self, ctx: Context, computed: Computed) -> R:
        """Store `computed` as this stage's entry (computed elsewhere: in parts, by `landscape.stages.pool`).

        An entry already stored is kept and returned, as `get` would.
        """
        return ctx.store.get_or_compute(self.folder, self.key(), lambda: computed, spec=self.record(),
                                        decode=self.decode)


class OnRun(Stage[R]):
    """A stage computed from another stage's result, `run` (a training run, imported weights): the run's data."""

    run: Stage[Any]

    @property
    def data(self) -> DataSpec:  # type: ignore[override]
        return self.run.data

    def inputs(self) -> tuple[Stage[Any], ...]:
        return (self.run,)


def closure(stages: Sequence[Stage[Any]]) -> dict[tuple[str, str], Stage[Any]]:
    """`stages` and every stage they read, transitively, by (folder, key): what must be stored to serve them.

    A store holding these entries serves every stage of `stages` and can compute any of them again without
    crafting or training anew (e.g. the demo snapshot, `landscape.demo`, ships exactly these).
    """
    found: dict[tuple[str, str], Stage[Any]] = {}
    todo = list(stages)
    while todo:
        stage = todo.pop()
        if (stage.folder, stage.key()) not in found:
            found[stage.folder, stage.key()] = stage
            todo.extend(stage.inputs())
    return found
