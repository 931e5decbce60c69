"""The digits loader against scikit-learn's own functions (the oracle), and that it does not import scikit-learn."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from landscape.data import digits


def sklearn_split(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What the loader computed before it read the CSV itself: load_digits, then train_test_split."""
    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None]
    y = bunch.target.astype(np.int64)
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=seed)
    return x[train], y[train], x[test], y[test]


@pytest.mark.parametrize("seed", [0, 1, 5])
def test_the_splits_are_scikit_learns_bit_for_bit(seed):
    splits = digits.load(seed)
    x_train, y_train, x_test, y_test = sklearn_split(seed)
    for part, x, y in ((splits.train, x_train, y_train), (splits.test, x_test, y_test)):
        assert torch.equal(part.x, torch.from_numpy(x)) and torch.equal(part.y, torch.from_numpy(y))
    assert splits.train.x.dtype == torch.float32 and splits.train.y.dtype == torch.int64


def test_the_kept_split_file_is_train_test_split_of_seed_0(tmp_path):
    y = load_digits().target
    train, test = train_test_split(np.arange(len(y)), test_size=0.2, stratify=y, random_state=digits.KEPT_SEED)
    with np.load(digits.SPLIT_FILE, allow_pickle=False) as kept:
        assert np.array_equal(kept["train"], train) and np.array_equal(kept["test"], test)
    rewritten = digits.write_split(tmp_path / "split.npz")
    with np.load(rewritten, allow_pickle=False) as again:
        assert np.array_equal(again["train"], train) and np.array_equal(again["test"], test)


def test_without_the_csv_file_it_reads_through_scikit_learn(monkeypatch):
    expected = digits.load(0)
    digits._images.cache_clear()
    monkeypatch.setattr(digits, "_csv_file", lambda: None)
    try:
        fallback = digits.load(0)
    finally:
        digits._images.cache_clear()
    assert torch.equal(fallback.train.x, expected.train.x) and torch.equal(fallback.test.y, expected.test.y)


def test_loading_the_default_split_imports_no_scikit_learn():
    code = ("import sys; from landscape.config import DataSpec; from landscape.data import load_data; "
            "s = load_data(DataSpec()); assert len(s.train) == 1437 and len(s.test) == 360; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'scipy')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
