"""UD over seeds (landscape.seeds) and `run --seeds N`: the spread is the spread of the per-seed runs."""

from __future__ import annotations

import json
import math
import statistics

import pytest

from landscape.cli import main
from landscape.config import DataSpec, ExperimentSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.errors import SpecError
from landscape.experiment import run_experiment
from landscape.seeds import (
    SEED_MEASURES,
    Spread,
    seed_specs,
    single_seed_note,
    spread_over_seeds,
    study_separating,
    study_spread,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = ExperimentSpec(data=DataSpec(n_train=200, n_test=100), train=TrainSpec(epochs=2, batch_size=32),
                       poison=PoisonSpec(method="random"), sal=SALSpec(rounds=1))
SMALL_FLAGS = ["run", "--n-train", "200", "--n-test", "100", "--epochs", "2", "--batch-size", "32", "--method",
               "random", "--sal-rounds", "1"]


def test_spread_against_the_statistics_module():
    s = Spread((0.5, 1.5, None, float("nan"), 1.0))
    assert s.n == 3 and s.mean == pytest.approx(1.0) and s.std == pytest.approx(statistics.stdev([0.5, 1.5, 1.0]))
    assert (s.low, s.high) == (0.5, 1.5)
    assert s.text(".2f") == "1.00 ± 0.50 (3 of 5 seeds, 0.50–1.50)"
    d = s.to_dict()
    assert d["n"] == 3 and d["seeds"] == 5 and d["values"] == [0.5, 1.5, None, None, 1.0]
    json.dumps(d, allow_nan=False)  # strict JSON: undefined values are null


def test_one_seed_has_no_spread_and_says_so():
    s = Spread((0.7,))
    assert s.n == 1 and math.isnan(s.std) and s.text() == "0.700 (1 seed)" and s.to_dict()["std"] is None
    assert Spread((None, None)).text() == "n/a (0 of 2 seeds)"


def test_seed_specs_shift_every_seed_and_keep_the_first():
    specs = seed_specs(SMALL, 3)
    assert specs[0] == SMALL
    assert [s.train.seed for s in specs] == [0, 1, 2]
    assert [s.poison.seed for s in specs] == [0, 1, 2] and [s.sal.seed for s in specs] == [0, 1, 2]
    assert len({s.key() for s in specs}) == 3
    assert all(s.data == SMALL.data and s.model == SMALL.model for s in specs)
    for bad in (0, -1, 1.5, True, 101):
        with pytest.raises(SpecError, match="number of seeds"):
            seed_specs(SMALL, bad)


def test_spread_over_seeds_needs_the_measures():
    with pytest.raises(KeyError, match="lack the measure"):
        spread_over_seeds([{"ud": 1.0}])
    with pytest.raises(ValueError, match="no seeds"):
        spread_over_seeds([])


def test_single_seed_note_reads_the_study(tmp_path):
    missing = single_seed_note(SMALL, tmp_path / "none.json")
    assert "single seed is unstable" in missing and "--seeds 3" in missing and "measured" not in missing
    from landscape.stages.ud import resolve_experiment

    def cells(spec, uds):
        return [{"spec": resolve_experiment(s).to_dict(), "ud": ud}
                for s, ud in zip(seed_specs(spec, len(uds)), uds, strict=True)]

    rows = cells(SMALL, (0.5, 1.0, 1.5)) + cells(SMALL.replace(poison=PoisonSpec(method="ops")), (0.2, 0.6))
    path = tmp_path / "regime.json"
    path.write_text(json.dumps({"cells": rows}))
    here = study_spread(SMALL, rows)
    assert here is not None and here.values == (0.5, 1.0, 1.5)
    note = single_seed_note(SMALL, path)
    assert "1.000 ± 0.500 (3 seeds, 0.500–1.500)" in note
    other_epochs = single_seed_note(SMALL.replace(sal=SMALL.sal.replace(every=2)), path)
    assert "SAL measured at other epochs" in other_epochs and "1.000 ± 0.500" in other_epochs
    unseen = single_seed_note(SMALL.replace(train=SMALL.train.replace(epochs=3)), path)
    assert "did not run this setting" in unseen and "its 2 settings" in unseen and "0.28 to 0.50" in unseen


def test_study_separating_lists_each_block_of_the_data_set_with_the_ues_that_separate(tmp_path):
    """Per block of the data set and the baseline asked for: the UEs flagged `separated`, random noise never."""
    def row(block: str, method: str, separated: bool, baseline: str = "running") -> dict:
        return {"block": block, "baseline": baseline, "method": method, "separated": separated}

    study = tmp_path / "regime.json"
    study.write_text(json.dumps({"settings": [
        row("digits/cnn/sgd", "em", False), row("digits/cnn/sgd", "ops", True), row("digits/cnn/sgd", "random", True),
        row("digits/cnn/sgd", "em", True, baseline="fresh"), row("digits/lenet5/adam", "em", False),
        row("digits/lenet5/adam", "lsp", True), row("mnist-5k/lenet5/sgd", "tap", True),
        row("digits-large/cnn/sgd", "em", True)]}))
    assert study_separating("digits", path=study) == {"digits/cnn/sgd": ["ops"], "digits/lenet5/adam": ["lsp"]}
    assert study_separating("digits", "fresh", path=study) == {"digits/cnn/sgd": ["em"]}
    assert study_separating("mnist-5k", path=study) == {"mnist-5k/lenet5/sgd": ["tap"]}
    assert study_separating("cifar10", path=study) == {}
    assert study_separating("digits", path=tmp_path / "missing.json") == {}


def test_readme_quotes_the_shipped_study_spread():
    """The README's range of UD's seed standard deviation is the one a one-seed run prints (the shipped study)."""
    import re
    from pathlib import Path

    note = single_seed_note(SMALL.replace(train=SMALL.train.replace(epochs=3)))  # a setting the study did not run
    found = re.search(r"over its (\d+) settings .* was ([\d.]+) to ([\d.]+) \(median ([\d.]+)\)", note)
    assert found, note
    n, lo, hi, median = found.groups()
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"ranges from {lo} to {hi} over the study's {n} settings, median {median}" in readme


def test_cli_seeds_json_agrees_with_the_single_seed_runs(capsys, tmp_path):
    store = str(tmp_path / "s")
    assert main([*SMALL_FLAGS, "--store", store, "--seeds", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_seeds"] == 2 and out["seeds"] == [0, 1] and out["seed_note"] is None
    from landscape.store import Store

    singles = [run_experiment(s, store=Store(store)).summary() for s in seed_specs(SMALL, 2)]
    for m in SEED_MEASURES:
        assert out["spread"][m]["values"] == pytest.approx([s[m] for s in singles], nan_ok=True)
        assert out["spread"][m]["seeds"] == 2
    assert out["ud"] == singles[0]["ud"] and out["reported_seed"] == 0  # the point value is the first seed's, named
    assert out["spread"]["ud"]["mean"] == pytest.approx(statistics.fmean(s["ud"] for s in singles))

    assert main([*SMALL_FLAGS, "--store", store, "--seeds", "2"]) == 0
    text = capsys.readouterr().out
    assert "2 seeds" in text and "UD: " in text and "±" in text

    assert main([*SMALL_FLAGS, "--store", store, "--json"]) == 0
    one = json.loads(capsys.readouterr().out)
    assert one["n_seeds"] == 1 and one["spread"]["ud"]["std"] is None and "unstable" in one["seed_note"]
    assert main([*SMALL_FLAGS, "--store", store, "--seeds", "0"]) == 2
    assert "number of seeds" in capsys.readouterr().err


def test_study_methods_and_the_seed_spread_figure():
    from landscape.figures import ud_seed_spread
    from landscape.seeds import study_methods
    from landscape.stages.ud import resolve_experiment

    def rows(spec, uds):
        return [{"spec": resolve_experiment(s).to_dict(), "ud": u}
                for s, u in zip(seed_specs(spec, len(uds)), uds, strict=True)]

    ops = SMALL.replace(poison=PoisonSpec(method="ops"))
    study = rows(SMALL, (1.0, 1.2, None)) + rows(ops, (0.3, 0.5, 0.4))
    study += rows(SMALL.replace(train=SMALL.train.replace(lr=0.01)), (9.0, 9.0))  # another setting: not shown
    spreads = study_methods(ops.replace(sal=ops.sal.replace(every=3)), study)
    assert set(spreads) == {"random", "ops"} and spreads["ops"].values == (0.3, 0.5, 0.4)
    assert spreads["random"].n == 2 and len(spreads["random"].values) == 3
    assert study_methods(SMALL.replace(train=SMALL.train.replace(epochs=5)), study) == {}

    fig = ud_seed_spread({m: s.values for m, s in spreads.items()}, point={"ops": 0.45})
    seeds = [t for t in fig.data if t.name.endswith(": seeds")]
    assert [t.x[0] for t in seeds] == ["random (n=2)", "ops (n=3)"]
    assert list(seeds[1].y) == [0.3, 0.5, 0.4]
    mean = next(t for t in fig.data if t.name == "ops: mean ± std")
    assert mean.y[0] == pytest.approx(0.4) and mean.error_y.array[0] == pytest.approx(0.1)
    this = next(t for t in fig.data if t.name == "ops: this run")
    assert this.y[0] == 0.45 and not [t for t in fig.data if t.name == "random: this run"]
