"""Shared fixtures: tiny synthetic images, a temporary store, CPU only; Streamlit caches cleared per test."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from landscape.data import ImageSet, Splits
from landscape.store import ARRAYS, META, SUMS, Store


@pytest.fixture(autouse=True)
def _isolated_store(tmp_path, monkeypatch):
    """Every test gets its own store root, so nothing leaks between tests or into the user's cache."""
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(tmp_path / "store"))


@pytest.fixture(autouse=True)
def _fresh_streamlit_caches():
    """Clear st.cache_data and st.cache_resource around every test (they persist across AppTests: streamlit#9139)."""
    import streamlit as st  # imported here: most tests never touch the app

    st.cache_data.clear()
    st.cache_resource.clear()
    yield
    st.cache_data.clear()
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module whose tiny tensors gain nothing from more (the test machine is shared)."""
    from landscape.device import limited_threads

    with limited_threads(1):
        yield


@pytest.fixture
def store(tmp_path) -> Store:
    return Store(tmp_path / "store")


@pytest.fixture
def tiny_splits() -> Splits:
    """64 train / 32 test random 1x8x8 images in 4 classes with a learnable class signal."""
    g = torch.Generator().manual_seed(0)
    names = ("a", "b", "c", "d")

    def make(n: int) -> ImageSet:
        y = torch.arange(n) % 4
        x = torch.rand(n, 1, 8, 8, generator=g) * 0.5
        for i in range(n):  # a class-dependent bright 4x4 quadrant
            r, c = divmod(int(y[i]), 2)
            x[i, 0, 4 * r:4 * r + 4, 4 * c:4 * c + 4] += 0.5
        return ImageSet(x, y.long(), names)

    return Splits("tiny", make(64), make(32))


@pytest.fixture
def format_2_entry():
    """`format_2_entry(store, stage, key)` writes an entry as store format 2 did (see `_format_2_entry`)."""
    return _format_2_entry


def _format_2_entry(store: Store, stage: str, key: str) -> None:
    """An entry as store format 2 wrote it: meta.json (no "format"; the arrays' digest inside) and arrays only."""
    store.save(stage, key, {"v": 1}, {"x": np.zeros(1)})
    folder = store.path(stage, key)
    (folder / SUMS).unlink()
    record = json.loads((folder / META).read_text())
    del record["format"]
    record["arrays_sha256"] = hashlib.sha256((folder / ARRAYS).read_bytes()).hexdigest()
    (folder / META).write_text(json.dumps(record))
