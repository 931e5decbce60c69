"""The orchestrator (landscape.experiment.run_experiment) and the `run` CLI, end to end on a small digits set."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch

from landscape.cli import main
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, SurfaceSpec, TrainSpec
from landscape.experiment import get_surface, get_training, run_experiment
from landscape.sal import SALTrace
from landscape.stages.surface import labelled_runs
from landscape.stages.train import TrainerSALStage, TrainStage, sal_stage
from landscape.store import Store

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors; see conftest.py

SMALL = dict(data=DataSpec(n_train=200, n_test=100), train=TrainSpec(epochs=3, batch_size=32),
             sal=SALSpec(rounds=1))


def test_run_experiment_end_to_end_cached_and_with_progress(store):
    spec = ExperimentSpec(poison=PoisonSpec(method="random"), **SMALL)
    calls = []
    result = run_experiment(spec, store=store, progress=lambda *a: calls.append(a))
    stages = {c[0] for c in calls}
    assert {"train-clean", "train-random", "ud"} <= stages
    assert ("train-clean", 3, 3) in calls and ("ud", 1, 1) in calls
    for trace in (result.sal_clean, result.sal_poisoned):
        assert trace.sal.shape == (3, 6) and list(trace.epochs) == [1, 2, 3]
        assert np.isfinite(trace.sal).all() and (trace.sal >= 0).all()
    ud = result.ud
    assert ud.flags_clean.shape == (3, 6) and ud.counts_poisoned.shape == (3,)
    assert np.isfinite(ud.beta) and ud.lp_clean > 0  # the clean run always has a layer above its own midpoints
    assert ud.ud == pytest.approx(ud.lp_poisoned / ud.lp_clean)
    summary = result.summary()
    assert summary["method"] == "random" and summary["sal"] == "custom" and 0 <= summary["clean_test_acc"] <= 1
    json.dumps(summary)  # JSON-ready

    again = run_experiment(spec, store=store, progress=lambda *a: calls.append(("again", *a)))
    assert not [c for c in calls if c[0] == "again"]  # nothing retrained, and nothing reported (not even "ud")
    np.testing.assert_array_equal(again.sal_poisoned.sal, result.sal_poisoned.sal)
    assert again.ud.ud == ud.ud and again.ud.beta == ud.beta


def test_sal_is_stored_with_the_training_run_and_keyed_by_its_spec(store):
    data, train = SMALL["data"], SMALL["train"]
    plain = get_training(data, ModelSpec(), train, store=store)
    assert "sal" not in plain.extras
    a = get_training(data, ModelSpec(), train, store=store, sal=SALSpec(rounds=1))
    b = get_training(data, ModelSpec(), train, store=store, sal=SALSpec(rounds=1, eps=0.1))
    ta, tb = SALTrace.from_dict(a.extras["sal"]), SALTrace.from_dict(b.extras["sal"])
    assert ta.spec.eps == 0.05 and tb.spec.eps == 0.1
    assert (tb.sal >= ta.sal - 1e-12).mean() > 0.5  # a larger ball reaches further, in most cells
    np.testing.assert_array_equal(a.history["train_loss"], plain.history["train_loss"])  # SAL never moves the model


def test_clean_method_gives_ud_one(store):
    result = run_experiment(ExperimentSpec(poison=PoisonSpec(method="clean"), **SMALL), store=store)
    assert result.poisoned is result.clean and result.ud.ud == 1.0


def test_cli_run_json(capsys, tmp_path):
    code = main(["run", "--n-train", "200", "--n-test", "100", "--epochs", "2", "--batch-size", "32",
                 "--method", "random", "--sal-rounds", "1", "--store", str(tmp_path / "s"), "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "random" and len(out["counts_clean"]) == 2 and len(out["flags_poisoned"][0]) == 6
    assert "ud" in out and "beta" in out and "w1_overall" in out
    code = main(["run", "--n-train", "200", "--n-test", "100", "--epochs", "2", "--batch-size", "32",
                 "--method", "random", "--sal-rounds", "1", "--store", str(tmp_path / "s")])
    text = capsys.readouterr().out
    assert code == 0 and "UD =" in text and "β" in text and "#LP clean" in text


def test_cli_train_json_holds_the_per_epoch_table_the_text_prints(capsys, tmp_path):
    args = ["train", "--n-train", "200", "--n-test", "100", "--epochs", "3", "--store", str(tmp_path / "s")]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main(args) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:4]]
    assert [r["epoch"] for r in out["epochs"]] == [1, 2, 3]
    for row, shown in zip(out["epochs"], rows, strict=True):
        assert [f"{row['train_loss']:.4f}", f"{row['train_acc']:.3f}", f"{row['test_loss']:.4f}",
                f"{row['test_acc']:.3f}"] == shown[1:]
    assert out["epochs"][-1]["test_acc"] == out["final"]["test_acc"]


def test_sal_from_stored_checkpoints_equals_sal_measured_inside_the_trainer(store):
    """The fast path (SAL on the stored run, its own stage) against the reference (SALTracker in the trainer).

    `checkpoint_every=2` keeps too few checkpoints for the post-hoc path, so that run measures SAL inside the
    trainer; both must give the same numbers bit for bit, here with a preprocessing defense and a poison.
    """
    from landscape.config import DefenseSpec

    data, poison, defense = SMALL["data"], PoisonSpec(method="random"), DefenseSpec(name="jpeg")
    sal = SALSpec(rounds=1, every=2)
    train = TrainSpec(epochs=4, batch_size=32)
    calls = []
    posthoc = get_training(data, ModelSpec(), train, poison, store=store, sal=sal, defense=defense,
                           progress=lambda *a: calls.append(a))
    inside = get_training(data, ModelSpec(), train.replace(checkpoint_every=2), poison, store=store, sal=sal,
                          defense=defense)
    fast, ref = SALTrace.from_dict(posthoc.extras["sal"]), SALTrace.from_dict(inside.extras["sal"])
    assert list(fast.epochs) == list(ref.epochs) == [2, 4]
    for name in ("sal", "s_min", "s_max", "baseline", "acc_variant"):
        np.testing.assert_array_equal(getattr(fast, name), getattr(ref, name))
    assert ("sal-random", 2, 2) in calls  # measured as its own stage, after training

    calls.clear()  # the run is shared: without SAL, or with another SAL setting, nothing is retrained
    plain = get_training(data, ModelSpec(), train, poison, store=store, defense=defense,
                         progress=lambda *a: calls.append(a))
    other = get_training(data, ModelSpec(), train, poison, store=store, sal=SALSpec(rounds=1), defense=defense,
                         progress=lambda *a: calls.append(a))
    assert "sal" not in plain.extras and not [c for c in calls if c[0].startswith("train")]
    assert list(SALTrace.from_dict(other.extras["sal"]).epochs) == [1, 2, 3, 4]


# ------------------------------------------------------------------------ runs keeping too few checkpoints for SAL

SPARSE = TrainSpec(epochs=3, batch_size=32, checkpoint_every=2)  # keeps epochs 0, 2, 3: SAL is measured in the trainer
TINY_SURFACE = SurfaceSpec(kind="random", dims=1, resolution=3, n_eval=32)


def _count_training(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Wrap the real trainer where the training stages call it; the list gets one entry per run trained."""
    import landscape.stages.train as stages_train

    calls: list[str] = []
    real = stages_train.train

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(type(args[0]).__name__)
        return real(*args, **kwargs)

    monkeypatch.setattr(stages_train, "train", counted)
    return calls


def test_an_experiment_keeping_every_second_checkpoint_and_its_surfaces_train_each_run_once(store, monkeypatch):
    """SAL measured in the trainer stores the plain run as well, so the surfaces read it instead of training again."""
    calls = _count_training(monkeypatch)
    poison = PoisonSpec(method="random")
    spec = ExperimentSpec(data=SMALL["data"], train=SPARSE, poison=poison, sal=SMALL["sal"])
    result = run_experiment(spec, store=store)
    surfaces = get_surface(spec.data, spec.model, SPARSE, poison, TINY_SURFACE, store=store)
    assert len(calls) == 2  # the clean run and the poisoned run, once each
    runs = labelled_runs(spec.data, spec.model, SPARSE, [poison])
    assert sorted(store.keys("train")) == sorted(r.key() for r in runs.values())  # one entry per run
    sal = [sal_stage(spec.data, spec.model, SPARSE, p, spec.sal) for p in (PoisonSpec(), poison)]
    assert all(isinstance(s, TrainerSALStage) for s in sal)
    assert sorted(store.keys("sal")) == sorted(s.key() for s in sal)  # SAL entries of their own, no checkpoints
    assert all(not store.load("sal", s.key()).arrays for s in sal)
    assert result.clean.checkpoint_epochs == [0, 2, 3] and list(result.sal_clean.epochs) == [1, 2, 3]
    assert set(surfaces.surfaces) == {"clean", "random"}

    calls.clear()  # everything is served from the store now
    again = run_experiment(spec, store=store)
    assert not calls
    np.testing.assert_array_equal(again.sal_poisoned.sal, result.sal_poisoned.sal)


def test_a_run_asked_for_while_sal_in_the_trainer_trains_it_waits_instead_of_training_it_too(store, monkeypatch):
    """The trainer-SAL stage trains under the run's lock: a plain `TrainStage.get` meanwhile gets its entry."""
    import threading

    import landscape.stages.train as stages_train
    from landscape.stages.base import Context

    data, poison = SMALL["data"], PoisonSpec(method="random")
    started, release, calls = threading.Event(), threading.Event(), []
    real = stages_train.train

    def gated(*args: Any, **kwargs: Any) -> Any:
        calls.append(threading.current_thread().name)
        started.set()
        assert release.wait(60)
        return real(*args, **kwargs)

    monkeypatch.setattr(stages_train, "train", gated)
    sal = sal_stage(data, ModelSpec(), SPARSE, poison, SMALL["sal"])
    run = TrainStage.of(data, ModelSpec(), SPARSE, poison)
    results: dict[str, Any] = {}
    threads = [threading.Thread(target=lambda: results.__setitem__("sal", sal.get(Context(store))), name="sal"),
               threading.Thread(target=lambda: results.__setitem__("run", run.get(Context(store))), name="run")]
    threads[0].start()
    assert started.wait(60)  # the SAL stage is training the run now
    threads[1].start()
    threads[1].join(0.5)
    assert threads[1].is_alive()  # waiting for the run's lock
    release.set()
    for t in threads:
        t.join(120)
    assert calls == ["sal"] and set(results) == {"sal", "run"}
    assert results["run"].checkpoint_epochs == [0, 2, 3] and list(results["sal"].epochs) == [1, 2, 3]


def test_the_run_stored_by_sal_in_the_trainer_is_the_run_trained_on_its_own(tmp_path):
    """Same entry record, history, kept epochs and checkpoints (torch.equal) as the plain run; no SAL inside it."""
    from landscape.config import DefenseSpec
    from landscape.stages.base import Context

    data, poison, defense = SMALL["data"], PoisonSpec(method="random"), DefenseSpec(name="jpeg")
    half = SPARSE.replace(checkpoint_every=1, checkpoint_dtype="float16")  # the other reason SAL moves in the trainer
    for train in (SPARSE, half):
        stage = TrainStage.of(data, ModelSpec(), train, poison, defense=defense)
        own = Store(tmp_path / f"alone-{train.key()}")
        alone = stage.get(Context(own))
        store = Store(tmp_path / f"with-sal-{train.key()}")
        sal = sal_stage(data, ModelSpec(), train, poison, SMALL["sal"], defense=defense)
        assert isinstance(sal, TrainerSALStage)
        sal.get(Context(store))
        side = stage.load(store)
        assert side is not None and store.keys("train") == [stage.key()]
        records = [json.loads((s.path("train", stage.key()) / "meta.json").read_text()) for s in (store, own)]
        assert records[0]["spec"] == records[1]["spec"] and records[0]["meta"]["extras"] == {}
        assert side.extras == {} and side.diverged == alone.diverged
        assert side.checkpoint_epochs == alone.checkpoint_epochs
        for key in alone.history:
            if key != "seconds":
                np.testing.assert_array_equal(side.history[key], alone.history[key], err_msg=key)
        for mine, theirs in zip(side.checkpoints, alone.checkpoints, strict=True):
            assert mine.keys() == theirs.keys()
            assert all(mine[k].dtype == theirs[k].dtype and torch.equal(mine[k], theirs[k]) for k in mine)


def test_sal_in_the_trainer_of_a_stored_run_trains_again_but_keeps_the_runs_entry(store, monkeypatch):
    """Sparse checkpoints cannot be replayed, so SAL trains the run again; the stored entry is left as it was."""
    from landscape.stages.base import Context

    data, poison = SMALL["data"], PoisonSpec(method="random")
    stage = TrainStage.of(data, ModelSpec(), SPARSE, poison)
    stage.get(Context(store))
    meta = store.path("train", stage.key()) / "meta.json"
    before = meta.read_bytes()  # holds the time it was written: a rewritten entry differs
    calls = _count_training(monkeypatch)
    trace = sal_stage(data, ModelSpec(), SPARSE, poison, SMALL["sal"]).get(Context(store))
    assert len(calls) == 1 and list(trace.epochs) == [1, 2, 3]
    assert store.keys("train") == [stage.key()] and meta.read_bytes() == before


def test_training_stage_keys_are_those_of_before_sal_left_the_run():
    """Plain and defended runs and SAL of stored checkpoints keep their keys (the shipped demo depends on them);
    SAL in the trainer never shares a key with SAL of stored checkpoints, even one built on the same sparse run."""
    from landscape.config import DefenseSpec
    from landscape.stages.train import SALStage

    data, poison, defense, sal = SMALL["data"], PoisonSpec(method="random"), DefenseSpec(name="jpeg"), SALSpec(rounds=1)
    train = SMALL["train"]
    assert TrainStage.of(data, ModelSpec(), train, poison).key() == "6f3aba43467d0616"
    assert TrainStage.of(data, ModelSpec(), SPARSE, poison, defense=defense).key() == "5f2abfac09d9c985"
    assert sal_stage(data, ModelSpec(), train, poison, sal, defense=defense).key() == "f74d7e1dc1eab0a7"
    inside = sal_stage(data, ModelSpec(), SPARSE, poison, sal, defense=defense)
    assert isinstance(inside, TrainerSALStage) and inside.folder == SALStage.folder
    assert inside.key() != SALStage(inside.run, sal).key()
