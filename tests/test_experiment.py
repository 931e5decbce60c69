"""The orchestrator (landscape.experiment.run_experiment) and the `run` CLI, end to end on a small digits set."""

from __future__ import annotations

import json

import numpy as np
import pytest

from landscape.cli import main
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.experiment import get_training, run_experiment
from landscape.sal import SALTrace

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
    assert not [c for c in calls if c[0] == "again" and c[1].startswith("train")]  # nothing retrained
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
