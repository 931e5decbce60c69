"""The cross-task probe: spec validation, the end-to-end digits pipeline on a small subset, caching, CLI."""

import json
import math

import numpy as np
import pytest

from landscape.config import DataSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.errors import SpecError
from landscape.multitask import (
    CLEAN,
    CrossTaskSpec,
    TaskSpec,
    cosine_similarity,
    relative_drop,
)
from landscape.stages.crosstask import run_cross_task

SMALL = dict(data=DataSpec(n_train=200, n_test=100), train=TrainSpec(epochs=2, optimizer="adam", lr=3e-3),
             sal=SALSpec(eval_size=64, rounds=1, every=1))


def test_spec_defaults_and_validation():
    spec = CrossTaskSpec()
    assert spec.tasks == ("classify", "segment", "edges", "reconstruct")
    assert spec.methods == ("em", "ops", "ar") and spec.conditions == (CLEAN, "em", "ops", "ar")
    assert spec.poison(CLEAN) == PoisonSpec() and spec.poison("ops").method == "ops"
    assert CrossTaskSpec(data=DataSpec(n_train=10)).tasks == spec.tasks
    with pytest.raises(SpecError, match="not defined on 'cifar10'"):
        CrossTaskSpec(data=DataSpec(name="cifar10"), tasks=("segment",))
    with pytest.raises(SpecError, match="augment"):
        CrossTaskSpec(train=TrainSpec(augment="crop"))
    with pytest.raises(SpecError, match="clean training is always included"):
        CrossTaskSpec.for_methods(["clean", "em"])
    with pytest.raises(SpecError, match="once"):
        CrossTaskSpec.for_methods(["em", "em"])
    with pytest.raises(SpecError, match="no condition"):
        spec.poison("tap")
    with pytest.raises(SpecError, match="width"):
        TaskSpec("edges", width=0)
    seeded = CrossTaskSpec.for_methods(["ops", "random"], seed=4)
    assert seeded.train.seed == 4 and all(p.seed == 4 for p in seeded.poisons)
    assert CrossTaskSpec.from_dict(seeded.to_dict()) == seeded
    assert seeded.key() != CrossTaskSpec.for_methods(["ops", "random"], seed=1).key()
    from landscape.stages.crosstask import TaskRunStage

    ops = TaskRunStage.of(seeded, "edges", "ops").poison  # the stage keys the run by the method's default budget
    assert ops.eps is not None and ops.eps >= 1 and ops.seed == 4


def test_relative_drop_and_cosine():
    assert relative_drop(0.9, 0.45, True) == pytest.approx(0.5)
    assert relative_drop(0.01, 0.02, False) == pytest.approx(1.0)  # MSE doubled: 100 % worse
    assert relative_drop(20.0, 21.0, True) == pytest.approx(-0.05)  # better than clean: negative
    assert math.isnan(relative_drop(0.0, 1.0, True))
    sim = cosine_similarity(np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]]))
    np.testing.assert_allclose(sim, [[1, 1, 0], [1, 1, 0], [0, 0, 1]], atol=1e-12)


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    from landscape.store import Store

    store = Store(tmp_path_factory.mktemp("crosstask") / "store")
    spec = CrossTaskSpec.for_methods(["random"], seed=0, **SMALL)
    stages = []
    result = run_cross_task(spec, store=store, progress=lambda stage, done, total: stages.append(stage))
    return spec, store, result, stages


def test_pipeline_end_to_end(small_result):
    spec, _, result, stages = small_result
    assert set(result.runs) == {(t, c) for t in spec.tasks for c in spec.conditions}
    assert "cross-task" in stages and "segment · random" in stages
    rows = result.table()
    assert [(r["task"], r["method"]) for r in rows] == [(t, "random") for t in spec.tasks]
    for r in rows:
        assert np.isfinite(r["clean"]) and np.isfinite(r["poisoned"]) and np.isfinite(r["drop"])
        primary = {"classify": "accuracy", "segment": "miou", "edges": "mse", "reconstruct": "psnr"}
        assert r["metric"] == primary[r["task"]]
    run = result.run("segment", CLEAN)
    assert {"miou", "pixel_acc", "loss"} <= set(run.metrics)
    assert len(run.history["test_acc"]) == spec.train.epochs
    assert run.sal is not None and run.sal.sal.shape == (spec.train.epochs, 6)
    names, sim = result.sal_similarity(CLEAN)
    assert names == list(spec.tasks) and sim.shape == (4, 4)
    np.testing.assert_allclose(np.diag(sim), 1.0, atol=1e-9)
    np.testing.assert_allclose(sim, sim.T, atol=1e-12)
    _, enc = result.sal_vectors("random", layers=4)
    assert enc.shape == (4, spec.train.epochs * 4)
    with pytest.raises(SpecError, match="no run"):
        result.run("depth", CLEAN)


def test_ud_per_task_uses_the_tasks_clean_model(small_result):
    from landscape.multitask import task_ud

    _, _, result, _ = small_result
    for task in result.spec.tasks:
        clean = result.run(task, CLEAN)
        report = task_ud(clean, clean)
        assert report.ud == pytest.approx(1.0) or not report.ud_defined  # a clean model against itself
        poisoned = task_ud(clean, result.run(task, "random"))
        row = next(r for r in result.table() if r["task"] == task)
        assert row["ud"] == poisoned.ud or (math.isnan(row["ud"]) and math.isnan(poisoned.ud))
        assert row["sal_ratio"] == pytest.approx(poisoned.mean_ratio_overall, nan_ok=True)
        assert poisoned.beta == pytest.approx(report.beta)  # beta comes from the task's clean run only


def test_runs_are_cached_in_the_store(small_result, monkeypatch):
    import landscape.stages.crosstask as mt

    spec, store, result, _ = small_result
    monkeypatch.setattr(mt, "train", lambda *a, **k: pytest.fail("a stored run was retrained"))
    said = []
    again = run_cross_task(spec, store=store, progress=lambda *a: said.append(a))
    assert not said, said  # read whole from the store: no progress at all
    for key, run in result.runs.items():
        assert again.runs[key].metrics == run.metrics
        np.testing.assert_array_equal(again.runs[key].sal.sal, run.sal.sal)


def test_the_uds_are_stored_and_a_loaded_probe_reads_them(small_result, monkeypatch):
    """The table of a stored probe reads its stored UDs (no KMeans), equal to UD computed from the runs."""
    import landscape.multitask as multitask
    from landscape.multitask import CrossTaskResult
    from landscape.stages.crosstask import load_cross_task, ud_stages

    spec, store, result, _ = small_result
    assert all(stage.exists(store) for stage in ud_stages(spec).values()) and len(ud_stages(spec)) == 4
    computed = CrossTaskResult(spec, result.runs).table()  # no stored UDs: computed from the runs' SAL
    monkeypatch.setattr(multitask, "task_ud", lambda *a: pytest.fail("a stored UD was computed again"))
    loaded = load_cross_task(spec, store)
    assert set(loaded.uds) == {(t, "random") for t in spec.tasks}
    assert json.dumps(loaded.table()) == json.dumps(computed)  # bit for bit (NaN included)
    unseeded = CrossTaskSpec.for_methods(["random"], **{**SMALL, "sal": None})
    assert ud_stages(unseeded) == {}
    with pytest.raises(SpecError, match="no UD"):
        from landscape.stages.crosstask import TaskUDStage

        TaskUDStage.of(unseeded, "classify", "random")


def test_a_probe_stored_without_its_uds_computes_them(small_result, tmp_path):
    import shutil

    from landscape.stages.crosstask import TaskUDStage, load_cross_task
    from landscape.store import Store

    spec, store, result, _ = small_result
    older = tmp_path / "older"
    shutil.copytree(store.root, older)
    shutil.rmtree(older / TaskUDStage.folder)  # as stored before the UD stage
    loaded = load_cross_task(spec, Store(older))
    assert loaded.uds == {}
    assert json.dumps(loaded.table()) == json.dumps(result.table())


def test_cli_prints_the_table(small_result, capsys, tmp_path):
    from landscape.cli import main

    args = ["cross-task", "--dataset", "digits", "--n-train", "120", "--n-test", "60", "--methods", "random",
            "--tasks", "classify,edges", "--epochs", "1", "--no-sal", "--store", str(tmp_path / "s"), "--device", "cpu"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "classify" in out and "edges" in out and "random" in out and "UD" in out and "n/a" in out
    assert main([*args, "--json"]) == 0  # what the text says n/a is null: standard JSON, no NaN token

    def refuse(token: str) -> None:
        raise AssertionError(f"--json printed {token}, which is not JSON")

    rows = json.loads(capsys.readouterr().out, parse_constant=refuse)["rows"]
    assert rows and all(r["ud"] is None and r["sal_ratio"] is None for r in rows)
    assert main(["cross-task", "--tasks", "segment", "--dataset", "cifar10", "--data-root", str(tmp_path)]) == 2


def test_cross_task_figures_carry_the_data(small_result):
    from landscape import figures

    _, _, result, _ = small_result
    rows = result.table()
    drops = figures.cross_task_drops(rows)
    assert [t.name for t in drops.data] == ["random"]
    np.testing.assert_allclose(drops.data[0].y, [100 * r["drop"] for r in rows])
    curves = figures.task_curves(result.curves(), result.metric_names())
    assert len(curves.data) == len(result.spec.tasks) * len(result.spec.conditions)
    np.testing.assert_array_equal(curves.data[0].y, result.run("classify", CLEAN).history["test_acc"])
    sims = result.similarities()
    fig = figures.task_similarity(sims, result.spec.tasks)
    assert list(fig.data[0].x) == list(fig.data[0].y) == list(result.spec.tasks)
    np.testing.assert_allclose(np.asarray(fig.data[1].z, dtype=float), sims["random"])
    assert fig.layout.coloraxis.cmin == -1 and fig.layout.coloraxis.cmax == 1
