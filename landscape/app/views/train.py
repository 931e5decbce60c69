"""The Train page's table and metrics: per-epoch histories of the clean and the poisoned run."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st


def history_table(histories: dict[str, dict[str, np.ndarray]]) -> list[dict[str, Any]]:
    """Rows run x epoch of the training history."""
    return [{"run": run, "epoch": i + 1, **{k: float(v[i]) for k, v in h.items()}}
            for run, h in histories.items() for i in range(len(h["train_loss"]))]


def accuracy_metrics(histories: dict[str, dict[str, np.ndarray]]) -> None:
    """Final clean test accuracy of every run, side by side (best epoch in the help)."""
    for col, (run, h) in zip(st.columns(len(histories)), histories.items(), strict=True):
        col.metric(f"{run}: clean test accuracy", f"{h['test_acc'][-1]:.1%}",
                   help=f"after epoch {len(h['test_acc'])}; best {h['test_acc'].max():.1%}")
