import json
import multiprocessing as mp
import os

import numpy as np
import pytest

from landscape.errors import StoreError
from landscape.store import Store


def _compute(value=1.0):
    return {"value": value}, {"x": np.full(4, value, dtype=np.float32)}


def test_round_trip_and_cache_hit(store):
    calls = []

    def compute():
        calls.append(1)
        return _compute()

    a = store.get_or_compute("stage", "k1", compute, spec={"a": 1})
    b = store.get_or_compute("stage", "k1", compute)
    assert calls == [1]
    assert a.meta == b.meta == {"value": 1.0}
    np.testing.assert_array_equal(b.arrays["x"], np.ones(4, dtype=np.float32))
    record = json.loads((store.path("stage", "k1") / "meta.json").read_text())
    assert record["spec"] == {"a": 1} and "torch" in record["versions"]


def test_corrupt_entry_is_detected_and_recomputed(store):
    store.get_or_compute("stage", "k", _compute)
    arrays = store.path("stage", "k") / "arrays.safetensors"
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0xFF
    arrays.write_bytes(bytes(data))
    assert store.load("stage", "k") is None  # never served
    assert not store.path("stage", "k").exists()
    entry = store.get_or_compute("stage", "k", lambda: _compute(2.0))
    assert entry.meta == {"value": 2.0}


def test_truncated_metadata_is_not_served(store):
    store.get_or_compute("stage", "k", _compute)
    meta = store.path("stage", "k") / "meta.json"
    meta.write_text(meta.read_text()[:20])
    assert store.load("stage", "k") is None


def test_interrupted_write_leaves_no_entry(store):
    def failing():
        raise RuntimeError("killed mid-computation")

    with pytest.raises(RuntimeError):
        store.get_or_compute("stage", "k", failing)
    assert store.load("stage", "k") is None

    # A crash during the write itself (after arrays, before metadata) leaves only a temporary folder.
    class Boom:  # not JSON serialisable -> save fails after writing the arrays
        pass

    with pytest.raises(TypeError):
        store.save("stage", "k", {"bad": Boom()}, {"x": np.zeros(2)})
    assert store.load("stage", "k") is None
    assert store.keys("stage") == []
    assert not [p for p in (store.root / "stage").iterdir() if p.name.startswith(".tmp")]


def test_bad_names_rejected(store):
    with pytest.raises(StoreError, match="letters"):
        store.path("../etc", "k")


def _writer(root, value, barrier):
    barrier.wait()
    Store(root).get_or_compute("stage", "same", lambda: _compute(value))


def test_two_processes_writing_the_same_key_leave_one_valid_entry(tmp_path):
    root = tmp_path / "s"
    ctx = mp.get_context("fork")
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_writer, args=(root, float(i), barrier)) for i in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
        assert p.exitcode == 0
    store = Store(root)
    entry = store.load("stage", "same")
    assert entry is not None and entry.meta["value"] in {0.0, 1.0, 2.0, 3.0}
    assert store.keys("stage") == ["same"]
    leftovers = [p for p in os.listdir(root / "stage") if p.startswith((".tmp", ".trash"))]
    assert leftovers == []


def test_save_race_keeps_existing_valid_entry(store):
    first = store.save("stage", "k", {"v": 1}, {"x": np.zeros(1)})
    second = store.save("stage", "k", {"v": 2}, {"x": np.ones(1)})
    assert first.meta == second.meta == {"v": 1}
