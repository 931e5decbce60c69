"""Cross-task figures: metric drops per task, per-task curves, task similarity."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.figures.style import DIVERGING, color_of, epoch_axis

METRIC_LABELS = {"accuracy": "accuracy", "miou": "mIoU", "mse": "MSE", "psnr": "PSNR (dB)"}


def metric_label(metric: str) -> str:
    """A task metric as a reader writes it ("miou" -> "mIoU", "psnr" -> "PSNR (dB)"); unknown names unchanged."""
    return METRIC_LABELS.get(metric, metric)


def cross_task_drops(rows: Sequence[Mapping[str, object]]) -> go.Figure:
    """Relative drop of each task's clean-test metric after poisoned training, grouped by task, one bar per method.

    Args:
        rows: dicts with `task`, `method`, `metric` and `drop` (fraction; > 0 = the poisoned-trained model is worse).
    """
    methods = list(dict.fromkeys(str(r["method"]) for r in rows))
    tasks = list(dict.fromkeys(str(r["task"]) for r in rows))
    metric = {str(r["task"]): str(r["metric"]) for r in rows}
    fig = go.Figure()
    for m in methods:
        by_task = {str(r["task"]): 100.0 * float(r["drop"]) for r in rows if r["method"] == m}  # type: ignore[arg-type]
        fig.add_trace(go.Bar(x=[f"{t} ({metric_label(metric[t])})" for t in tasks],
                             y=[by_task.get(t, np.nan) for t in tasks],
                             name=m, marker_color=color_of(m),
                             hovertemplate="%{x}<br>drop %{y:.1f}%<extra>" + m + "</extra>"))
    fig.add_hline(y=0.0, line=dict(color="black", width=1))
    fig.update_layout(barmode="group", height=380, yaxis_title="relative drop vs clean training (%)",
                      title="How much poisoned training hurts each task (> 0: worse than clean; < 0: better)")
    return fig


def task_curves(curves: Mapping[str, Mapping[str, np.ndarray]], metrics: Mapping[str, str]) -> go.Figure:
    """Clean-test metric per epoch, one panel per task, one line per training condition.

    Args:
        curves: task -> condition ("clean" or a method) -> metric per epoch (T,), epoch 1 first.
        metrics: task -> the metric's name (the panel's y-axis title).
    """
    tasks = list(curves)
    fig = make_subplots(rows=1, cols=max(len(tasks), 1),
                        subplot_titles=[f"{t}: {metric_label(metrics[t])}" for t in tasks], horizontal_spacing=0.06)
    for col, task in enumerate(tasks, start=1):
        for cond, y in curves[task].items():
            y = np.asarray(y, dtype=float)
            fig.add_trace(go.Scatter(x=np.arange(1, len(y) + 1), y=y, mode="lines", name=cond, legendgroup=cond,
                                     line=dict(color=color_of(cond)), showlegend=col == 1),
                          row=1, col=col)
        fig.update_yaxes(title_text=metric_label(metrics[task]), row=1, col=col)
    fig.update_xaxes(**epoch_axis(max((len(y) for c in curves.values() for y in c.values()), default=0)))  # 1..T
    fig.update_layout(title="Clean-test metric per epoch, trained on clean vs poisoned images", height=360,
                      legend=dict(orientation="h", y=-0.25))
    return fig


def task_similarity(matrices: Mapping[str, np.ndarray], tasks: Sequence[str]) -> go.Figure:
    """Cosine similarity of the tasks' SAL vectors, one panel per condition (the paper's Fig. 5), shared scale.

    Args:
        matrices: condition -> (K, K) similarity, rows and columns in the order of `tasks`.
        tasks: task names (K,).
    """
    names = list(matrices)
    fig = make_subplots(rows=1, cols=max(len(names), 1), subplot_titles=names, shared_yaxes=True,
                        horizontal_spacing=0.04)
    for col, name in enumerate(names, start=1):
        z = np.asarray(matrices[name], dtype=float)  # symmetric, so no transpose question; row = y, col = x
        fig.add_trace(go.Heatmap(z=z, x=list(tasks), y=list(tasks), coloraxis="coloraxis",
                                 text=np.vectorize(lambda v: "" if not np.isfinite(v) else f"{v:.2f}")(z),
                                 texttemplate="%{text}",
                                 hovertemplate="%{y} vs %{x}<br>cosine %{z:.3f}<extra>" + name + "</extra>"),
                      row=1, col=col)
    fig.update_layout(coloraxis=dict(colorscale=DIVERGING, cmin=-1.0, cmax=1.0, colorbar=dict(title="cosine")),
                      title="Cosine similarity of the tasks' SAL vectors (layers x epochs), per training condition",
                      height=200 + 40 * max(len(tasks), 3))
    fig.update_yaxes(autorange="reversed")
    return fig
