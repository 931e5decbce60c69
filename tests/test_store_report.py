"""`python -m landscape store` (landscape.store_report.gc): what it names, what it removes, and what it leaves alone.

Damaged entries are told from entries of an older store format and named with the missing file; folders no stage
writes are listed and never touched; a path with no store is an error; runs stored in the layout before SAL
measured in the trainer had entries of its own are retired.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from landscape.cli import main
from landscape.store import SUMS, Store, StoreWarning


def _store_cli(store: Store, capsys, *flags: str) -> tuple[int, str]:
    status = main(["store", "--store", str(store.root), *flags])
    captured = capsys.readouterr()
    return status, captured.out + captured.err


def test_an_entry_missing_a_file_is_damaged_and_names_it_not_an_older_format(store, capsys, format_2_entry):
    store.save("train", "nosums", {"v": 1}, {"x": np.zeros(2)})
    (store.path("train", "nosums") / SUMS).unlink()  # a current-format entry that lost its integrity record
    store.save("train", "noarrays", {"v": 2}, {"x": np.zeros(2)})
    (store.path("train", "noarrays") / "arrays.safetensors").unlink()
    format_2_entry(store, "train", "old")  # genuinely older: no SHA256SUMS was ever written
    status, out = _store_cli(store, capsys)
    assert status == 0
    assert f"damaged: {store.path('train', 'nosums')} (incomplete entry: SHA256SUMS missing)" in out, out
    assert f"damaged: {store.path('train', 'noarrays')} (incomplete entry: arrays.safetensors missing)" in out, out
    assert f"older format or schema: {store.path('train', 'old')} (no SHA256SUMS: written by an older" in out, out
    assert main(["store", "--store", str(store.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["removed"]["corrupt"][0] == 2 and report["removed"]["old_schema"][0] == 1
    assert {d["reason"] for d in report["dropped"] if d["kind"] == "corrupt"} == {
        "incomplete entry: SHA256SUMS missing", "incomplete entry: arrays.safetensors missing"}
    with pytest.warns(StoreWarning, match=r"train/nosums .*incomplete entry: SHA256SUMS missing"):
        assert store.load("train", "nosums") is None  # loading says the same


def test_folders_no_stage_writes_are_listed_and_never_touched(store, capsys):
    store.save("train", "good", {"v": 1}, {"x": np.zeros(2)})
    album = store.root / "photos" / "album"  # a user's folder that happens to hold a meta.json
    album.mkdir(parents=True)
    (album / "meta.json").write_text('{"mine": true}')
    (store.root / "photos" / "notes.txt").write_text("mine")
    (store.root / "empty").mkdir()
    (store.root / "stage").mkdir()  # a valid stage name, but no stage writes it
    (store.root / "stage" / ".k.lock").write_text("")
    before = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if "train" not in p.parts)
    status, out = _store_cli(store, capsys, "--gc")
    assert status == 0
    for name in ("photos", "empty", "stage"):
        assert f"left alone, not a stage folder: {store.root / name}" in out, out
    assert "1 entry kept" in out
    after = sorted(p.relative_to(store.root).as_posix() for p in store.root.rglob("*") if "train" not in p.parts)
    assert after == before  # nothing of theirs read as an entry, removed or emptied


def test_a_path_with_no_store_is_an_error_and_nothing_is_created(tmp_path, capsys):
    for flags in ([], ["--gc"], ["--json"]):
        status = main(["store", "--store", str(tmp_path / "nostore"), *flags])
        err = capsys.readouterr().err
        assert status == 2 and f"no store at {tmp_path / 'nostore'}: the folder does not exist" in err, (flags, err)
    assert not (tmp_path / "nostore").exists()


def test_a_folder_that_is_not_a_store_is_refused_and_nothing_in_it_is_removed(tmp_path, capsys):
    """A folder of the user's files (here one whose `train/album/meta.json` an unguarded gc removes as a damaged
    entry) is not a store: inspecting and --gc say so and remove nothing; an empty folder is an empty store, and a
    store whose only entry is damaged (SHA256SUMS left) is still a store."""
    from landscape.errors import StoreError
    from landscape.store_report import gc

    mine = tmp_path / "mine"
    (mine / "train" / "album").mkdir(parents=True)
    (mine / "train" / "album" / "meta.json").write_text('{"mine": true}')
    (mine / "notes.txt").write_text("mine")
    before = sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*"))
    for flags in ([], ["--gc"], ["--json"], ["--gc", "--json"]):
        status = main(["store", "--store", str(mine), *flags])
        err = capsys.readouterr().err
        assert status == 2 and f"{mine} is not a store: it holds notes.txt, train, and no store entry" in err, err
    with pytest.raises(StoreError, match="is not a store"):
        gc(Store(mine))  # the engine refuses too, whoever calls it
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == before
    (tmp_path / "new").mkdir()
    assert main(["store", "--store", str(tmp_path / "new"), "--gc"]) == 0
    assert "0 entries kept" in capsys.readouterr().out
    damaged = Store(tmp_path / "damaged")
    damaged.save("train", "k", {"v": 1}, {"x": np.zeros(2)})
    (damaged.path("train", "k") / "meta.json").unlink()
    assert main(["store", "--store", str(damaged.root), "--gc"]) == 0
    assert "removed: 1 damaged entry(ies)" in capsys.readouterr().out
    assert not damaged.path("train", "k").exists()


def test_runs_keyed_with_a_trainer_sal_spec_are_retired_by_gc(store, capsys):
    """Before TrainerSALStage had its own "sal" entries, such a run was a "train" entry keyed with its SAL spec:
    intact, current schema, and read by no stage any more (no key of today's is its key)."""
    record = {"data": {"name": "digits"}, "model": {"name": "linear"}, "train": {}, "poison": {}}
    store.save("train", "salkeyed", {"v": 1}, {"x": np.zeros(2)}, spec={**record, "sal": {"rounds": 2}})
    store.save("train", "plain", {"v": 2}, {"x": np.zeros(2)}, spec=record)
    store.save("sal", "trace", {"v": 3}, {"x": np.zeros(2)}, spec={**record, "sal": {"rounds": 2}})
    status, out = _store_cli(store, capsys)
    assert status == 0 and "2 entries kept" in out, out
    assert f"retired layout: {store.path('train', 'salkeyed')} (a run keyed with the SAL spec" in out, out
    assert _store_cli(store, capsys, "--gc")[0] == 0
    assert not store.path("train", "salkeyed").exists()
    assert store.load("train", "plain").meta == {"v": 2} and store.load("sal", "trace").meta == {"v": 3}


def test_stage_folders_are_every_stage_s_and_retire_only_sal_keyed_runs():
    from landscape.stages.crosstask import STAGE
    from landscape.stages.folders import stage_folders

    folders = stage_folders()
    assert {"train", "sal", "poison", "surface", "curvature", "ud", STAGE} <= set(folders)
    assert folders["train"]({"spec": {"sal": {}}}) and folders["train"]({"spec": {"data": {}}}) is None
    assert all(folders[name]({"spec": {"sal": {}}}) is None for name in folders if name != "train")


def _rewrite_record(store: Store, stage: str, key: str, **changes: object) -> None:
    """Change fields of an entry's meta.json and rewrite its SHA256SUMS, as a newer version of this code would."""
    import hashlib

    from landscape.store import ARRAYS, META, _sums

    folder = store.path(stage, key)
    record = json.loads((folder / META).read_bytes())
    (folder / META).write_text(json.dumps({**record, **changes}))
    digests = [hashlib.sha256((folder / name).read_bytes()).hexdigest() for name in (META, ARRAYS)]
    (folder / SUMS).write_bytes(_sums(*digests))


def test_entries_of_a_newer_version_sharing_the_store_are_listed_and_never_removed(store, capsys):
    from landscape.spec import SCHEMA_VERSION
    from landscape.store import FORMAT

    store.save("train", "newformat", {"v": 1}, {"x": np.zeros(2)})
    _rewrite_record(store, "train", "newformat", format=FORMAT + 1)
    store.save("train", "newschema", {"v": 2}, {"x": np.zeros(2)})
    _rewrite_record(store, "train", "newschema", schema=SCHEMA_VERSION + 1)
    store.save("train", "newlayout", {"v": 3}, {"x": np.zeros(2)})
    _rewrite_record(store, "train", "newlayout", format=FORMAT + 1)
    (store.path("train", "newlayout") / SUMS).unlink()  # a newer format may lay out its files otherwise
    status, out = _store_cli(store, capsys, "--gc")
    assert status == 0
    assert all(store.path("train", k).is_dir() for k in ("newformat", "newschema", "newlayout"))
    assert f"left alone, of a newer version of this code: {store.path('train', 'newformat')} (store format " \
           f"{FORMAT + 1}, written by a newer version" in out, out
    assert f"{store.path('train', 'newschema')} (spec schema {SCHEMA_VERSION + 1}, written by a newer" in out, out
    assert main(["store", "--store", str(store.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [d["path"] for d in report["newer"]] == [str(store.path("train", k))
                                                    for k in ("newformat", "newlayout", "newschema")]
    assert report["removed"] == {} and report["kept"] == 0


def test_loading_an_entry_of_a_newer_version_stops_with_what_to_do_and_keeps_it(store, tmp_path):
    from landscape.errors import StoreError
    from landscape.store import FORMAT

    store.save("train", "k", {"v": 1}, {"x": np.zeros(2)})
    _rewrite_record(store, "train", "k", format=FORMAT + 1)
    with pytest.raises(StoreError, match=r"was written by a newer version of UE Landscape \(store format "
                                         rf"{FORMAT + 1}.*left as is: upgrade, or use another store "
                                         r"\(--store, or \$UE_LANDSCAPE_STORE\)"):
        store.load("train", "k")
    assert (store.path("train", "k") / SUMS).is_file()  # not dropped
    (store.path("train", "k") / SUMS).write_text("a layout of its own\n")  # nor when its files differ from ours
    with pytest.raises(StoreError, match="written by a newer version"):
        store.load("train", "k")
    assert (store.path("train", "k") / SUMS).read_text() == "a layout of its own\n"
    (store.path("train", "k") / SUMS).unlink()
    _rewrite_record(store, "train", "k", format=FORMAT + 1)
    # in a read-only snapshot it is skipped with a warning, and the user's store serves its own entry
    layered = Store(tmp_path / "user", snapshots=(store.root,))
    with pytest.warns(StoreWarning, match="written by a newer version"):
        layered.save("train", "k", {"v": 2}, {"x": np.ones(2)})
        assert layered.load("train", "k").meta == {"v": 2}


def test_the_default_cache_not_made_yet_is_an_empty_store_not_an_error(tmp_path, monkeypatch, capsys):
    """A fresh machine: `store --gc` on the default cache (no --store, no $UE_LANDSCAPE_STORE) reports an empty
    store and exits 0, as a cron job expects; it creates nothing."""
    monkeypatch.delenv("UE_LANDSCAPE_STORE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    for flags in ([], ["--gc"]):
        assert main(["store", *flags]) == 0
        out = capsys.readouterr().out
        assert f"store {tmp_path / 'cache' / 'ue-landscape'}: no store yet" in out, out
    assert main(["store", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["kept"] == 0
    assert not (tmp_path / "cache").exists()


def test_loading_reads_and_parses_meta_json_once(store, monkeypatch):
    """Every load checks an entry's format before its layout and checksums, from the one read of meta.json."""
    from pathlib import Path

    from landscape.store import META

    store.save("train", "k", {"v": 1}, {"x": np.zeros(2)})
    reads: list[str] = []
    original = Path.read_bytes

    def counted(self: Path) -> bytes:
        reads.append(self.name)
        return original(self)

    monkeypatch.setattr(Path, "read_bytes", counted)
    assert store.load("train", "k").meta == {"v": 1}
    assert reads.count(META) == 1, reads


@pytest.mark.parametrize("environment", [[1], "x", 3])
def test_an_entry_whose_environment_is_not_an_object_is_kept_unlabelled(store, capsys, environment):
    # a co-user can plant any meta.json and rewrite SHA256SUMS to match; gc raised AttributeError on this one
    store.save("train", "odd", {"v": 1}, {"x": np.zeros(2)})
    _rewrite_record(store, "train", "odd", environment=environment)
    status, out = _store_cli(store, capsys, "--gc")
    assert status == 0 and store.path("train", "odd").is_dir()
    assert main(["store", "--store", str(store.root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["numerics"] == {"unrecorded": 1}
