"""The surrogate TAP and HYPO train: the `TrainSpec` their resolved options pass to the one trainer.

The CIFAR family follows the official TAP "conservative" recipe (Witches' Brew code) and APBench; digits and the
MNIST family keep the recipe (and the cache keys) they had before `crop_padding`, `schedule` and `nesterov` were
options.
The trainer is replaced by a stub that records its spec: what is checked is the spec, not a trained ResNet.
"""

from __future__ import annotations

import pytest
import torch

from landscape.config import PoisonSpec, TrainSpec
from landscape.poisons import build, resolve


class _Captured(Exception):
    pass


def surrogate_spec(method: str, dataset: str, monkeypatch, image_shape=(3, 32, 32)) -> TrainSpec:
    """The TrainSpec `method`'s default options on `dataset` train the surrogate with (nothing trains)."""
    seen: list[TrainSpec] = []

    def stub(model, train_set, test_set, spec, **kw):
        seen.append(spec)
        raise _Captured

    monkeypatch.setattr("landscape.train.train", stub)
    poison = build(PoisonSpec(method=method), dataset=dataset)
    x, y = torch.rand(16, *image_shape), torch.arange(16) % 10
    with pytest.raises(_Captured):
        poison.train_surrogate(x, y, 10, torch.Generator().manual_seed(0))
    return seen[0]


@pytest.mark.parametrize("method", ["tap", "hypo"])
@pytest.mark.parametrize("dataset", ["cifar10", "cifar100"])
def test_cifar_surrogate_is_the_official_conservative_recipe(method, dataset, monkeypatch):
    spec = surrogate_spec(method, dataset, monkeypatch)
    assert (spec.epochs, spec.lr, spec.batch_size) == (40, 0.1, 128)
    assert (spec.augment, spec.crop_padding, spec.schedule) == ("crop_flip", 4, "multistep")
    assert (spec.optimizer, spec.momentum, spec.weight_decay, spec.nesterov) == ("sgd", 0.9, 5e-4, True)
    assert build(PoisonSpec(method=method), dataset=dataset).options.surrogate == "resnet18"


@pytest.mark.parametrize(("method", "epochs"), [("tap", 10), ("hypo", 20)])
def test_digits_surrogate_recipe_is_unchanged(method, epochs, monkeypatch):
    spec = surrogate_spec(method, "digits", monkeypatch, image_shape=(1, 8, 8))
    assert spec.replace(seed=0) == TrainSpec(epochs=epochs, lr=0.05, batch_size=64, augment="none",
                                             checkpoint_every=epochs)
    assert (spec.crop_padding, spec.schedule, spec.nesterov) == (1, "constant", False)  # TrainSpec's defaults


def test_digits_and_mnist_keys_are_unchanged_by_the_new_options():
    """crop_padding, schedule and nesterov are left out of keys at their defaults: the stored digits and MNIST
    poisons stay valid (keys taken before the options were added); the CIFAR keys change with the recipe (the
    second pair: the keys before nesterov was part of it)."""
    keys = {(m, d): resolve(PoisonSpec(method=m), dataset=d).key()
            for m in ("tap", "hypo") for d in ("digits", "mnist", "cifar10")}
    assert keys[("tap", "digits")] == "7fe3d85e42e35366" and keys[("hypo", "digits")] == "9d3f4488a1b23ab4"
    assert keys[("tap", "mnist")] == "caf8e5810a816dd4" and keys[("hypo", "mnist")] == "1cf810dbee1cdb86"
    assert keys[("tap", "cifar10")] != "1d3b57a3a7b540f9" and keys[("hypo", "cifar10")] != "574c69b8cd973d75"
    assert keys[("tap", "cifar10")] != "2aa152ceeffc6c52" and keys[("hypo", "cifar10")] != "0ee99b659d85923d"


def test_surrogate_schedule_and_padding_are_checked_options():
    from landscape.errors import SpecError

    with pytest.raises(SpecError, match="'step' is not valid; choose one of constant, cosine, multistep"):
        build(PoisonSpec(method="tap", options=(("schedule", "step"),)), dataset="digits")
    with pytest.raises(SpecError, match=r"crop_padding = 17 is out of range; expected a value in \[0, 16\]"):
        build(PoisonSpec(method="hypo", options=(("crop_padding", 17),)), dataset="digits")
    assert build(PoisonSpec(method="tap", options=(("crop_padding", 2), ("schedule", "cosine"))),
                 dataset="digits").options.crop_padding == 2


def test_surrogate_nesterov_is_a_checked_option():
    from landscape.errors import SpecError

    with pytest.raises(SpecError, match="nesterov = 'yes' must be true or false"):
        build(PoisonSpec(method="tap", options=(("nesterov", "yes"),)), dataset="digits")
    assert build(PoisonSpec(method="hypo", options=(("nesterov", True),)), dataset="digits").options.nesterov is True
    assert build(PoisonSpec(method="tap"), dataset="digits").options.nesterov is False
