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


def poison_sample(clean_x: object, poisoned_x: object, labels: object, *, per_class: int = 2,
                  max_classes: int = 10) -> dict[str, object]:
    """A few clean/poisoned pairs per class (perturbed ones first), as numpy arrays.

    Args:
        clean_x: clean training images (N, C, H, W), tensor or array.
        poisoned_x: the same images poisoned.
        labels: (N,) class labels.
        per_class: images kept per class.
        max_classes: classes kept (the first ones).
    """
    clean, poisoned, y = (np.asarray(a) for a in (clean_x, poisoned_x, labels))
    changed = (clean != poisoned).reshape(len(clean), -1).any(1)
    picks = pick_examples(y, changed, per_class=per_class, max_classes=max_classes)
    return {"clean": clean[picks].astype(np.float32), "poisoned": poisoned[picks].astype(np.float32),
            "labels": y[picks].astype(np.int64), "n_changed": int(changed.sum()), "n_train": len(clean)}


def _mosaic(rows: Sequence[np.ndarray], gap: float) -> np.ndarray:
    """Images (C, H, W) laid out in one (C, R·(H+1)−1, K·(W+1)−1) array, `rows` of K each, `gap` between them."""
    c, h, w = rows[0][0].shape
    k = len(rows[0])
    out = np.full((c, len(rows) * (h + 1) - 1, k * (w + 1) - 1), gap, dtype=float)
    for r, images in enumerate(rows):
        for j, img in enumerate(images):
            out[:, r * (h + 1):r * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = img
    return out


def image_grid(clean: np.ndarray, poisoned: np.ndarray, labels: np.ndarray, class_names: Sequence[str],
               *, per_class: int = 1, max_classes: int = 10) -> go.Figure:
    """Rows: clean / perturbation (amplified) / poisoned; one column per picked image (per class).

    One mosaic trace (a grey heatmap for one channel, an RGB image for three) with one-pixel gaps (blank for
    grey, white for RGB), not a subplot per image: the same picture in one trace and one pair of axes (30 subplots
    took 0.14-0.21 s to build, this 0.006-0.07 s; the Poison page's switch went from 0.89 to 0.61 s, median of 3,
    bench/results/app_latency.md).

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
    c, h, w = clean.shape[1:]
    rows = [clean[picks], 0.5 + gain * delta[picks], poisoned[picks]]  # grey 0.5 = unchanged
    row_names = ["clean", f"perturbation x{gain:.1f}", "poisoned"]
    fig = go.Figure()
    if picks:
        grey = c == 1
        mosaic = _mosaic(rows, np.nan if grey else 1.0)  # (C, 3(H+1)-1, K(W+1)-1)
        if grey:
            fig.add_trace(go.Heatmap(z=mosaic[0], zmin=0.0, zmax=1.0, colorscale="gray", showscale=False,
                                     hoverongaps=False, hovertemplate="%{z:.3f}<extra></extra>"))
        else:
            fig.add_trace(go.Image(z=(np.clip(np.moveaxis(mosaic, 0, -1), 0, 1) * 255).astype(np.uint8)))
    centres_x = [j * (w + 1) + (w - 1) / 2 for j in range(len(picks))]
    centres_y = [r * (h + 1) + (h - 1) / 2 for r in range(3)]
    fig.update_xaxes(tickvals=centres_x, ticktext=[class_names[int(labels[i])] for i in picks], side="top",
                     showgrid=False, zeroline=False, constrain="domain")
    fig.update_yaxes(tickvals=centres_y, ticktext=row_names, autorange="reversed", showgrid=False, zeroline=False,
                     scaleanchor="x", scaleratio=1, constrain="domain")
    fig.update_layout(title=f"Clean, perturbation (amplified x{gain:.1f}, grey = 0) and poisoned images",
                      height=120 + 3 * 110, margin=dict(l=130, r=10, t=100, b=10), plot_bgcolor="white")
    return fig


BUDGET_LABELS = {"linf": "L∞", "l2": "L2 per image", "l0": "L0", "psnr": "PSNR"}
# Units and reading on each panel's y-axis: a quarter of a laptop-wide figure holds a short title only (the PSNR
# panel's "PSNR (dB, higher = less visible)" ran off the figure's right edge at 1366 px).
BUDGET_UNITS = {"linf": "pixel scale [0, 1]", "l2": "pixel scale [0, 1]", "l0": "changed pixels per image",
                "psnr": "dB (higher = less visible)"}


def budget_figure(rows: Mapping[str, Mapping[str, float]]) -> go.Figure:
    """One bar panel per budget figure (L∞, L2, L0, PSNR), one bar per method; units on each y-axis.

    Args:
        rows: method name -> {"linf", "l2", "l0", "psnr"} -> value (means over the poisoned images,
            as the engine reports them; a missing key is drawn as no bar).
    """
    keys = list(BUDGET_LABELS)
    fig = make_subplots(rows=1, cols=len(keys), subplot_titles=[BUDGET_LABELS[k] for k in keys],
                        horizontal_spacing=0.08)
    names = list(rows)
    for col, key in enumerate(keys, start=1):
        y = [float(rows[n].get(key, np.nan)) for n in names]
        fig.add_trace(go.Bar(x=names, y=y, marker_color=[color_of(n) for n in names], showlegend=False,
                             text=["" if np.isnan(v) else f"{v:.3g}" for v in y], textposition="outside"),
                      row=1, col=col)
        fig.update_yaxes(title_text=BUDGET_UNITS[key], row=1, col=col)
    fig.update_layout(title="Perturbation budget actually used", height=360)
    return fig
