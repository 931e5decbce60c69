"""Training curves: loss and accuracy per epoch, clean vs poisoned."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.figures.style import color_of, epoch_axis


def training_curves(histories: Mapping[str, Mapping[str, np.ndarray]]) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch; train dashed, clean test solid, one colour per run.

    Args:
        histories: run name -> history with arrays `train_loss`, `test_loss`, `train_acc`, `test_acc`
            of length epochs (epoch 1 first).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cross-entropy loss", "accuracy"))
    for name, h in histories.items():
        color = color_of(name)
        for col, metric in ((1, "loss"), (2, "acc")):
            for split, dash in (("train", "dash"), ("test", "solid")):
                y = np.asarray(h[f"{split}_{metric}"], dtype=float)
                label = "clean test" if split == "test" else "train"
                fig.add_trace(go.Scatter(
                    x=np.arange(1, len(y) + 1), y=y, mode="lines+markers", name=f"{name}: {label}",
                    line=dict(color=color, dash=dash), marker=dict(size=4),
                    legendgroup=name, showlegend=col == 1,
                ), row=1, col=col)
    fig.update_xaxes(**epoch_axis(max((len(h["test_loss"]) for h in histories.values()), default=0)))  # 1..T
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_layout(title="Clean vs poisoned training (dashed: train set the model saw; solid: clean test set)",
                      height=420, legend=dict(orientation="h", y=-0.2))
    return fig
