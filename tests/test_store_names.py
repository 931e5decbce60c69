"""A folder that is not a store is never written into (`landscape.store_names`), and a store's sweep only touches
the folder of the stage it writes.

A user's folder (`--store ~/Documents`) got stage folders among their files, and the first write's sweep deleted a
lock-like file of theirs (``project/.build.lock``) and the folder it emptied.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path

import numpy as np
import pytest

from landscape.cli import main
from landscape.errors import PathError
from landscape.store import SWEEP_AGE, Store
from landscape.store_names import INPUTS, holds_a_store, not_a_store

KEY = "0123456789abcdef"  # a stage's key: 16 hex digits


def users_folder(root: Path) -> Path:
    """A folder of a user's files, one with a lock-like name untouched for hours (what a sweep would take)."""
    (root / "project").mkdir(parents=True)
    (root / "notes.txt").write_text("mine")
    (root / "photo.png").write_bytes(b"png")
    (root / "project" / ".build.lock").write_text("mine")
    old = time.time() - SWEEP_AGE - 60
    os.utime(root / "project" / ".build.lock", (old, old))
    return root


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


@pytest.mark.parametrize("argv", [
    ["train", "--epochs", "1", "--n-train", "20", "--n-test", "10"],
    ["craft", "--method", "random", "--n-train", "20"],
    ["store", "--gc"],
])
def test_a_write_command_refuses_a_folder_of_other_files_in_one_line_touching_nothing(tmp_path, capsys, argv):
    mine = users_folder(tmp_path / "Documents")
    before = files_under(mine)
    assert main([*argv, "--store", str(mine)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert (f"{mine} is not a store: it holds notes.txt, photo.png, project, and no store entry; nothing there was "
            f"touched (give a new or empty folder for a new store, or the folder of an existing store)") in err, err
    assert files_under(mine) == before


def test_the_python_api_refuses_to_write_into_it_too(tmp_path):
    mine = users_folder(tmp_path / "Documents")
    before = files_under(mine)
    with pytest.raises(PathError, match=f"^{mine} is not a store: it holds notes.txt"):
        Store(mine).check_writable()
    with pytest.raises(PathError, match="is not a store"):
        Store(mine).save("train", KEY, {"v": 1}, {"x": np.zeros(1)})  # the first write checks, before its sweep
    assert files_under(mine) == before


def test_what_is_a_store(tmp_path):
    """New, empty, holding entries, a key's lock of a first writer, only emptied stage folders, or only data sets
    handed in (`inputs`): a store. A lock-like name of the user's is not a store's."""
    assert not_a_store(tmp_path / "new") is None and not_a_store(tmp_path) is None  # absent, empty
    written = Store(tmp_path / "written")
    written.save("train", "k", {"v": 1}, {"x": np.zeros(1)})
    (written.root / "notes.txt").write_text("a file beside the entries")
    assert holds_a_store(written.root)
    for layout in ([f"train/.{KEY}.lock"], ["train/", "poison/"], [f"{INPUTS}/{'a' * 32}.npz", "other.txt"],
                   [f"sal/.tmp-{KEY}-{'b' * 32}/"]):
        root = tmp_path / f"layout{len(list(tmp_path.iterdir()))}"
        for name in layout:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).mkdir() if name.endswith("/") else (root / name).write_text("")
        assert holds_a_store(root), layout
        Store(root).check_writable()
    lock_only = tmp_path / "lockonly"
    (lock_only / "project").mkdir(parents=True)
    (lock_only / "project" / ".build.lock").write_text("")
    assert not holds_a_store(lock_only)
    with open(lock_only / "project" / ".build.lock", "a") as fh:  # a live writer of a key of the Python API's
        fcntl.flock(fh, fcntl.LOCK_EX)
        assert holds_a_store(lock_only)
    assert not holds_a_store(lock_only)


def test_a_first_write_sweeps_the_folder_of_its_stage_only(store):
    """Stale leftovers of the stage written are swept; another folder's (a stage not written by this process, or
    a folder no stage writes) are left to `store --gc`."""
    old = time.time() - SWEEP_AGE - 60
    store.save("sal", "k", {"v": 1}, {"x": np.zeros(1)})  # a store: entries in it
    for folder in ("train", "sal", "mine"):
        (store.root / folder).mkdir(exist_ok=True)
        (store.root / folder / ".a.lock").write_text("")
        os.utime(store.root / folder / ".a.lock", (old, old))
    Store(store.root).save("train", "k", {"v": 2}, {"x": np.zeros(1)})  # "sal" was swept already by its first write
    assert not (store.root / "train" / ".a.lock").exists()
    assert (store.root / "sal" / ".a.lock").exists() and (store.root / "mine" / ".a.lock").exists()


def test_data_handed_in_is_not_kept_in_a_folder_of_other_files(tmp_path, monkeypatch):
    """The Python API's arrays and the app's uploads are kept in the store's inputs folder, which then makes the
    folder a store: a folder of other files is refused before that, so it never becomes one."""
    import io

    from landscape.study import as_data, run_study
    from landscape.userconfig import keep_upload
    from tests.fixtures import quadrant_images

    mine = users_folder(tmp_path / "Documents")
    before = files_under(mine)
    x, y = quadrant_images(40)
    buf = io.BytesIO()
    np.savez(buf, x=x, y=y)
    with pytest.raises(PathError, match="is not a store"):
        keep_upload(buf.getvalue(), Store(mine))
    with pytest.raises(PathError, match="is not a store"):
        run_study("mlp", (x, y), poison="random", store=mine, epochs=1, surface=None, progress=False)
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(mine))
    with pytest.raises(PathError, match="is not a store"):
        as_data((x, y))
    assert files_under(mine) == before


def test_a_stage_folder_a_writer_removes_while_it_is_looked_at_is_not_the_users(tmp_path, monkeypatch):
    """A writer removes its emptied stage folder (and lock) when it is done: one listed, then gone, is a store's.

    Seen in a full test run: a two-worker `run` had a worker refused ("... is not a store: it holds , and no
    store entry").
    """
    import landscape.store_names as names

    root = tmp_path / "store"
    root.mkdir()
    listed = names._children

    def with_a_vanished_stage(folder: Path) -> list[Path]:
        return [*listed(folder), root / "train"] if folder == root else listed(folder)

    monkeypatch.setattr(names, "_children", with_a_vanished_stage)
    assert holds_a_store(root)
    assert not_a_store(root) is None
    (root / "notes.txt").write_text("mine")  # a user's file beside it is still told apart
    assert not holds_a_store(root)
    assert "notes.txt" in not_a_store(root)


def test_gc_and_writers_agree_on_what_a_store_is_damaged_entries_and_desktop_clutter_included(tmp_path):
    """A store whose one entry lost its SHA256SUMS and meta.json, or whose entries sit in a stage folder this
    version no longer writes, is still a store (gc is the tool that cleans it); a folder a desktop left
    `.DS_Store` / `._*` files in is an empty store; writers and gc answer the same for each."""
    from landscape.store_report import gc

    layouts = {"damaged": [f"train/{KEY}/arrays.safetensors"], "retired-stage": [f"crosstask-v1/{KEY}/SHA256SUMS"],
               "clutter": [".DS_Store", "._notes", "Thumbs.db"]}
    for name, files in layouts.items():
        root = tmp_path / name
        for f in files:
            (root / f).parent.mkdir(parents=True, exist_ok=True)
            (root / f).write_bytes(b"x")
        assert holds_a_store(root), name
        Store(root).check_writable()  # a writer takes it
        gc(Store(root), dry_run=True)  # and gc does not refuse it
    mine = users_folder(tmp_path / "mine")
    with pytest.raises(PathError):
        Store(mine).check_writable()
    with pytest.raises(Exception, match="not a store"):
        gc(Store(mine), dry_run=True)
