"""scikit-learn's bundled 8x8 handwritten digits: the default data set, available offline everywhere.

1797 grey images with 17 intensity levels (0..16), 10 classes, split stratified 80/20 (1437/360).
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from landscape.data.imageset import ImageSet, Splits


def load(split_seed: int = 0) -> Splits:
    """The digits split by a seeded stratified 80/20 split; images scaled from 0..16 to [0, 1]."""
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]  # (1797, 1, 8, 8)
    y = bunch.target.astype(np.int64)
    idx_train, idx_test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=split_seed)
    names = tuple(str(c) for c in range(10))

    def part(idx: np.ndarray) -> ImageSet:
        return ImageSet(torch.from_numpy(x[idx]).contiguous(), torch.from_numpy(y[idx]), names)

    return Splits("digits", part(idx_train), part(idx_test))
