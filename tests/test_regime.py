"""The regime study's report (bench/regime.py): separation rule, exact per-layer decomposition, outputs."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from landscape.seeds import single_seed_note

BENCH = Path(__file__).resolve().parent.parent / "bench" / "regime.py"


@pytest.fixture(scope="module")
def regime():
    spec = importlib.util.spec_from_file_location("regime_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    yield module
    del sys.modules[spec.name]


LAYERS = ["a", "b", "c", "d"]


def cell(regime, method: str, seed: int, learnable: list[float], ud: float, sal: list[float]) -> dict:
    """A finished cell with the same numbers under both baselines; a clean run with every layer learnable."""
    from landscape.stages.ud import resolve_experiment

    measures = {"ud": ud, "ud_defined": True, "beta": 0.1,
                "lp_clean": 4.0, "lp_poisoned": 4.0 * ud, "w1_overall": 0.01, "mean_ratio_overall": 1.0,
                "learnable_clean": [1.0] * 4, "learnable_poisoned": learnable, "mean_sal_clean": [1.0] * 4,
                "mean_sal_poisoned": sal, "share_clean": [[0.25] * 4] * 2,
                "share_poisoned": [list(np.divide(sal, sum(sal)))] * 2}
    return {"block": regime.BLOCKS[0].label, "dataset": "digits", "model": "cnn", "recipe": "sgd", "epochs": 30,
            "method": method, "seed": seed, "clean_acc": 0.97, "poisoned_acc": 0.5, "layers": LAYERS,
            "baselines": {b: {**measures, "spec": resolve_experiment(regime.BLOCKS[0].spec(method, seed, b)).to_dict()}
                          for b in regime.BASELINES}, "wall_s": 1.0, "load_start": 1.0,
            "commit": "x"}


def test_separation_needs_non_overlapping_one_std_intervals_and_the_drop_is_split_over_layers(regime):
    cells = []
    for seed in range(3):
        cells.append(cell(regime, "random", seed, [1, 1, 1, 1], 1.0 + 0.05 * seed, [1, 1, 1, 1]))
        cells.append(cell(regime, "em", seed, [1, 1, 0, 0.1 * seed], 0.5 + 0.05 * seed, [1, 1, 0.1, 0.2]))
        cells.append(cell(regime, "ops", seed, [1, 1, 1, 1], 0.9 + 0.1 * seed, [1, 1, 1, 1]))  # overlaps random
    rows = regime.settings(cells)
    by = {(r["baseline"], r["method"]): r for r in rows}
    em, ops = by[("running", "em")], by[("running", "ops")]
    assert em["separated"] and not ops["separated"] and not by[("running", "random")]["separated"]
    assert em["ud_mean"] == pytest.approx(0.55) and em["ud_std"] == pytest.approx(0.05)
    from scipy.stats import ttest_ind

    assert em["welch_p"] < 0.001 and ops["welch_p"] == pytest.approx(
        ttest_ind([0.9, 1.0, 1.1], [1.0, 1.05, 1.1], equal_var=False, alternative="less").pvalue)
    lay = em["layers"]
    # d_l = learnable under random - under em, mean over seeds: [0, 0, 1, 0.9]; sums to the #LP drop
    np.testing.assert_allclose(lay["d_layers"], [0, 0, 1, 0.9])
    assert lay["drop_lp"] == pytest.approx(1.9)
    assert lay["k"] == 2 and not lay["minority"] and lay["top"] == ["c", "d"]  # 2 of 4 is not fewer than half
    np.testing.assert_allclose(lay["sal_ratio_layers"], [1, 1, 0.1, 0.2])
    v = regime.verdict(rows)
    assert any(s.startswith("SEPARATES") and ", em:" in s and "no minority" in s for s in v)
    assert any(s.startswith("does not separate") and ", ops:" in s for s in v)


def test_a_minority_is_fewer_than_half_the_layers(regime):
    ue = [cell(regime, "em", s, [1, 1, 1, 0], 0.5, [1, 1, 1, 0.1]) for s in range(3)]
    control = [cell(regime, "random", s, [1, 1, 1, 1], 1.0, [1, 1, 1, 1]) for s in range(3)]
    lay = regime.minority(ue, control, LAYERS, "running")
    assert lay["k"] == 1 and lay["minority"] and lay["top"] == ["d"]


def test_report_files_and_the_single_seed_note_read_them(regime, tmp_path):
    cells = [cell(regime, m, s, [1, 1, 1, 1], u + 0.1 * s, [1, 1, 1, 1])
             for s in range(3) for m, u in (("random", 1.0), ("em", 0.3))]
    paths = regime.write_report(cells, tmp_path / "regime")
    md = paths["md"].read_text()
    assert "wall time 6 s" in md and "| digits/cnn/sgd | running | em |" in md and "SEPARATES" in md
    data = json.loads(paths["json"].read_text())  # strict JSON (NaN written as null)
    assert len(data["cells"]) == len(cells) * 2 and data["header"]["cells"] == len(cells)
    assert paths["csv"].read_text().count("\n") == len(cells) * 2 + 1
    spec = regime.BLOCKS[0].spec("em", 0, "running")
    assert "0.400 ± 0.100 (3 seeds, 0.300–0.500)" in single_seed_note(spec, paths["json"])
    from landscape.seeds import setting_label, study_settings, study_shares

    label = setting_label(data["cells"][0]["spec"])
    assert label in study_settings(data["cells"])
    shares = study_shares(label, paths["json"])
    assert set(shares) == {"em", "random"} and shares["em"]["epochs"] == list(range(2, 31, 2))
    np.testing.assert_allclose(shares["em"]["poisoned"], [[0.25] * 4] * 2)
