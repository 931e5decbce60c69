"""`ImageSet`: the one in-memory form of a labelled image split, and `Splits`, a train/test pair."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from landscape.errors import ShapeError


@dataclass(frozen=True)
class ImageSet:
    """Labelled images, validated on construction.

    Attributes:
        x: float32 images in [0, 1], shape (N, C, H, W), on the CPU.
        y: int64 class labels in [0, len(class_names)), shape (N,).
        class_names: one name per class.
    """

    x: torch.Tensor
    y: torch.Tensor
    class_names: tuple[str, ...]

    def __post_init__(self) -> None:
        check_images(self.x)
        if self.y.dtype != torch.int64 or self.y.ndim != 1:
            raise ShapeError(f"labels must be int64 of shape (N,), got {self.y.dtype} {tuple(self.y.shape)}")
        if len(self.y) != len(self.x):
            raise ShapeError(f"{len(self.x)} images but {len(self.y)} labels; they must match one to one")
        if len(self.y) and (int(self.y.min()) < 0 or int(self.y.max()) >= len(self.class_names)):
            raise ShapeError(
                f"labels span [{int(self.y.min())}, {int(self.y.max())}] but there are "
                f"{len(self.class_names)} class names"
            )

    def __len__(self) -> int:
        return len(self.y)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one image."""
        return tuple(self.x.shape[1:])  # type: ignore[return-value]

    def subset(self, index: torch.Tensor | np.ndarray) -> ImageSet:
        """The images at `index` (a new set; this one is unchanged)."""
        index = torch.as_tensor(index, dtype=torch.long)
        return ImageSet(self.x[index].clone(), self.y[index].clone(), self.class_names)

    def with_images(self, x: torch.Tensor) -> ImageSet:
        """Same labels, other images (e.g. poisoned ones)."""
        return ImageSet(x, self.y, self.class_names)


def _names(names: tuple[str, ...]) -> str:
    """Class names for a message: all of them, or the first few of many."""
    shown = ", ".join(map(repr, names[:6])) + (", ..." if len(names) > 6 else "")
    return f"{len(names)} classes ({shown})"


@dataclass(frozen=True)
class Splits:
    """A training split and a clean test split of one data set."""

    name: str
    train: ImageSet
    test: ImageSet

    def __post_init__(self) -> None:
        if self.train.image_shape != self.test.image_shape or self.train.class_names != self.test.class_names:
            raise ShapeError(f"train and test splits must share image shape and class names: train "
                             f"{self.train.image_shape} with {_names(self.train.class_names)}, test "
                             f"{self.test.image_shape} with {_names(self.test.class_names)}")

    @property
    def num_classes(self) -> int:
        return self.train.num_classes

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape


def check_images(x: torch.Tensor) -> None:
    """Raise `ShapeError` unless `x` is float32 (N, C, H, W) with every value in [0, 1]."""
    if not isinstance(x, torch.Tensor) or x.dtype != torch.float32 or x.ndim != 4:
        got = f"{x.dtype} {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(f"images must be a float32 tensor of shape (N, C, H, W), got {got}")
    if x.numel() and (not torch.isfinite(x).all() or float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ShapeError(
            f"image values must lie in [0, 1] and be finite; got min {float(x.min()):.4g}, max {float(x.max()):.4g}"
        )


def stratified_subset(y: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices of a class-stratified random subset of size `n` (sorted), reproducible from `seed`.

    Where scikit-learn cannot stratify (a class with a single image, or fewer images left out than classes)
    the subset is one seeded image of every class, then seeded images of the rest: every class is still in it.
    """
    from sklearn.model_selection import train_test_split

    if n >= len(y):
        return torch.arange(len(y))
    index = np.arange(len(y))
    try:
        chosen, _ = train_test_split(index, train_size=n, stratify=y.numpy(), random_state=seed)
    except ValueError:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        _, first = np.unique(y.numpy()[order], return_index=True)  # the first image of each class in `order`
        rest = np.setdiff1d(order, order[first], assume_unique=True)
        chosen = np.concatenate([order[first], rng.permutation(rest)])[:n]
    return torch.as_tensor(np.sort(chosen), dtype=torch.long)
