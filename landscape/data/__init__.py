"""Data sets: the `DATASETS` registry and `load_data(spec)`.

Each registered loader takes a `DataSpec` and returns `Splits` (train + clean test) of `ImageSet`s. Its
metadata says what the rest of the engine needs to know about it, so a new data set is one registration:

- `family`: the poison-defaults family ("digits", "cifar", ...), see each poison method's docstring;
- `channels`: image channels; `needs_root`: whether `DataSpec.root` must name a folder of files;
- `files`: for file-backed sets, `DataSpec -> list[Path]` of the files read, whose contents enter cache keys
  (`landscape.data.fingerprint`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from landscape.data.imageset import ImageSet, Splits, check_images, stratified_subset
from landscape.registry import Registry

if TYPE_CHECKING:
    from landscape.config import DataSpec

DATASETS: Registry[Callable[[DataSpec], Splits]] = Registry("data set")


@DATASETS.register("digits", family="digits", channels=1, needs_root=False)
def _digits(spec: DataSpec) -> Splits:
    from landscape.data import digits

    return digits.load(spec.split_seed)


def _cifar_files(num_classes: int) -> Callable[[DataSpec], list]:
    def files(spec: DataSpec) -> list:
        from landscape.data import cifar

        return cifar.data_files(spec.root, num_classes)

    return files


@DATASETS.register("cifar10", family="cifar", channels=3, needs_root=True, files=_cifar_files(10))
def _cifar10(spec: DataSpec) -> Splits:
    from landscape.data import cifar

    return cifar.load(spec.root, num_classes=10)


@DATASETS.register("cifar100", family="cifar", channels=3, needs_root=True, files=_cifar_files(100))
def _cifar100(spec: DataSpec) -> Splits:
    from landscape.data import cifar

    return cifar.load(spec.root, num_classes=100)


def _idx_files(name: str) -> Callable[[DataSpec], list]:
    def files(spec: DataSpec) -> list:
        from landscape.data import mnist

        return mnist.data_files(spec.root, name)

    return files


@DATASETS.register("mnist", family="mnist", channels=1, needs_root=True, files=_idx_files("mnist"))
def _mnist(spec: DataSpec) -> Splits:
    from landscape.data import mnist

    return mnist.load(spec.root, "mnist")


@DATASETS.register("fashion-mnist", family="mnist", channels=1, needs_root=True, files=_idx_files("fashion-mnist"))
def _fashion_mnist(spec: DataSpec) -> Splits:
    from landscape.data import mnist

    return mnist.load(spec.root, "fashion-mnist")


def _mnist_subset_files(spec: DataSpec) -> list:
    from landscape.data import mnist_subset

    return [mnist_subset.data_file()]


@DATASETS.register("mnist-5k", family="mnist", channels=1, needs_root=False, files=_mnist_subset_files)
def _mnist_subset(spec: DataSpec) -> Splits:
    from landscape.data import mnist_subset

    return mnist_subset.load(spec.split_seed)


def load_data(spec: DataSpec) -> Splits:
    """Load the data set named by `spec`, then take the stratified subsets it asks for."""
    splits = DATASETS.get(spec.name)(spec)
    train, test = splits.train, splits.test
    if spec.n_train is not None:
        train = train.subset(stratified_subset(train.y, spec.n_train, spec.split_seed))
    if spec.n_test is not None:
        test = test.subset(stratified_subset(test.y, spec.n_test, spec.split_seed))
    return Splits(splits.name, train, test)


__all__ = ["DATASETS", "ImageSet", "Splits", "check_images", "load_data", "stratified_subset"]
