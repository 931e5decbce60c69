"""The demo as a read-only store snapshot: the layered store, the shipped snapshot's check, the CLI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landscape import demo
from landscape.store import ARRAYS, Store, StoreWarning


def compute(value: float):
    def make():
        return {"value": value}, {"x": np.full(3, value)}

    return make


def test_layered_store_serves_the_snapshot_and_writes_only_its_own_folder(tmp_path):
    snapshot, user = tmp_path / "snapshot", tmp_path / "user"
    Store(snapshot).get_or_compute("train", "k1", compute(1.0))
    before = sorted(p.relative_to(snapshot) for p in snapshot.rglob("*") if ".lock" not in p.name)
    layered = Store(user, snapshots=(snapshot,))
    assert layered.get_or_compute("train", "k1", compute(2.0)).meta["value"] == 1.0  # served, not recomputed
    assert layered.origin("train", "k1") == snapshot
    assert layered.get_or_compute("train", "k2", compute(3.0)).meta["value"] == 3.0
    assert layered.origin("train", "k2") == user and layered.keys("train") == ["k2"]
    assert sorted(p.relative_to(snapshot) for p in snapshot.rglob("*") if ".lock" not in p.name) == before
    assert layered.origin("train", "k3") is None


def test_a_broken_snapshot_entry_is_skipped_never_removed_and_recomputed_in_the_users_store(tmp_path):
    snapshot, user = tmp_path / "snapshot", tmp_path / "user"
    Store(snapshot).get_or_compute("train", "k1", compute(1.0))
    arrays = snapshot / "train" / "k1" / ARRAYS
    arrays.write_bytes(arrays.read_bytes()[:-1] + b"\x00")
    layered = Store(user, snapshots=(snapshot,))
    with pytest.warns(StoreWarning, match="skipped"):
        assert layered.get_or_compute("train", "k1", compute(2.0)).meta["value"] == 2.0
    assert arrays.exists() and layered.origin("train", "k1") == user


def test_the_shipped_snapshot_holds_every_request_intact_and_small():
    report = demo.check()
    assert report.ok, report.describe()
    assert report.entries >= len(demo.requests()) and report.bytes <= demo.MAX_BYTES


def test_check_finds_a_missing_request_and_a_broken_entry(tmp_path):
    import shutil

    copy = tmp_path / "demo"
    shutil.copytree(demo.DEMO_DIR, copy)
    surface = demo.requests()[1]
    shutil.rmtree(copy / surface.folder / surface.key())
    ud = next(copy.glob("ud/*"))
    (ud / "meta.json").write_text((ud / "meta.json").read_text().replace("ud", "UD", 1))
    report = demo.check(copy)
    assert not report.ok and len(report.missing) == 2 and report.broken == [f"ud/{ud.name}"]


def test_demo_check_command():
    done = subprocess.run([sys.executable, "-m", "landscape", "demo", "--check"], capture_output=True, text=True,
                          cwd=Path(demo.__file__).resolve().parents[1])
    assert done.returncode == 0, done.stdout + done.stderr
    assert "within the 5 MB budget" in done.stdout
