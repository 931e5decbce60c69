"""#18 acceptance 2: a damaged entry is never served, always recomputed; kill -9 mid-write serves nothing partial.

The bit flips go through the decode path of a real result type (`TrainResult.from_store` of a real, tiny
training run); the kill loop kills a forked writer process at random moments, then runs the real
`python -m landscape store --gc` and checks that nothing but complete entries is left.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from landscape.config import TrainSpec
from landscape.models import build_model
from landscape.store import ARRAYS, ENTRY_FILES, META, SUMS, Store, StoreWarning
from landscape.train import TrainResult, train

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def trained(tiny_splits) -> TrainResult:
    """A real two-epoch run on a tiny data set (history + 3 checkpoints of the mlp)."""
    splits = tiny_splits
    net = build_model("mlp", splits.image_shape, splits.num_classes, seed=0)
    return train(net, splits.train, splits.test, TrainSpec(epochs=2, seed=0))


def _decode(entry) -> TrainResult:
    return TrainResult.from_store(entry.meta, entry.arrays)


def _same(a: TrainResult, b: TrainResult) -> bool:
    return (a.checkpoint_epochs == b.checkpoint_epochs and a.diverged == b.diverged
            and all(np.array_equal(a.history[k], b.history[k]) for k in a.history)
            and all(torch.equal(x[n], y[n]) for x, y in zip(a.checkpoints, b.checkpoints, strict=True) for n in x))


def test_200_single_bit_flips_are_never_served_and_always_recomputed(store, trained):
    rng = random.Random(18)
    computed = []

    def compute():
        computed.append(1)
        return trained.to_store()

    first = store.get_or_compute("train", "k", compute, decode=_decode)
    assert _same(first, trained) and computed == [1]
    folder = store.path("train", "k")
    # 90 flips in meta.json, 90 in the arrays, 20 in the integrity record itself
    targets = [META] * 90 + [ARRAYS] * 90 + [SUMS] * 20
    rng.shuffle(targets)
    for i, name in enumerate(targets, 1):
        path = folder / name
        data = bytearray(path.read_bytes())
        byte, bit = rng.randrange(len(data)), rng.randrange(8)
        data[byte] ^= 1 << bit
        path.write_bytes(bytes(data))
        with pytest.warns(StoreWarning, match="train/k"):
            result = store.get_or_compute("train", "k", compute, decode=_decode)
        assert len(computed) == i + 1, f"flip {i} ({name} byte {byte} bit {bit}) was served"
        assert _same(result, trained)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the rewritten entry is served silently
            assert _same(store.load("train", "k", _decode), trained)
    assert len(computed) == 201


def _rewrite_consistently(folder: Path, edit) -> None:
    """Edit meta.json and rewrite SHA256SUMS to match: an intact entry whose content is not what the code reads."""
    record = json.loads((folder / META).read_text())
    edit(record)
    text = json.dumps(record).encode()
    (folder / META).write_bytes(text)
    arrays = hashlib.sha256((folder / ARRAYS).read_bytes()).hexdigest()
    (folder / SUMS).write_text(f"{hashlib.sha256(text).hexdigest()}  {META}\n{arrays}  {ARRAYS}\n")


@pytest.mark.parametrize("edit", [
    lambda r: r["meta"]["state_keys"].__setitem__(0, "no.such.tensor"),  # KeyError in decode
    lambda r: r["meta"].__setitem__("checkpoint_epochs", [0, 1, 2, 7]),  # a checkpoint that is not there
    lambda r: r["meta"].pop("extras"),
    lambda r: r.__setitem__("meta", ["not", "a", "dict"]),
    lambda r: r.__setitem__("key", "other"),  # an entry copied under another key
], ids=["tensor-name", "checkpoint-epochs", "missing-field", "meta-type", "wrong-key"])
def test_intact_but_undecodable_entry_is_dropped_and_recomputed(store, trained, edit):
    computed = []

    def compute():
        computed.append(1)
        return trained.to_store()

    store.get_or_compute("train", "k", compute, decode=_decode)
    _rewrite_consistently(store.path("train", "k"), edit)
    with pytest.warns(StoreWarning, match=r"train/k .*unusable"):
        result = store.get_or_compute("train", "k", compute, decode=_decode)
    assert computed == [1, 1] and _same(result, trained)
    assert _same(store.load("train", "k", _decode), trained)  # and the rewritten entry stays


# ------------------------------------------------------------------------------------------------ kill -9 loop

KEYS = [f"k{i}" for i in range(8)]
STAGE = "train"  # a folder the stages write: `store --gc` leaves any other folder alone


def _expected(key: str) -> np.ndarray:
    """The (deterministic) array of `key`: 1-4 MB, so writes take long enough to be killed in the middle."""
    n = (1 + int(key[1:]) % 4) << 18
    return np.full(n, float(int(key[1:]) + 1), dtype=np.float32)


def _writer(root: str, seed: int, ready) -> None:
    """Forever: compute missing entries, and now and then damage one and have it dropped and recomputed."""
    warnings.simplefilter("ignore")
    store, rng = Store(root), random.Random(seed)
    ready.set()
    while True:
        key = rng.choice(KEYS)
        folder = store.path(STAGE, key)
        if folder.exists() and rng.random() < 0.3:
            with open(folder / ARRAYS, "r+b") as fh:  # damage it: the next read must drop it (-> .trash-*)
                fh.seek(100)
                fh.write(b"\xff")
        store.get_or_compute(STAGE, key, lambda k=key: ({"key": k}, {"x": _expected(k)}))


def test_kill_9_during_writes_serves_no_partial_entry_and_gc_leaves_no_orphans(tmp_path):
    root = tmp_path / "store"
    store = Store(root)
    store.save("poison", "warmup", {}, {"x": np.zeros(1)})  # torch/numeric environment imported before forking
    ctx = mp.get_context("fork")
    rng = random.Random(9)
    kills, mid_write, leftovers = 0, 0, 0
    while kills < 25:
        ready = ctx.Event()
        proc = ctx.Process(target=_writer, args=(str(root), kills, ready), daemon=True)
        proc.start()
        assert ready.wait(30)
        time.sleep(rng.uniform(0.01, 0.25))
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        assert proc.exitcode == -signal.SIGKILL
        kills += 1
        stage = root / STAGE
        names = os.listdir(stage) if stage.exists() else []
        now = sum(n.startswith((".tmp-", ".trash-")) for n in names)
        mid_write += now > leftovers  # this kill left a new temporary or half-deleted folder
        leftovers = now
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", StoreWarning)  # entries the writer damaged on purpose are dropped
            for key in KEYS:
                entry = store.load(STAGE, key)
                if entry is not None:  # whatever is served is complete and right
                    assert entry.meta == {"key": key}
                    np.testing.assert_array_equal(entry.arrays["x"], _expected(key))
    assert mid_write >= 3, f"only {mid_write} of {kills} kills landed during a write or a drop"

    out = subprocess.run([sys.executable, "-m", "landscape", "store", "--gc", "--store", str(root)],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "kept" in out.stdout and "removed" in out.stdout
    for stage in root.iterdir():
        for item in stage.iterdir():
            assert not item.name.startswith("."), f"orphan left after gc: {item}"
            assert sorted(p.name for p in item.iterdir()) == sorted(ENTRY_FILES)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for key in store.keys(STAGE):
            np.testing.assert_array_equal(store.load(STAGE, key).arrays["x"], _expected(key))
    print(f"{kills} kills, {mid_write} of them during a write or a drop; gc: {out.stdout.strip()}")


def test_the_cli_reports_a_damaged_entry_in_one_warning_line_and_recomputes_it(tmp_path):
    """A real `python -m landscape craft` over a damaged entry: one `warning: ...` line (no file:line, no source
    line of the `warnings.warn` call, no category name), then the entry is recomputed."""
    argv = [sys.executable, "-m", "landscape", "craft", "--dataset", "digits", "--n-train", "100", "--method", "random",
            "--store", str(tmp_path)]
    subprocess.run(argv, check=True, capture_output=True, text=True)
    (meta,) = tmp_path.glob("poison/*/meta.json")
    meta.write_text("garbage")
    done = subprocess.run(argv, check=True, capture_output=True, text=True)
    warned = [line for line in done.stderr.splitlines() if "unusable" in line]
    assert len(warned) == 1, done.stderr
    assert warned[0].startswith("warning: store entry poison/") and "recomputed" in warned[0]
    assert "StoreWarning" not in done.stderr and ".py:" not in done.stderr and "warnings.warn" not in done.stderr
    assert "return store.load" not in done.stderr, "the source line of the warning call is not printed"
    assert json.loads(meta.read_text())["stage"] == "poison"  # recomputed, checksums and all
