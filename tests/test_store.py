import json
import multiprocessing as mp
import os
import time
from pathlib import Path

import numpy as np
import pytest

from landscape.errors import StoreError
from landscape.store import Store, StoreWarning


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
    assert record["spec"] == {"a": 1} and "torch" in record["environment"]  # (was "versions")


def test_corrupt_entry_is_detected_and_recomputed(store):
    store.get_or_compute("stage", "k", _compute)
    arrays = store.path("stage", "k") / "arrays.safetensors"
    data = bytearray(arrays.read_bytes())
    data[-1] ^= 0xFF
    arrays.write_bytes(bytes(data))
    with pytest.warns(StoreWarning, match="stage/k"):
        assert store.load("stage", "k") is None  # never served
    assert not store.path("stage", "k").exists()
    entry = store.get_or_compute("stage", "k", lambda: _compute(2.0))
    assert entry.meta == {"value": 2.0}


def test_no_lock_file_outlives_its_use(store):
    # Every entry used to leave a 0-byte `.KEY.lock` beside it, so `store` always listed "N unused lock files"
    store.get_or_compute("stage", "a", _compute)
    store.save("stage", "b", {"value": 1.0}, {"x": np.zeros(2)})
    store.discard("stage", "b")
    assert sorted(p.name for p in (store.root / "stage").iterdir()) == ["a"]
    assert store.load("stage", "a").meta == {"value": 1.0}


def test_reproducible_mode_says_once_that_an_unpinned_entry_is_served(store, monkeypatch):
    import warnings

    import landscape.store as store_module

    store.get_or_compute("stage", "a", _compute)  # computed here without the mode
    store.get_or_compute("stage", "b", _compute)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # outside the mode nothing is said
        assert store.load("stage", "a") is not None
    monkeypatch.setattr(store_module, "_unpinned_noted", set())
    from landscape import reproducible

    monkeypatch.setenv(reproducible.ENV_VAR, "1")
    for name, value in reproducible.PINS.items():
        monkeypatch.setenv(name, value)  # as `apply` sets them (without effect here: the kernels are chosen)
    with pytest.warns(StoreWarning, match=r"reproducible mode: store entry stage/a .*served as is") as said:
        assert store.load("stage", "a").meta == {"value": 1.0}  # still served: a key names the question
        assert store.load("stage", "b").meta == {"value": 1.0}
    assert len(said) == 1 and str(store.root) in str(said[0].message)


def test_truncated_metadata_is_not_served(store):
    store.get_or_compute("stage", "k", _compute)
    meta = store.path("stage", "k") / "meta.json"
    meta.write_text(meta.read_text()[:20])
    with pytest.warns(StoreWarning, match="stage/k"):
        assert store.load("stage", "k") is None


def test_a_failed_first_use_leaves_no_store_folder_it_created(tmp_path):
    """The store folder (and parents) a use creates are removed again when nothing was written; a folder that
    existed before, or one holding an entry, stays."""
    def failing():
        raise RuntimeError("bad data")

    nested = Store(tmp_path / "new" / "a" / "store")
    with pytest.raises(RuntimeError):
        nested.get_or_compute("stage", "k", failing)
    assert not (tmp_path / "new").exists()
    (tmp_path / "mine").mkdir()
    with pytest.raises(RuntimeError):
        Store(tmp_path / "mine").get_or_compute("stage", "k", failing)
    assert (tmp_path / "mine").is_dir() and not list((tmp_path / "mine").iterdir())
    nested.get_or_compute("stage", "k", _compute)
    with pytest.raises(RuntimeError):
        nested.get_or_compute("stage", "k2", failing)
    assert nested.load("stage", "k") is not None


def test_interrupted_write_leaves_no_entry(store):
    def failing():
        raise RuntimeError("killed mid-computation")

    with pytest.raises(RuntimeError):
        store.get_or_compute("stage", "k", failing)
    assert store.load("stage", "k") is None
    assert not (store.root / "stage").exists()  # a failed compute leaves no lock file, no empty stage folder

    # A crash during the write itself (after arrays, before metadata) leaves only a temporary folder.
    class Boom:  # not JSON serialisable -> save fails after writing the arrays
        pass

    with pytest.raises(TypeError):
        store.save("stage", "k", {"bad": Boom()}, {"x": np.zeros(2)})
    assert store.load("stage", "k") is None
    assert store.keys("stage") == []
    assert not (store.root / "stage").exists()


def test_bad_names_rejected(store):
    with pytest.raises(StoreError, match="letters"):
        store.path("../etc", "k")
    with pytest.raises(StoreError, match="letters"):
        store.path("stage", ".tmp-k")  # the store's own leftovers start with a dot


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


# ------------------------------------------------------------------------------------------ decode hook, gc, sweep

def _sums_for(folder):
    import hashlib

    from landscape.store import ARRAYS, META
    digest = {n: hashlib.sha256((folder / n).read_bytes()).hexdigest() for n in (META, ARRAYS)}
    return f"{digest[META]}  {META}\n{digest[ARRAYS]}  {ARRAYS}\n"


def test_decode_hook_returns_the_decoded_value_and_a_fresh_undecodable_entry_is_a_bug(store):
    value = store.get_or_compute("stage", "k", _compute, decode=lambda e: float(e.arrays["x"].sum()))
    assert value == 4.0
    assert store.load("stage", "k", lambda e: e.meta["value"]) == 1.0
    with pytest.raises(StoreError, match="just computed but cannot be decoded"):
        store.get_or_compute("stage", "k2", _compute, decode=lambda e: e.meta["missing"])


def test_old_format_entry_is_dropped_with_a_warning(store, format_2_entry):
    from landscape.store import StoreWarning

    format_2_entry(store, "stage", "k")
    with pytest.warns(StoreWarning, match="older store format"):
        assert store.load("stage", "k") is None
    assert not store.path("stage", "k").exists()


def _garbage_store(store, format_2_entry):
    """Two good entries plus one of each kind of garbage; returns the sizes of what gc must remove."""
    from landscape.store import META, SUMS

    store.save("train", "good1", {"v": 1}, {"x": np.zeros(1000)})
    store.save("sal", "good2", {"v": 2}, {"x": np.ones(10)})
    stage = store.root / "train"
    tmp = stage / f".tmp-dead-{'a' * 32}"
    tmp.mkdir()
    (tmp / "arrays.safetensors").write_bytes(b"x" * 5000)
    trash = stage / f".trash-gone-{'b' * 32}"
    trash.mkdir()
    (trash / META).write_bytes(b"y" * 300)
    (stage / ".dead.lock").write_text("")
    format_2_entry(store, "train", "old")  # old store format
    store.save("train", "oldschema", {"v": 4}, {"x": np.zeros(3)})
    folder = store.path("train", "oldschema")
    record = json.loads((folder / META).read_text())
    record["schema"] = 1
    (folder / META).write_text(json.dumps(record))
    (folder / SUMS).write_text(_sums_for(folder))
    store.save("train", "bad", {"v": 5}, {"x": np.zeros(3)})
    (store.path("train", "bad") / META).write_text("{}")
    (store.root / "notes.txt").write_text("mine")  # not the store's: left alone
    (stage / "README").write_text("mine too")
    return {"temporaries": 5000, "trash": 300}


def test_gc_dry_run_then_gc(store, format_2_entry):
    from landscape.store import ENTRY_FILES
    from landscape.store_report import gc

    sizes = _garbage_store(store, format_2_entry)
    before = sorted(str(p) for p in store.root.rglob("*"))
    dry = gc(store, dry_run=True)
    assert sorted(str(p) for p in store.root.rglob("*")) == before  # a dry run removes nothing
    report = gc(store)
    for r in (dry, report):
        assert r.kept == 2
        assert r.removed["temporaries"] == [1, sizes["temporaries"]] and r.removed["trash"] == [1, sizes["trash"]]
        assert r.removed["old_schema"][0] == 2 and r.removed["corrupt"][0] == 1
        assert r.removed["locks"][0] >= 1
        assert r.bytes_freed == sum(size for _, size in r.removed.values()) > 5300
        assert sorted(Path(p).name for p in r.unknown) == ["README", "notes.txt"]
    left = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if p.is_file())
    assert left == sorted([f"train/good1/{n}" for n in ENTRY_FILES] + [f"sal/good2/{n}" for n in ENTRY_FILES]
                          + ["notes.txt", "train/README"])
    assert gc(store).removed == {}  # idempotent


def test_gc_leaves_a_live_writer_alone(store):
    import fcntl

    from landscape.store_report import gc

    stage = store.root / "train"
    stage.mkdir(parents=True)
    tmp = stage / f".tmp-busy-{'c' * 32}"
    tmp.mkdir()
    with open(stage / ".busy.lock", "a") as fh:  # another writer holds the key's lock
        fcntl.flock(fh, fcntl.LOCK_EX)
        report = gc(store)
        assert report.in_use == 2 and tmp.exists() and (stage / ".busy.lock").exists()
    report = gc(store)
    assert report.removed["temporaries"][0] == 1 and not tmp.exists() and not (stage / ".busy.lock").exists()


def test_first_write_sweeps_only_stale_leftovers(store):
    from landscape.store import SWEEP_AGE

    stage = store.root / "train"
    stage.mkdir(parents=True)
    stale, fresh = stage / f".tmp-a-{'d' * 32}", stage / f".tmp-b-{'e' * 32}"
    stale.mkdir()
    fresh.mkdir()
    (stage / ".a.lock").write_text("")
    old = time.time() - SWEEP_AGE - 60
    for p in (stale, stage / ".a.lock"):
        os.utime(p, (old, old))
    store.save("train", "k", {"v": 1}, {"x": np.zeros(1)})
    assert not stale.exists() and not (stage / ".a.lock").exists()
    assert fresh.exists()  # may belong to a live writer


def test_store_command_reports_and_collects(store, capsys, format_2_entry):
    from landscape.cli import main

    _garbage_store(store, format_2_entry)
    assert main(["store", "--store", str(store.root)]) == 0
    out = capsys.readouterr().out
    assert "2 entries kept" in out and "would remove" in out and "nothing was removed" in out
    assert (store.root / "train" / "old").exists()
    assert main(["store", "--gc", "--store", str(store.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["kept"] == 2 and report["removed"]["corrupt"][0] == 1 and report["bytes_freed"] > 5300
    assert not (store.root / "train" / "old").exists()
    assert main(["store", "--gc", "--store", str(store.root)]) == 0
    assert "removed: nothing" in capsys.readouterr().out
    assert main(["store", "--store", str(store.root)]) == 0  # a clean store: nothing to point --gc at
    out = capsys.readouterr().out
    assert "would remove: nothing" in out and "run with --gc" not in out


def test_store_command_on_a_file_is_a_clear_error(tmp_path, capsys):
    from landscape.cli import main

    (tmp_path / "f").write_text("")
    assert main(["store", "--gc", "--store", str(tmp_path / "f")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err


def test_every_entry_records_its_numeric_environment(store):
    store.save("stage", "k", {"v": 1})
    env = json.loads((store.path("stage", "k") / "meta.json").read_text())["environment"]
    for key in ("torch", "numpy", "mkl", "onednn", "cpu_level", "aten_capability", "onednn_isa", "reproducible",
                "torch_threads", "pinned_threads"):
        assert key in env, key


def test_a_store_that_is_a_file_still_serves_its_snapshots(tmp_path):
    """A root that is a file holds nothing (not an error while reading); the read-only layers are still served."""
    snapshot = Store(tmp_path / "snap")
    snapshot.save("stage", "k", {"v": 1}, {"x": np.ones(2)})
    (tmp_path / "afile").write_text("not a folder\n")
    layered = Store(tmp_path / "afile", snapshots=(tmp_path / "snap",))
    assert layered.load("stage", "k").meta["v"] == 1 and layered.origin("stage", "k") == tmp_path / "snap"
    assert layered.load("stage", "other") is None and not layered.exists("stage", "other")


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o002], ids=["022", "027", "002"])
def test_every_file_of_an_entry_gets_the_mode_open_gives(tmp_path, umask):
    """meta.json, SHA256SUMS and the arrays alike: 0666 less the umask (safetensors alone would give 0600)."""
    from landscape.store import ENTRY_FILES

    old = os.umask(umask)
    try:
        store = Store(tmp_path / "s")
        store.save("stage", "k", {"v": 1}, {"x": np.zeros(3)})
        with open(tmp_path / "plain", "w"):
            pass
    finally:
        os.umask(old)
    expected = (tmp_path / "plain").stat().st_mode & 0o777
    assert expected == 0o666 & ~umask
    modes = {name: (store.path("stage", "k") / name).stat().st_mode & 0o777 for name in ENTRY_FILES}
    assert modes == dict.fromkeys(ENTRY_FILES, expected), {n: oct(m) for n, m in modes.items()}
    assert store.load("stage", "k").meta == {"v": 1}
