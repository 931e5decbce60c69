"""What the user data sets ("npz", `landscape.data.npz`; "folder", `landscape.data.folder`) share.

- `labelled_splits`: labels checked (integers 0..K-1, every class in the training split, K >= 2) and, when the
  user gives no test split, a seeded, stratified 80/20 split (`DataSpec.split_seed`, scikit-learn's
  `train_test_split`, as for digits and MNIST-5k).
- `given_path`: the folder or file a user data set names (`DataSpec.root`), checked to exist as that kind.
- `family`: the poison-defaults family chosen from the images (the registry's `family` metadata, a function
  of the spec for these sets): one channel and at most 16 pixels a side -> "digits" (the 8x8 digits defaults,
  e.g. L∞ 64/255); one channel, larger -> "mnist" (the 28x28 MNIST defaults); three channels -> "cifar" (the
  literature's CIFAR defaults, e.g. L∞ 8/255). The loaders accept 1 or 3 channels only.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from landscape.data.imageset import ImageSet, Splits
from landscape.errors import DataError, SpecError
from landscape.paths import user_path

if TYPE_CHECKING:
    from landscape.config import DataSpec

TEST_FRACTION = 0.2
SMALL_SIDE = 16  # grey images at most this size take the digits defaults, larger ones MNIST's


def given_path(spec: DataSpec, *, folder: bool, usage: str, what: str, expected: str) -> Path:
    """The path `spec.root` names, refused unless it is an existing folder (`folder`) or file.

    Args:
        spec: the data set's spec; its name and root are read.
        folder: True for a folder (the "folder" set), False for a file (the "npz" set).
        usage: how the set is named with its path, e.g. "npz:PATH".
        what: the path in messages about the path itself, e.g. "the npz file".
        expected: what the path must hold, ending every message (the layout and where it is documented).
    """
    kind = "folder" if folder else "file"
    if not spec.root:
        raise DataError(f"data set {spec.name!r} needs its {kind}: {usage}; expected {expected}")
    path = user_path(spec.root, what)
    if not (path.is_dir() if folder else path.is_file()):
        raise DataError(f"{path} is not a {kind}; expected {expected}")
    return path


def family_of_shape(image_shape: tuple[int, int, int]) -> str:
    """The poison-defaults family of images of shape (C, H, W) (see the module docstring)."""
    c, h, w = image_shape
    if c == 1:
        return "digits" if max(h, w) <= SMALL_SIDE else "mnist"
    if c == 3:
        return "cifar"
    raise SpecError(f"poison defaults exist for images with 1 channel (digits, MNIST) or 3 (CIFAR), not {c}")


def family(spec: DataSpec) -> str:
    """The poison-defaults family of a user data set: read from its images (`family_of_shape`)."""
    from landscape.data import load_data

    return family_of_shape(load_data(spec).image_shape)


def check_labels(y: np.ndarray, what: str, source: str) -> np.ndarray:
    """`y` as int64 (N,), refused unless it holds whole non-negative class indices."""
    if y.ndim != 1 or y.dtype == bool or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{source}: {what} has dtype {y.dtype} and shape {y.shape}; expected integer class "
                        f"indices 0..K-1 of shape (N,)")
    if len(y) and int(y.min()) < 0:
        raise DataError(f"{source}: {what} holds the label {int(y.min())}; labels must be class indices 0..K-1")
    if len(y) and int(y.max()) > np.iinfo(np.int64).max:  # uint64: it would wrap to a negative int64
        raise DataError(f"{source}: {what} holds the label {int(y.max())}; labels must be class indices 0..K-1")
    return y.astype(np.int64)


def split_indices(y: np.ndarray, names: tuple[str, ...], source: str, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, test) indices of the seeded, stratified 80/20 split of labels `y` (N,) into len(names) classes."""
    counts = np.bincount(y, minlength=len(names))
    if counts.min() < 2:
        raise DataError(f"{source}: class {names[int(counts.argmin())]!r} has {int(counts.min())} image(s); a "
                        f"stratified test split needs at least 2 per class (or give a test split)")
    from sklearn.model_selection import train_test_split  # on use: the app's sidebar imports this module

    try:
        train_idx, test_idx = train_test_split(np.arange(len(y)), test_size=TEST_FRACTION, stratify=y,
                                               random_state=split_seed)
    except ValueError as err:  # e.g. fewer test images than classes
        raise DataError(f"{source}: cannot split {len(y)} images of {len(names)} classes into a stratified "
                        f"{1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%} train/test split: {err}") from None
    return np.sort(train_idx), np.sort(test_idx)


def labelled_splits(name: str, source: str, x: np.ndarray, y: np.ndarray, x_test: np.ndarray | None,
                    y_test: np.ndarray | None, class_names: tuple[str, ...] | None, split_seed: int) -> Splits:
    """Train and test `ImageSet`s of float32 (N, C, H, W) images in [0, 1] and their labels (see the module doc).

    Args:
        name: the `Splits` name.
        source: the file or folder named in errors.
        x: the training images, float32 (N, C, H, W) in [0, 1] (all images when there is no test split).
        y: their labels, int64 (N,).
        x_test: the test images, or None for a seeded stratified split of x, y.
        y_test: the test labels, or None.
        class_names: one name per class, or None for "0".."K-1".
        split_seed: seed of the split.
    """
    labels = np.concatenate([y, y_test]) if y_test is not None else y
    k = len(class_names) if class_names is not None else int(labels.max()) + 1 if len(labels) else 0
    if len(labels) and int(labels.max()) >= k:
        raise DataError(f"{source}: a label is {int(labels.max())} but there are {k} class names")
    if k > len(y):  # before anything of size K is built (a label of 10^9 would ask for gigabytes)
        raise DataError(f"{source}: {k:,} classes (labels 0..{k - 1:,}) but {len(y):,} images to train on; every "
                        f"class needs an image in the training split (labels must be 0..K-1 without gaps)")
    if k < 2:
        raise DataError(f"{source}: {k} class(es); a classification data set needs at least 2")
    names = class_names or tuple(str(c) for c in range(k))
    missing = sorted(set(range(k)) - set(np.unique(y).tolist()))
    if missing:
        shown = ", ".join(repr(names[c]) for c in missing[:10])
        raise DataError(f"{source}: the training images have no image of class(es) {shown}; every class 0..{k - 1} "
                        f"must appear in them (labels must be 0..K-1 without gaps)")
    if x_test is None:
        train_idx, test_idx = split_indices(y, names, source, split_seed)
        x, y, x_test, y_test = x[train_idx], y[train_idx], x[test_idx], y[test_idx]
    assert x_test is not None and y_test is not None
    return Splits(name, ImageSet(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y), names),
                  ImageSet(torch.from_numpy(np.ascontiguousarray(x_test)), torch.from_numpy(y_test), names))
