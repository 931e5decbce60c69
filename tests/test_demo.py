"""The demo as a read-only store snapshot: the layered store, the shipped snapshot's check, the CLI."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from landscape import demo
from landscape.config import DataSpec, PoisonSpec
from landscape.stages.base import Stage
from landscape.store import ARRAYS, Entry, Store, StoreWarning


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


def test_every_pages_default_request_is_a_demo_request():
    """Each page's default request, built by the page's own functions (or as the page builds it), is in the demo:
    a drift between a page and `demo.requests()` fails here, before any rebuild."""
    from landscape import multitask
    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views import curvature
    from landscape.stages.crosstask import run_stages

    spec = AppSpec()
    held = {(s.folder, s.key()) for s in demo.requests()}
    ct = multitask.CrossTaskSpec.for_methods(  # pages/cross_task.py with its widgets' defaults
        list(multitask.DEFAULT_METHODS), seed=spec.seed, data=spec.data(),
        train=multitask.DEFAULT_TRAIN.replace(epochs=multitask.DEFAULT_TRAIN.epochs), sal=multitask.DEFAULT_SAL)
    slices = [curvature.slice_stage(spec, layer, spec.epochs) for layer in demo.demo_layers()]
    wanted = {"UD": [engine.ud_stage(spec)], "curvature": list(curvature.curvature_stages(spec).values()),
              "layer slices": slices, "cross-task": list(run_stages(ct).values())}
    for view, stages in wanted.items():
        assert stages and all(s is not None for s in stages), view
        missing = [s.record() for s in stages if (s.folder, s.key()) not in held]
        assert not missing, f"the demo lacks the {view} request(s) {missing}"
    assert len(demo.demo_layers()) == 6 and len(ct.tasks) * len(ct.conditions) == 16



def test_the_demos_sal_layers_are_the_layers_it_slices():
    """The SAL page's cell pickers offer the layers and epochs of the demo's clean SAL (default: the first layer,
    the last epoch): those are the layers `requests()` slices, at the epoch it slices them."""
    from landscape.stages.ud import UDStage

    with tempfile.TemporaryDirectory() as empty:
        clean = UDStage.of(demo.experiment()).sal(PoisonSpec()).load(Store(empty, snapshots=(demo.DEMO_DIR,)))
    assert clean is not None, "the shipped demo holds the clean run's SAL"
    assert list(clean.layers) == demo.demo_layers() and int(clean.epochs[-1]) == demo.DEMO_TRAIN.epochs


@dataclass(frozen=True)
class Interrupted(Stage[Entry]):
    """A request whose computation is interrupted (Ctrl-C), as a long build's last request may be."""

    folder = "interrupted"
    data: DataSpec = DataSpec()

    def parts(self) -> tuple[DataSpec, ...]:
        return (self.data,)

    def record(self) -> dict:
        return {}

    def compute(self, ctx):
        raise KeyboardInterrupt

    def decode(self, entry: Entry) -> Entry:
        return entry

    def inputs(self) -> tuple:
        return ()


def test_an_interrupted_build_resumes_from_what_it_finished_and_only_then_replaces_the_snapshot(tmp_path,
                                                                                                  monkeypatch):
    from landscape.stages.poison import PoisonStage

    finished = [PoisonStage.of(DataSpec(n_train=100), PoisonSpec(method=m)) for m in ("random", "ops")]
    out = tmp_path / "demo"
    Store(out).get_or_compute("train", "old", compute(1.0))  # the snapshot in place before the build
    monkeypatch.setattr(demo, "requests", lambda: [*finished, Interrupted()])
    with pytest.raises(KeyboardInterrupt):
        demo.build(out)
    work = demo.build_dir(out)
    assert Store(out).keys("train") == ["old"] and not (out / "poison").exists(), "out is left as it was"
    assert all(s.exists(Store(work)) for s in finished), "the finished requests are kept in the build store"
    inodes = {s.key(): (work / s.folder / s.key() / "meta.json").stat().st_ino for s in finished}

    monkeypatch.setattr(demo, "requests", lambda: finished)
    report = demo.build(out)
    assert report.ok and report.entries == 2, report.describe()
    assert {s.key(): (out / s.folder / s.key() / "meta.json").stat().st_ino for s in finished} == inodes, \
        "resumed: the finished entries were moved into place, not computed again"
    assert not work.exists() and not (out / "train").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo"], "no build or old folder is left beside out"
