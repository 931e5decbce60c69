"""Frozen, validated specifications: everything that determines a result, and nothing else.

A spec is the unit of caching: `spec.key()` is a stable content hash of its fields (and its class
name), so the same spec always maps to the same store entry, across processes and machines. Specs
hold only plain values (str, int, float, bool, None, tuples of pairs), never tensors or paths that
change the meaning of a result; the device is deliberately not part of a spec.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from landscape.errors import SpecError

SCHEMA_VERSION = 1

# Caps that keep a single request within minutes on a laptop; the error says what it would cost.
MAX_EPOCHS = 500
MAX_BATCH = 8192


def _check_range(owner: str, name: str, value: float, lo: float, hi: float, *, lo_open: bool = False) -> None:
    ok = (value > lo if lo_open else value >= lo) and value <= hi and math.isfinite(value)
    if not ok:
        bracket = "(" if lo_open else "["
        raise SpecError(f"{owner}.{name} = {value!r} is out of range; expected a value in {bracket}{lo}, {hi}]")


def _check_choice(owner: str, name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise SpecError(f"{owner}.{name} = {value!r} is not valid; choose one of {', '.join(choices)}")


class Spec:
    """Mixin for frozen dataclass specs: a stable `key()`, `to_dict()` and `from_dict()`."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of the fields (JSON-serialisable)."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    def key(self) -> str:
        """Stable 16-hex-digit content hash of the class name, schema version and fields."""
        payload = json.dumps(
            {"spec": type(self).__name__, "schema": SCHEMA_VERSION, "fields": self.to_dict()},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Inverse of `to_dict` for flat specs; nested specs override this."""
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise SpecError(f"{cls.__name__} has no field(s) {sorted(unknown)}; valid fields: {sorted(names)}")
        return cls(**data)


@dataclass(frozen=True)
class DataSpec(Spec):
    """Which data set, which subset.

    Args:
        name: registered data set ("digits", "cifar10", "cifar100").
        root: folder holding the data files (CIFAR only; digits ships with scikit-learn).
        n_train: stratified subset size of the training split (None = all).
        n_test: stratified subset size of the test split (None = all).
        split_seed: seed of the train/test split (digits) and of the subsets.
    """

    name: str = "digits"
    root: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    split_seed: int = 0

    def __post_init__(self) -> None:
        from landscape.data import DATASETS

        DATASETS.check(self.name)
        for attr in ("n_train", "n_test"):
            value = getattr(self, attr)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise SpecError(f"DataSpec.{attr} = {value!r} must be a positive integer or None (all)")


@dataclass(frozen=True)
class ModelSpec(Spec):
    """Which architecture.

    Args:
        name: registered model ("linear", "mlp", "cnn", "lenet5", "resnet18").
        width: channel/hidden-width multiplier (1 = the documented default).
    """

    name: str = "cnn"
    width: int = 1

    def __post_init__(self) -> None:
        from landscape.models import MODELS

        MODELS.check(self.name)
        _check_range("ModelSpec", "width", self.width, 1, 16)


@dataclass(frozen=True)
class TrainSpec(Spec):
    """How to train (one trainer for every model and experiment).

    Args:
        epochs: number of passes over the training set.
        batch_size: mini-batch size.
        optimizer: "sgd" (with momentum) or "adam".
        lr: learning rate (> 0).
        momentum: SGD momentum in [0, 1).
        weight_decay: L2 penalty coefficient (>= 0).
        schedule: "constant" or "cosine" learning-rate schedule over the epochs.
        augment: "none", "crop" (random crop after zero padding) or "crop_flip" (plus horizontal flip).
        crop_padding: padding in pixels for the random crop.
        seed: seed of initialisation, shuffling and augmentation.
        checkpoint_every: keep a parameter checkpoint every this many epochs (the last epoch always).
        checkpoint_dtype: "float32" or "float16" storage of checkpoints (bounded memory for big models).
    """

    epochs: int = 30
    batch_size: int = 64
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = 0.05
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: Literal["constant", "cosine"] = "constant"
    augment: Literal["none", "crop", "crop_flip"] = "none"
    crop_padding: int = 1
    seed: int = 0
    checkpoint_every: int = 1
    checkpoint_dtype: Literal["float32", "float16"] = "float32"

    def __post_init__(self) -> None:
        _check_range("TrainSpec", "epochs", self.epochs, 1, MAX_EPOCHS)
        _check_range("TrainSpec", "batch_size", self.batch_size, 1, MAX_BATCH)
        _check_choice("TrainSpec", "optimizer", self.optimizer, ("sgd", "adam"))
        _check_range("TrainSpec", "lr", self.lr, 0.0, 10.0, lo_open=True)
        _check_range("TrainSpec", "momentum", self.momentum, 0.0, 0.999)
        _check_range("TrainSpec", "weight_decay", self.weight_decay, 0.0, 1.0)
        _check_choice("TrainSpec", "schedule", self.schedule, ("constant", "cosine"))
        _check_choice("TrainSpec", "augment", self.augment, ("none", "crop", "crop_flip"))
        _check_range("TrainSpec", "crop_padding", self.crop_padding, 0, 16)
        _check_range("TrainSpec", "checkpoint_every", self.checkpoint_every, 1, MAX_EPOCHS)
        _check_choice("TrainSpec", "checkpoint_dtype", self.checkpoint_dtype, ("float32", "float16"))
        for name in ("epochs", "batch_size", "crop_padding", "checkpoint_every", "seed"):
            if not isinstance(getattr(self, name), int):
                raise SpecError(f"TrainSpec.{name} = {getattr(self, name)!r} must be an integer")


def options_dict(options: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The method-specific options of a spec as a dict (specs store them as sorted pairs to stay hashable)."""
    return dict(options)


def freeze_options(options: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """Sorted key/value pairs of `options`, the hashable form kept inside a spec."""
    return tuple(sorted((options or {}).items()))


@dataclass(frozen=True)
class PoisonSpec(Spec):
    """Which unlearnable-example method, at which budget, on which fraction of the training set.

    Args:
        method: registered poison method ("clean" means no poison).
        eps: budget under the method's norm (None = the method's documented default for the data set).
        ratio: fraction of the training images perturbed, in [0, 1].
        seed: seed of the crafting procedure and of the choice of poisoned images.
        options: method-specific settings as sorted (name, value) pairs; see each method's docstring.
    """

    method: str = "clean"
    eps: float | None = None
    ratio: float = 1.0
    seed: int = 0
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if self.method != "clean":
            from landscape.poisons import POISONS

            if self.method not in POISONS:
                choices = ["clean", *POISONS.names()]
                raise SpecError(f"unknown poison method {self.method!r}; valid choices: {', '.join(choices)}")
        _check_range("PoisonSpec", "ratio", self.ratio, 0.0, 1.0)
        if self.eps is not None:
            _check_range("PoisonSpec", "eps", self.eps, 0.0, 1e6, lo_open=True)
        object.__setattr__(self, "options", tuple(sorted(tuple(p) for p in self.options)))


def combined_key(*specs: Spec | None) -> str:
    """Stable hash of several specs together (e.g. data + poison), the key of a stage that depends on all."""
    parts = [s.key() if s is not None else "none" for s in specs]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
