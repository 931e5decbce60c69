"""Unlearnable examples as images and budgets: clean / perturbation / poisoned grids, budget bars."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.figures.style import color_of


def pick_examples(labels: np.ndarray, changed: np.ndarray, *, per_class: int = 1, max_classes: int = 10) -> list[int]:
    """Indices of up to `per_class` images for each of the first `max_classes` classes, perturbed ones first."""
    labels, changed = np.asarray(labels), np.asarray(changed, dtype=bool)
    picked: list[int] = []
    for c in np.unique(labels)[:max_classes]:
        idx = np.flatnonzero(labels == c)
        order = np.concatenate([idx[changed[idx]], idx[~changed[idx]]])
        picked.extend(int(i) for i in order[:per_class])
    return picked


def _image_trace(img: np.ndarray, zmin: float = 0.0, zmax: float = 1.0, colorscale: str = "gray") -> go.BaseTraceType:
    """One (C, H, W) image as a trace: a grey heatmap for one channel, an RGB image for three."""
    if img.shape[0] == 1:
        return go.Heatmap(z=img[0], zmin=zmin, zmax=zmax, colorscale=colorscale, showscale=False,
                          hovertemplate="row %{y}, col %{x}: %{z:.3f}<extra></extra>")
    rgb = np.clip(np.moveaxis(img, 0, -1), 0, 1) * 255  # (H, W, 3)
    return go.Image(z=rgb.astype(np.uint8))


def image_grid(clean: np.ndarray, poisoned: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               *, per_class: int = 1, max_classes: int = 10) -> go.Figure:
    """Rows: clean / perturbation (amplified) / poisoned; one column per picked image (per class).

    Args:
        clean: clean images (N, C, H, W) in [0, 1].
        poisoned: the same images after the poison (N, C, H, W).
        labels: class index of each image (N,).
        class_names: names of the classes.
        per_class: images shown per class.
        max_classes: classes shown at most (the first ones).
    """
    clean, poisoned = np.asarray(clean, dtype=float), np.asarray(poisoned, dtype=float)
    delta = poisoned - clean
    changed = np.abs(delta).reshape(len(delta), -1).max(axis=1) > 0
    picks = pick_examples(labels, changed, per_class=per_class, max_classes=max_classes)
    peak = float(np.abs(delta[picks]).max()) if picks else 0.0
    gain = 0.5 / peak if peak > 0 else 1.0
    titles = [class_names[int(labels[i])] for i in picks]
    fig = make_subplots(rows=3, cols=max(len(picks), 1), subplot_titles=titles, horizontal_spacing=0.01,
                        vertical_spacing=0.04)
    for col, i in enumerate(picks, start=1):
        fig.add_trace(_image_trace(clean[i]), row=1, col=col)
        fig.add_trace(_image_trace(0.5 + gain * delta[i]), row=2, col=col)  # grey = unchanged
        fig.add_trace(_image_trace(poisoned[i]), row=3, col=col)
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed", constrain="domain")
    for row in (1, 2, 3):  # square pixels: each y axis is scaled to its own x axis
        for col in range(1, len(picks) + 1):
            x_name = fig.get_subplot(row, col).xaxis.plotly_name.replace("axis", "")
            fig.update_yaxes(scaleanchor=x_name, scaleratio=1, row=row, col=col)
    for row, text in ((1, "clean"), (2, f"perturbation x{gain:.1f}"), (3, "poisoned")):
        fig.update_yaxes(title_text=text, visible=True, showticklabels=False, showgrid=False, zeroline=False,
                         row=row, col=1)
    fig.update_layout(title=f"Clean, perturbation (amplified x{gain:.1f}, grey = 0) and poisoned images",
                      height=120 + 3 * 110, margin=dict(l=90, r=10, t=80, b=10))
    return fig


BUDGET_LABELS = {"linf": "L∞ (pixel scale [0, 1])", "l2": "L2 per image", "l0": "L0 (changed pixels)",
                 "psnr": "PSNR (dB, higher = less visible)"}


def budget_figure(rows: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """One bar panel per budget figure (L∞, L2, L0, PSNR), one bar per method.

    Args:
        rows: method name -> {"linf", "l2", "l0", "psnr"} -> value (means over the poisoned images,
            as the engine reports them; a missing key is drawn as no bar).
    """
    keys = list(BUDGET_LABELS)
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[BUDGET_LABELS[k] for k in keys])
    names = list(rows)
    for col, key in enumerate(keys, start=1):
        y = [float(rows[n].get(key, np.nan)) for n in names]
        fig.add_trace(go.Bar(x=names, y=y, marker_color=[color_of(n, names) for n in names], showlegend=False,
                             text=[f"{v:.3g}" for v in y], textposition="outside"), row=1, col=col)
    fig.update_layout(title="Perturbation budget actually used", height=360)
    return fig
