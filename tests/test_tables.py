"""The result objects' tables (what the app shows and downloads), checked cell by cell without Streamlit."""

from __future__ import annotations

import numpy as np

from landscape.sal import ARRAY_FIELDS, SALTrace
from landscape.ud import unlearnable_distance


def trace(sal: np.ndarray, layers: tuple[str, ...] = ("conv", "fc")) -> SALTrace:
    t, n = sal.shape
    arrays = {name: np.full((t, n), float(i)) for i, name in enumerate(ARRAY_FIELDS)}
    arrays["sal"] = sal
    return SALTrace(layers, np.arange(1, t + 1), **arrays, seconds=np.ones(t))


def test_sal_table_rows_are_epoch_by_layer_with_the_right_cells():
    sal = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    rows = trace(sal).table("em")
    assert len(rows) == 6 and {r["run"] for r in rows} == {"em"}
    cell = next(r for r in rows if r["epoch"] == 2 and r["layer"] == "fc")
    assert cell["sal"] == 4.0 and cell["s_max"] == float(ARRAY_FIELDS.index("s_max"))
    assert cell["acc_variant_pp"] == float(ARRAY_FIELDS.index("acc_variant"))


def test_ud_tables_count_learnable_epochs_per_layer_and_layers_per_epoch():
    clean = trace(np.array([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0], [0.9, 0.1]]))
    poisoned = trace(np.array([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0]]))
    report = unlearnable_distance(clean, poisoned)
    layers = report.layer_table(("conv", "fc"))
    assert [r["layer"] for r in layers] == ["conv", "fc"]
    for j, row in enumerate(layers):
        assert row["learnable_epochs_clean"] == int(report.flags_clean[:, j].sum())
        assert row["learnable_epochs_poisoned"] == int(report.flags_poisoned[:, j].sum())
    assert layers[0]["learnable_epochs_clean"] != layers[1]["learnable_epochs_clean"]  # the table can tell them apart
    counts = report.counts_table("em")
    assert [r["run"] for r in counts] == ["clean"] * 4 + ["em"] * 3
    assert [r["learnable_layers"] for r in counts[4:]] == [float(c) for c in report.counts_poisoned]
    assert [r["epoch"] for r in counts[4:]] == [1, 2, 3]
