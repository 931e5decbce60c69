"""Concurrent stages (`landscape.stages.pool`): the same numbers whatever the worker count, worker errors as
the parent's, cancel (Ctrl-C, the app's stop) leaves no partial entry and a rerun completes, and workers never
run the parent's signal handlers (the Streamlit server's).

The studies are tiny (300 digits, 3 epochs): seconds each.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, Spec, TrainSpec
from landscape.errors import DataError, SpecError
from landscape.experiment import ExperimentResult, run_experiment
from landscape.stages.base import Computed, Context, Stage
from landscape.stages.pool import StageWorkerError, compute_concurrently, parse_workers
from landscape.stages.ud import UDStage
from landscape.store import Entry, Store

SPEC = ExperimentSpec(data=DataSpec(n_train=300, n_test=100), model=ModelSpec(name="cnn"), train=TrainSpec(epochs=3),
                      poison=PoisonSpec(method="em"), sal=SALSpec.preset("fast"))
SAL_FIELDS = ("epochs", "s_min", "s_max", "sal", "baseline", "acc_baseline", "acc_drop", "acc_rise", "acc_variant")


def assert_same_numbers(a: ExperimentResult, b: ExperimentResult) -> None:
    """Bit for bit: UD with β, counts and flags; both runs' histories and checkpoints; both SAL matrices."""
    ua, ub = a.ud.to_dict(), b.ud.to_dict()
    assert ua == ub
    for ra, rb in ((a.clean, b.clean), (a.poisoned, b.poisoned)):
        for key in ra.history:
            if key != "seconds":
                np.testing.assert_array_equal(ra.history[key], rb.history[key], err_msg=key)
        for ca, cb in zip(ra.checkpoints, rb.checkpoints, strict=True):
            for name in ca:
                assert np.array_equal(np.asarray(ca[name]), np.asarray(cb[name])), name
    for ta, tb in ((a.sal_clean, b.sal_clean), (a.sal_poisoned, b.sal_poisoned)):
        assert ta.layers == tb.layers
        for name in SAL_FIELDS:
            np.testing.assert_array_equal(getattr(ta, name), getattr(tb, name), err_msg=name)


def entries(root: Path) -> dict[str, list[str]]:
    """Every folder under each stage folder of a store (temporaries included: none may be left)."""
    return {stage.name: sorted(p.name for p in stage.iterdir() if p.is_dir()) for stage in root.iterdir()
            if stage.is_dir()} if root.exists() else {}


def assert_intact(store: Store) -> None:
    """Every folder in the store is a complete entry that loads (no temporary, no half-written entry)."""
    for stage, names in entries(store.root).items():
        for name in names:
            assert not name.startswith("."), f"{stage}/{name} left behind"
            assert store.load(stage, name) is not None, f"{stage}/{name} is not a complete entry"


@pytest.fixture(scope="module")
def serial(tmp_path_factory) -> ExperimentResult:
    """The tiny study with one worker: today's serial path."""
    return run_experiment(SPEC, store=Store(tmp_path_factory.mktemp("serial")), workers=1)


def pooled_run(spec: ExperimentSpec, store: Store, reference: ExperimentResult) -> list[tuple[str, int, int]]:
    """Run `spec` with two workers into an empty `store`; check its numbers against `reference`, that the store holds
    one entry per stage and is intact; return the progress reports."""
    reports: list[tuple[str, int, int]] = []
    pooled = run_experiment(spec, store=store, workers=2, progress=lambda *r: reports.append(r))
    assert_same_numbers(reference, pooled)
    assert {k: len(v) for k, v in entries(store.root).items()} == {"poison": 1, "train": 2, "sal": 2, "ud": 1}
    assert_intact(store)
    return reports


def test_two_workers_give_the_numbers_of_one_and_the_same_entries(serial, tmp_path):
    store = Store(tmp_path / "pooled")
    reports = pooled_run(SPEC, store, serial)
    names = {r[0] for r in reports}
    assert {"craft", "train-clean", "train-em", "sal-clean", "sal-em", "ud"} <= names
    for name in ("sal-clean", "sal-em"):  # a split stage's parts add up to one bar that ends full
        steps = [(d, t) for n, d, t in reports if n == name]
        assert steps[-1] == (3, 3) and all(t == 3 for _, t in steps)
    assert not multiprocessing.active_children()
    again = run_experiment(SPEC, store=store, workers=2)  # served from the store: nothing forked, same numbers
    assert_same_numbers(serial, again)


def test_sal_in_the_trainer_in_workers_stores_each_run_once_with_the_numbers_of_one(tmp_path):
    """Runs keeping every second checkpoint: each chain's SAL stage trains its run in a worker and stores the run's
    entry there too, so the parent loads both runs and nothing is trained or stored twice."""
    sparse = SPEC.replace(poison=PoisonSpec(method="random"), train=SPEC.train.replace(checkpoint_every=2))
    reports = pooled_run(sparse, Store(tmp_path / "pooled"), run_experiment(sparse, store=Store(tmp_path / "one")))
    assert [r for r in reports if r[0] == "train-clean"][-1] == ("train-clean", 3, 3)
    assert sum(1 for r in reports if r == ("train-clean", 3, 3)) == 1  # the parent did not train it again
    assert not multiprocessing.active_children()


def test_the_worker_count_is_checked():
    assert parse_workers("auto") in (1, 2) and parse_workers(3) == 3 and parse_workers("2") == 2
    for bad in (0, -1, "two", 1.5, True, ""):
        with pytest.raises(SpecError, match=r"workers = .* integer >= 1 .* 'auto'"):
            parse_workers(bad)


# ------------------------------------------------------------------------------------------------ errors


@dataclass(frozen=True)
class Probe(Stage[dict]):
    """A test stage: `compute` sleeps `seconds`, then does `action` ("ok", "landscape", "bug" or "die")."""

    folder = "probe"
    data: DataSpec
    action: str
    seconds: float = 0.0

    def parts(self) -> tuple[Spec, ...]:
        return (self.data,)

    def key(self) -> str:
        return f"{self.action}-{self.seconds}"

    def record(self) -> dict[str, Any]:
        return {"action": self.action}

    def compute(self, ctx: Context) -> Computed:
        started = time.time()
        for step in range(10):
            time.sleep(self.seconds / 10)
            ctx.progress(f"probe-{self.action}", step + 1, 10)
        if self.action == "landscape":
            raise DataError("the file /data/x.npz is truncated; expected arrays x and y")
        if self.action == "bug":
            return {"ratio": 1 / 0}, {}
        if self.action == "die":
            os._exit(3)
        return {"pid": os.getpid(), "started": started, "ended": time.time()}, {}

    def decode(self, entry: Entry) -> dict:
        return entry.meta

    def inputs(self) -> tuple:
        return ()


def probes(*actions: str, seconds: float = 0.0) -> list[Probe]:
    return [Probe(DataSpec(), a, seconds) for a in actions]


def test_a_worker_error_is_raised_in_the_parent_with_its_message(store):
    ctx = Context(store)
    with pytest.raises(DataError, match=r"^the file /data/x.npz is truncated; expected arrays x and y$"):
        compute_concurrently(probes("landscape", "ok", seconds=0.5), ctx, 2)
    with pytest.raises(ZeroDivisionError) as bug:
        compute_concurrently(probes("bug", "ok"), ctx, 2)
    assert any("raised in the stage worker" in note and "1 / 0" in note for note in bug.value.__notes__)
    # fresh keys for both (the first call may have stored ok-0.5 before its error): with one stage left to do,
    # compute_concurrently would run "die" in this process, and os._exit would end the test session
    dying = probes("die", "ok", seconds=0.7)
    assert not any(p.exists(store) for p in dying)
    with pytest.raises(StageWorkerError, match=r"worker computing Probe die-0.7 ended with exit code 3"):
        compute_concurrently(dying, ctx, 2)
    assert not multiprocessing.active_children()
    assert_intact(store)
    assert store.load("probe", "landscape-0.5") is None and store.load("probe", "die-0.7") is None


def test_stages_run_in_workers_side_by_side(store):
    compute_concurrently([Probe(DataSpec(), "ok", 1.0), Probe(DataSpec(), "ok", 1.5)], Context(store), 2)
    a, b = (store.load("probe", k).meta for k in ("ok-1.0", "ok-1.5"))
    assert len({a["pid"], b["pid"], os.getpid()}) == 3, "each in a worker of its own"
    assert a["started"] < b["ended"] and b["started"] < a["ended"], "at the same time"


def test_one_worker_computes_here(store):
    compute_concurrently(probes("ok", "ok", seconds=0.1), Context(store), 1)
    assert store.load("probe", "ok-0.1").meta["pid"] == os.getpid()


# ------------------------------------------------------------------------------------------------ cancel


class Cancel(KeyboardInterrupt):
    """Raised from the progress callback, as Ctrl-C or the app's stop arrives."""


def cancelling(after: str) -> Any:
    def progress(stage: str, done: int, total: int) -> None:
        if stage == after and done >= 1:
            raise Cancel
    return progress


def test_cancel_midway_leaves_no_partial_entry_and_a_rerun_completes(serial, tmp_path):
    store = Store(tmp_path / "cancelled")
    with pytest.raises(Cancel):
        run_experiment(SPEC, store=store, workers=2, progress=cancelling("sal-em"))
    assert not multiprocessing.active_children(), "the workers are stopped"
    assert_intact(store)
    ud = UDStage.of(SPEC)
    assert ud.run(ud.spec.poison).exists(store), "cancelled midway: the poisoned run was done"
    assert not ud.sal(ud.spec.poison).exists(store) and not ud.exists(store), "its SAL (in parts) and UD were not"
    rerun = run_experiment(SPEC, store=store, workers=2)
    assert_same_numbers(serial, rerun)
    assert_intact(store)


WORKER_IMPORTS = """
import json, os, sys, tempfile
from landscape.stages import pool
from landscape.stages.base import Context
from landscape.store import Store
from landscape.config import DataSpec
from tests.test_concurrent import Probe

serve = pool._serve

def recording_serve(w, *args):  # what each forked worker imports that the parent had not
    before = set(sys.modules)
    try:
        serve(w, *args)
    finally:
        with open(os.path.join(sys.argv[1], f"worker-{w}.json"), "w") as f:
            json.dump(sorted(set(sys.modules) - before), f)

pool._serve = recording_serve
assert "sklearn" not in sys.modules
stages = [Probe(DataSpec(), "ok", 0.2), Probe(DataSpec(), "ok", 0.3)]  # two keys: both go to workers
pool.compute_concurrently(stages, Context(Store(tempfile.mkdtemp())), 2)
"""


def test_workers_import_none_of_what_a_store_entry_records(tmp_path):
    """Every entry records the library versions (`numeric_environment`): a worker importing scikit-learn for its
    version (with SciPy and pandas) hung in the app, on the pandas import lock a Streamlit thread held at the fork."""
    import json
    import subprocess
    import sys

    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-c", WORKER_IMPORTS, str(tmp_path)], cwd=root, check=True, timeout=300)
    imported = {f.name: json.loads(f.read_text()) for f in tmp_path.glob("worker-*.json")}
    assert len(imported) == 2
    for name, modules in imported.items():
        assert not {m.split(".")[0] for m in modules} & {"sklearn", "scipy", "pandas"}, (name, modules[:8])


def test_workers_never_run_the_parents_signal_handlers(store):
    """A parent whose SIGTERM/SIGINT handlers hang (the Streamlit server's wait on its event loop): cancelling still
    stops the workers at once, and no handler of the parent ever ran in a worker."""
    ran_in: list[int] = []

    def hang(signum: int, frame: Any) -> None:
        ran_in.append(os.getpid())
        if os.getpid() != parent:
            with open(marks / f"{os.getpid()}", "w"):  # a child ran it: leave a mark, then hang as Streamlit's would
                time.sleep(3600)

    parent, marks = os.getpid(), store.root.parent / "marks"
    marks.mkdir()
    before = {s: signal.signal(s, hang) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with pytest.raises(Cancel):
            compute_concurrently(probes("ok", "slow", seconds=30.0), Context(store, progress=cancelling("probe-ok")), 2)
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
    assert not multiprocessing.active_children()
    assert not list(marks.iterdir()) and not ran_in
    assert_intact(store)


# ------------------------------------------------------------------------------------------------ the app


def test_the_app_stops_a_live_run_midway_without_a_partial_entry_and_a_rerun_completes(monkeypatch, tmp_path):
    """#17 acceptance 3: a live experiment in the app (its chains in workers) is stopped midway, as Streamlit stops
    a script (a stop request, raised as StopException from the next st call: here the progress bar's); the
    store then holds only intact entries, no UD, no worker is left, and clicking again completes the run with the
    numbers of a one-worker run of the same spec."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    from landscape.app import engine, widgets
    from landscape.app.state import AppSpec
    from tests.test_app import open_page, stored_ud, tiny

    sidebar = {"model": "mlp", "method": "ops", "epochs": 3}
    draw, seen = widgets.StatusProgress.__call__, []

    def stop_at_sal(self: widgets.StatusProgress, stage: str, done: int, total: int) -> None:
        seen.append((stage, done))
        if stage.startswith("sal-") and done >= 1:
            get_script_run_ctx().script_requests.request_stop()  # what the app's Stop (or a rerun) does
        draw(self, stage, done, total)

    monkeypatch.setattr(widgets.StatusProgress, "__call__", stop_at_sal)
    at = tiny(open_page("pages/overview.py"), **sidebar)
    at.button(key="overview_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert any(s.startswith("sal-") for s, _ in seen) and not any(s == "ud" for s, _ in seen), "stopped midway"
    assert not multiprocessing.active_children(), "the workers are stopped"
    user = Store(os.environ["UE_LANDSCAPE_STORE"])
    assert_intact(user)
    assert user.keys("train") and not user.keys("ud"), "the runs were stored, UD was not"

    monkeypatch.setattr(widgets.StatusProgress, "__call__", draw)
    at.button(key="overview_run").click().run()
    assert any("(Experiment) was stopped before it finished" in w.value for w in at.warning), "the next run says so"
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert_intact(user)
    ud = next(m for m in at.metric if m.label == "UD (ops)")
    assert ud.value == stored_ud(**sidebar)
    one = run_experiment(engine.experiment_spec(AppSpec(**sidebar)), store=Store(tmp_path / "one"), workers=1)
    assert_same_numbers(one, engine.experiment(AppSpec(**sidebar)))
