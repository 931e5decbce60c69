"""Unlearnable-example methods: the `POISONS` registry (one module per method) and `craft`.

`craft(train, spec, dataset=...)` builds the registered `PoisonMethod` named by `spec.method` and returns
a `Crafted`: the exact perturbation and the mask of poisoned images, replayable with `Crafted.apply`
and stored through `Crafted.to_store`/`from_store`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch

from landscape.config import DataSpec, PoisonSpec, freeze_options
from landscape.data.imageset import ImageSet
from landscape.errors import SpecError
from landscape.poisons.base import POISONS, Crafted, PoisonMethod, budget_figures

# Register the members, explicitly and in listing order (app, CLI, benchmarks): the L∞ baseline, the L∞
# surrogate-based methods, then the model-free ones (L2, L0, not norm-bounded). File stem = registry key.
METHOD_MODULES = ("random", "em", "rem", "tap", "hypo", "lsp", "ar", "ops", "cuda")
for _module in METHOD_MODULES:
    importlib.import_module(f"landscape.poisons.{_module}")


def build(spec: PoisonSpec, *, dataset: str | DataSpec, device: torch.device | str = "cpu") -> PoisonMethod:
    """The configured method object of `spec` (validates options and the budget's scale)."""
    if spec.is_clean:
        raise SpecError("method 'clean' has nothing to craft; choose one of " + ", ".join(POISONS.names()))
    cls = POISONS.get(spec.method)
    return cls(spec, dataset=dataset, device=device)


def resolve(spec: PoisonSpec, *, dataset: str | DataSpec, n_train: int | None = None) -> PoisonSpec:
    """`spec` with eps and every option filled in from the method's defaults for `dataset`.

    Cache keys are taken from the resolved spec, so changing a method's documented default, or fixing it
    (`PoisonMethod.revisions`), never serves a poison crafted before. "clean" is returned unchanged. With
    `n_train`, the size of the training split, a ratio that poisons none of its images is refused
    (`PoisonMethod.poisoned_count`).
    """
    if spec.is_clean:
        return spec
    method = build(spec, dataset=dataset)
    if n_train is not None:
        method.poisoned_count(n_train)
    return spec.replace(eps=method.eps, options=freeze_options(method.options.to_dict()), revision=method.revision)


def craft(train: ImageSet, spec: PoisonSpec, *, dataset: str | DataSpec, device: torch.device | str = "cpu",
          progress: Callable[[int, int], None] | None = None) -> Crafted:
    """Craft the poison of `spec` for the training set `train` (not modified).

    Args:
        train: the clean training images and labels.
        spec: method, eps (None = the method's default for `dataset`), ratio, seed and options.
        dataset: data set name or `DataSpec`; selects the defaults ("digits", "cifar10", ...; a user data set's
            `DataSpec`, whose defaults depend on its images).
        device: where crafting runs; the result is on the CPU.
        progress: called as `progress(done, total)`.
    """
    method = build(spec, dataset=dataset, device=device)
    return method.craft(train.x, train.y, num_classes=train.num_classes, progress=progress)


__all__ = ["POISONS", "Crafted", "PoisonMethod", "budget_figures", "build", "craft", "resolve"]
