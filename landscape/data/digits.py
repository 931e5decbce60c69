"""scikit-learn's bundled 8x8 handwritten digits: the default data set, available offline everywhere.

1797 grey images with 17 intensity levels (0..16), 10 classes, split stratified 80/20 (1437/360) by
scikit-learn's `train_test_split` seeded with `DataSpec.split_seed`.

Read without importing scikit-learn (about 1 s that the app's first Poison page and every CLI command on digits
would otherwise pay): the images come from the CSV file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``,
what `load_digits` reads), found through the installed package, and the split of seed 0, the default, is kept in
``digits_split.npz`` beside this module (the index arrays `train_test_split` returns, in its order;
tests/test_digits.py checks both against scikit-learn's own functions). Other seeds, or an installation without
the CSV file, go through scikit-learn itself. Rewrite the kept split with `write_split()`.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from landscape.data.imageset import ImageSet, Splits

SPLIT_FILE = Path(__file__).with_name("digits_split.npz")  # train/test indices of split seed 0
KEPT_SEED = 0
TEST_FRACTION = 0.2
_CSV = Path("datasets") / "data" / "digits.csv.gz"


def _csv_file() -> Path | None:
    """scikit-learn's digits CSV in the installed package (without importing it), or None if it is not there."""
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / _CSV
    return path if path.is_file() else None


@lru_cache(maxsize=1)
def _images() -> tuple[np.ndarray, np.ndarray]:
    """Images (1797, 8, 8) float64 in 0..16 and labels (1797,) int64, exactly as `load_digits` gives them."""
    path = _csv_file()
    if path is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        return bunch.images, bunch.target.astype(np.int64)
    table = np.loadtxt(path, delimiter=",")  # (1797, 65): 64 grey values and the label per row, as load_digits
    return table[:, :-1].reshape(-1, 8, 8), table[:, -1].astype(np.int64)


def _computed_split(y: np.ndarray, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) indices of the seeded stratified 80/20 split, computed by scikit-learn's `train_test_split`."""
    from sklearn.model_selection import train_test_split

    return train_test_split(np.arange(len(y)), test_size=TEST_FRACTION, stratify=y, random_state=split_seed)


def _split(y: np.ndarray, split_seed: int) -> tuple[np.ndarray, np.ndarray]:
    """`_computed_split`, read from `SPLIT_FILE` for the kept seed."""
    if split_seed == KEPT_SEED and SPLIT_FILE.is_file():
        with np.load(SPLIT_FILE, allow_pickle=False) as kept:
            return kept["train"].astype(np.int64), kept["test"].astype(np.int64)
    return _computed_split(y, split_seed)


def write_split(path: Path = SPLIT_FILE) -> Path:
    """Write the split of `KEPT_SEED`, computed by scikit-learn, to `path` (a maintainer's step)."""
    train, test = _computed_split(_images()[1], KEPT_SEED)
    np.savez(path, train=train.astype(np.int16), test=test.astype(np.int16))
    return path


def load(split_seed: int = 0) -> Splits:
    """The digits split by a seeded stratified 80/20 split; images scaled from 0..16 to [0, 1]."""
    images, y = _images()
    x = (images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    idx_train, idx_test = _split(y, split_seed)
    names = tuple(str(c) for c in range(10))

    def part(idx: np.ndarray) -> ImageSet:
        return ImageSet(torch.from_numpy(x[idx]).contiguous(), torch.from_numpy(y[idx]), names)

    return Splits("digits", part(idx_train), part(idx_test))
