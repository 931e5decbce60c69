"""Data sets: the `DATASETS` registry and `load_data(spec)`.

Each registered loader takes a `DataSpec` and returns `Splits` (train + clean test) of `ImageSet`s. Its
metadata says what the rest of the engine needs to know about it, so a new data set is one registration:

- `family`: the poison-defaults family ("digits", "cifar", ...), see each poison method's docstring; for the
  user data sets a function `DataSpec -> str` that reads it from the images (`landscape.data.user`);
- `channels`: image channels (None: read from the files); `needs_root`: whether `DataSpec.root` must name the
  data's folder (or file);
- `files`: for file-backed sets, `DataSpec -> list[Path]` of the files read, whose contents enter cache keys
  (`landscape.data.fingerprint`);
- `resizable`: whether the set resizes its images to `DataSpec.resize` (the image folder);
- `syntax`: for the user data sets, how a user names one (``npz:FILE.npz``).

The user data sets: "npz" (`npz:PATH`, `landscape.data.npz`) and "folder" (`folder:PATH[?size=N]`,
`landscape.data.folder`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch

from landscape.data.imageset import ImageSet, Splits, stratified_subset
from landscape.errors import DataError, SpecError
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


def _user_family(spec: DataSpec) -> str:
    from landscape.data import user

    return user.family(spec)


def _npz_files(spec: DataSpec) -> list:
    from landscape.data import npz

    return [npz.data_file(spec)]


@DATASETS.register("npz", family=_user_family, channels=None, needs_root=True, files=_npz_files,
                   syntax="npz:FILE.npz")
def _npz(spec: DataSpec) -> Splits:
    from landscape.data import npz

    return npz.load(spec)


def _folder_files(spec: DataSpec) -> list:
    from landscape.data import folder

    return folder.image_files(spec)


@DATASETS.register("folder", family=_user_family, channels=None, needs_root=True, files=_folder_files,
                   resizable=True, syntax="folder:PATH[?size=N]")
def _folder(spec: DataSpec) -> Splits:
    from landscape.data import folder

    return folder.load(spec)


def load_data(spec: DataSpec) -> Splits:
    """Load the data set named by `spec`, then take the stratified subsets it asks for."""
    if spec.resize is not None and not DATASETS.meta(spec.name).get("resizable"):
        resizable = [n for n in DATASETS.names() if DATASETS.meta(n).get("resizable")]
        raise SpecError(f"DataSpec.resize = {spec.resize} applies to {', '.join(resizable)} only, not to "
                        f"{spec.name!r}, whose images have one size")
    splits = DATASETS.get(spec.name)(spec)
    train, test = splits.train, splits.test
    for split, images in (("train", train), ("test", test)):
        if len(images) == 0:
            raise DataError(f"the {split} split of {spec.text()} holds no images")
    if spec.n_train is not None:
        train = train.subset(stratified_subset(train.y, _subset_size(spec, "n_train", train), spec.split_seed))
    if spec.n_test is not None:
        test = test.subset(stratified_subset(test.y, _subset_size(spec, "n_test", test), spec.split_seed))
    return Splits(splits.name, train, test)


def _subset_size(spec: DataSpec, field: str, images: ImageSet) -> int:
    """`spec.<field>`, refused unless it keeps at least one image per class and at most the whole split."""
    n, classes = getattr(spec, field), len(torch.unique(images.y))
    if not classes <= n <= len(images):
        split = "training" if field == "n_train" else "test"
        raise SpecError(f"DataSpec.{field} = {n} is out of range for {spec.text()}: its {split} split has "
                        f"{len(images)} images in {classes} classes; choose {classes} to {len(images)} "
                        f"(at least one image per class, at most the whole split)")
    return n


__all__ = ["DATASETS", "ImageSet", "Splits", "load_data", "stratified_subset"]
