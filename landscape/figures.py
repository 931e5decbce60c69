"""Pure figure builders: plain arrays in, `plotly.graph_objects.Figure` out.

Every builder takes numpy arrays (or mappings of them) with their axes stated in the signature and
returns a figure; nothing here computes science, reads files or imports streamlit, so the builders are
tested on the figure's data (`fig.data[i].z`, `fig.layout`) without rendering. Axis orientation is
handled here and only here: arrays indexed (α, β) or (epoch, layer) are transposed once, because
plotly reads `z[row = y][col = x]`. Raw values stay raw; a log scale is an explicit option and is
named in the axis title.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

if TYPE_CHECKING:
    from landscape.surface import Surface

CLEAN = "clean"
# One colour per run name, stable across figures: clean is always blue, poisons follow plotly's palette.
_PALETTE = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_CLEAN_COLOR = "#1f77b4"
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"


_NEUTRAL = {"shared": "#555555", "interp": "#555555", "init": "#7f7f7f", "center": "#555555"}


def color_of(name: str, names: Sequence[str] = ()) -> str:
    """The colour of run `name`: blue for clean, grey for non-runs, else its palette slot among `names`.

    Non-runs are labels such as a shared plane or the initialisation.
    """
    if name == CLEAN:
        return _CLEAN_COLOR
    if name in _NEUTRAL:
        return _NEUTRAL[name]
    others = [n for n in names if n != CLEAN and n not in _NEUTRAL]
    index = others.index(name) if name in others else sum(map(ord, name))
    return _PALETTE[index % len(_PALETTE)]


def shared_range(*arrays: np.ndarray | None, log: bool = False) -> tuple[float, float]:
    """(min, max) over the finite values of all arrays (after log10 if `log`), for one shared colour scale."""
    values = [np.asarray(a, dtype=float).ravel() for a in arrays if a is not None]
    flat = np.concatenate(values) if values else np.zeros(0)
    if log:
        flat = np.log10(flat[flat > 0])
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = float(flat.min()), float(flat.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def _scale(z: np.ndarray, log: bool) -> np.ndarray:
    z = np.asarray(z, dtype=float)
    if not log:
        return z
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z > 0, np.log10(np.where(z > 0, z, 1.0)), np.nan)


def _zlabel(label: str, log: bool) -> str:
    return f"log10 {label}" if log else label


# ---------------------------------------------------------------------------------------------------- training


def training_curves(histories: Mapping[str, Mapping[str, np.ndarray]]) -> go.Figure:
    """Loss (left) and accuracy (right) per epoch; train dashed, clean test solid, one colour per run.

    Args:
        histories: run name -> history with arrays `train_loss`, `test_loss`, `train_acc`, `test_acc`
            of length epochs (epoch 1 first).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("cross-entropy loss", "accuracy"))
    names = list(histories)
    for name, h in histories.items():
        color = color_of(name, names)
        for col, metric in ((1, "loss"), (2, "acc")):
            for split, dash in (("train", "dash"), ("test", "solid")):
                y = np.asarray(h[f"{split}_{metric}"], dtype=float)
                label = "clean test" if split == "test" else "train"
                fig.add_trace(go.Scatter(
                    x=np.arange(1, len(y) + 1), y=y, mode="lines+markers", name=f"{name}: {label}",
                    line=dict(color=color, dash=dash), marker=dict(size=4),
                    legendgroup=name, showlegend=col == 1,
                ), row=1, col=col)
    fig.update_xaxes(title_text="epoch", tickformat="d")
    fig.update_yaxes(title_text="loss", row=1, col=1)
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=2)
    fig.update_layout(title="Clean vs poisoned training (dashed: train set the model saw; solid: clean test set)",
                      height=420, legend=dict(orientation="h", y=-0.2))
    return fig


# ---------------------------------------------------------------------------------------------------- poisons


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


# ---------------------------------------------------------------------------------------------------- landscape


@dataclass(frozen=True)
class PathView:
    """A trajectory projected onto a plane: coordinates per checkpoint, and what the plane misses.

    Attributes:
        epochs: checkpoint epochs (T,).
        a: coordinate along direction 1 (T,).
        b: coordinate along direction 2 (T,).
        real_loss: the checkpoint's own loss (T,), or None.
        surface_loss: the surface value at the projection (T,), or None.
        residual: norm of the part of (checkpoint - centre) off the plane (T,), or None.
    """

    epochs: np.ndarray
    a: np.ndarray
    b: np.ndarray
    real_loss: np.ndarray | None = None
    surface_loss: np.ndarray | None = None
    residual: np.ndarray | None = None


def path_views(surface: Surface, metric: str = "loss") -> dict[str, PathView]:
    """The projected paths of a `landscape.surface.Surface` as `PathView`s (surface value = loss or accuracy)."""
    out = {}
    for name, p in surface.paths.items():
        real, plane = (p.real_loss, p.plane_loss) if metric == "loss" else (p.real_acc, p.plane_acc)
        out[name] = PathView(epochs=p.epochs, a=p.alpha, b=p.beta, real_loss=real, surface_loss=plane,
                             residual=p.residual)
    return out


def slice_1d(coords: np.ndarray, curves: Mapping[str, np.ndarray], *, xlabel: str = "step along the direction",
             ylabel: str = "loss", log: bool = False, markers: Mapping[str, float] | None = None) -> go.Figure:
    """Loss (or accuracy) along a line: one curve per name, all on the same coordinates `coords` (n,).

    `markers` names positions on the line (e.g. where the clean and the poisoned model sit).
    """
    fig = go.Figure()
    names = list(curves)
    for name, y in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(coords), y=_scale(y, log), mode="lines", name=name,
                                 line=dict(color=color_of(name, names))))
    for name, x in (markers or {}).items():
        fig.add_vline(x=float(x), line=dict(color=color_of(name, list(markers or {})), dash="dot"),
                      annotation_text=name, annotation_position="top")
    fig.update_layout(title=f"1D slice: {_zlabel(ylabel, log)}", xaxis_title=xlabel, yaxis_title=_zlabel(ylabel, log),
                      height=380)
    return fig


def _path_traces(paths: Mapping[str, PathView], z_of: Mapping[str, np.ndarray] | None = None) -> list[go.Scatter]:
    traces = []
    names = list(paths)
    for name, p in paths.items():
        color = color_of(name, names)
        text = [f"{name}, epoch {int(e)}" for e in p.epochs]
        if z_of is None:
            traces.append(go.Scatter(x=p.a, y=p.b, mode="lines+markers", name=f"{name} path",
                                     line=dict(color=color, width=2), marker=dict(size=5, color=color),
                                     text=text, hovertemplate="%{text}<br>(%{x:.3g}, %{y:.3g})<extra></extra>"))
        else:
            traces.append(go.Scatter3d(x=p.a, y=p.b, z=z_of[name], mode="lines+markers", name=f"{name} path",
                                       line=dict(color=color, width=5), marker=dict(size=3, color=color),
                                       text=text))
    return traces


def contour(alpha: np.ndarray, beta: np.ndarray, values: np.ndarray, *, paths: Mapping[str, PathView] | None = None,
            markers: Mapping[str, tuple[float, float]] | None = None, zrange: tuple[float, float] | None = None,
            log: bool = False, label: str = "loss", title: str = "loss",
            xlabel: str = "α (direction 1)", ylabel: str = "β (direction 2)") -> go.Figure:
    """2D contour of `values[i, j]` = value at (alpha[i], beta[j]), with trajectories and named points on top."""
    z = _scale(values, log).T  # plotly: rows = y = beta, columns = x = alpha
    lo, hi = zrange if zrange is not None else shared_range(values, log=log)
    fig = go.Figure(go.Contour(x=np.asarray(alpha), y=np.asarray(beta), z=z, zmin=lo, zmax=hi, colorscale=SEQUENTIAL,
                               contours=dict(showlabels=True), colorbar=dict(title=_zlabel(label, log)),
                               name=title))
    for trace in _path_traces(paths or {}):
        fig.add_trace(trace)
    for name, (a, b) in (markers or {}).items():
        fig.add_trace(go.Scatter(x=[a], y=[b], mode="markers+text", text=[name], textposition="top center",
                                 marker=dict(symbol="star", size=14, color=color_of(name, list(markers or {})),
                                             line=dict(color="white", width=1)), name=name))
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=480,
                      legend=dict(orientation="h", y=-0.15))
    return fig


@dataclass(frozen=True)
class Panel:
    """One 2D slice for a side-by-side view: grid axes, values[i, j] at (alpha[i], beta[j]), paths on it."""

    alpha: np.ndarray
    beta: np.ndarray
    values: np.ndarray
    paths: Mapping[str, PathView] = field(default_factory=dict)


def contours_side_by_side(panels: Mapping[str, Panel], *, log: bool = False, label: str = "loss",
                          xlabel: str = "α (direction 1)", ylabel: str = "β (direction 2)") -> go.Figure:
    """One contour panel per surface, all on one shared colour scale, each with its own paths drawn."""
    names = list(panels)
    lo, hi = shared_range(*(p.values for p in panels.values()), log=log)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[f"{_zlabel(label, log)} around {n}" for n in names])
    seen: set[str] = set()
    for col, name in enumerate(names, start=1):
        p = panels[name]
        fig.add_trace(go.Contour(x=np.asarray(p.alpha), y=np.asarray(p.beta), z=_scale(p.values, log).T,
                                 coloraxis="coloraxis", contours=dict(showlabels=False), name=name), row=1, col=col)
        for trace in _path_traces(p.paths):
            trace.showlegend = trace.name not in seen
            seen.add(trace.name)
            fig.add_trace(trace, row=1, col=col)
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=lo, cmax=hi,
                                     colorbar=dict(title=_zlabel(label, log))),
                      title="One shared colour scale", height=460, legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    return fig


def surface_3d(alpha: np.ndarray, beta: np.ndarray, values: np.ndarray, *, paths: Mapping[str, PathView] | None = None,
               zrange: tuple[float, float] | None = None, log: bool = False, label: str = "loss",
               title: str = "loss surface") -> go.Figure:
    """3D surface of `values[i, j]` at (alpha[i], beta[j]); paths drawn at their surface (or real) loss."""
    lo, hi = zrange if zrange is not None else shared_range(values, log=log)
    fig = go.Figure(go.Surface(x=np.asarray(alpha), y=np.asarray(beta), z=_scale(values, log).T, cmin=lo, cmax=hi,
                               colorscale=SEQUENTIAL, colorbar=dict(title=_zlabel(label, log)), opacity=0.9))
    paths = paths or {}
    z_of = {}
    for name, p in paths.items():
        z = p.surface_loss if p.surface_loss is not None else p.real_loss
        z_of[name] = _scale(z if z is not None else np.full(len(p.a), lo), log)
    for trace in _path_traces(paths, z_of):
        fig.add_trace(trace)
    fig.update_layout(title=title, height=560, scene=dict(xaxis_title="α", yaxis_title="β",
                                                          zaxis_title=_zlabel(label, log)))
    return fig


def difference_contour(alpha: np.ndarray, beta: np.ndarray, first: np.ndarray, second: np.ndarray, *,
                       names: tuple[str, str] = ("poisoned", "clean"), log: bool = False,
                       label: str = "loss") -> go.Figure:
    """Contour of first - second on the same grid, on a diverging scale centred at zero."""
    diff = _scale(first, log) - _scale(second, log)
    finite = np.abs(diff[np.isfinite(diff)])
    m = float(finite.max()) if finite.size else 1.0
    fig = go.Figure(go.Contour(x=np.asarray(alpha), y=np.asarray(beta), z=diff.T, zmin=-m, zmax=m, zmid=0,
                               colorscale=DIVERGING, colorbar=dict(title="difference")))
    label = _zlabel(label, log)
    fig.update_layout(title=f"Difference: {label}({names[0]}) − {label}({names[1]})", xaxis_title="α (direction 1)",
                      yaxis_title="β (direction 2)", height=460)
    return fig


def explained_variance(ratios: Mapping[str, Sequence[float]]) -> go.Figure:
    """Explained-variance ratio of the PCA components, one group of bars per trajectory/plane."""
    fig = go.Figure()
    names = list(ratios)
    for name, r in ratios.items():
        r = np.asarray(r, dtype=float)
        fig.add_trace(go.Bar(x=[f"PC{i + 1}" for i in range(len(r))], y=r, name=name,
                             marker_color=color_of(name, names), text=[f"{v:.1%}" for v in r], textposition="outside"))
    fig.update_layout(title="PCA explained variance of the trajectory (how much of the path the plane keeps)",
                      yaxis=dict(title="fraction of variance", range=[0, 1.1], tickformat=".0%"), barmode="group",
                      height=340)
    return fig


def path_fidelity(paths: Mapping[str, PathView]) -> go.Figure:
    """Left: off-plane residual per checkpoint; right: real checkpoint loss vs the surface value at its projection."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("off-plane residual ‖θ_t − proj(θ_t)‖",
                                                        "real loss (solid) vs surface at projection (dotted)"))
    names = list(paths)
    for name, p in paths.items():
        color = color_of(name, names)
        if p.residual is not None:
            fig.add_trace(go.Scatter(x=p.epochs, y=p.residual, mode="lines+markers", name=f"{name} residual",
                                     line=dict(color=color)), row=1, col=1)
        if p.real_loss is not None:
            fig.add_trace(go.Scatter(x=p.epochs, y=p.real_loss, mode="lines+markers", name=f"{name} real loss",
                                     line=dict(color=color)), row=1, col=2)
        if p.surface_loss is not None:
            fig.add_trace(go.Scatter(x=p.epochs, y=p.surface_loss, mode="lines", name=f"{name} surface loss",
                                     line=dict(color=color, dash="dot")), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="How faithful is the plane? (large residual = the path leaves the plane)", height=360)
    return fig


def trajectory_matrix(checkpoints: Sequence[Mapping[str, object]]) -> tuple[np.ndarray, list[str]]:
    """Every floating parameter's value at every checkpoint, (T, P), and a name per column ("0.weight[3, 7]").

    BatchNorm running statistics are left out (they are buffers, not learned weights).
    """
    first = checkpoints[0]
    keys = [k for k, v in first.items() if np.asarray(v).dtype.kind == "f" and "running_" not in k]
    columns, names = [], []
    for k in keys:
        shape = np.shape(first[k])
        columns.append(np.stack([np.asarray(c[k], dtype=np.float64).ravel() for c in checkpoints]))  # (T, numel)
        names += [f"{k}{list(np.unravel_index(i, shape)) if shape else ''}" for i in range(int(np.prod(shape)))]
    return np.concatenate(columns, axis=1), names


def diverging_parameters(clean: np.ndarray, poisoned: np.ndarray, top_k: int) -> np.ndarray:
    """Indices of the `top_k` parameters whose clean and poisoned values differ most at the last epoch."""
    gap = np.abs(np.asarray(clean)[-1] - np.asarray(poisoned)[-1])
    return np.argsort(-gap, kind="stable")[:top_k]


def parameter_paths(epochs: np.ndarray, clean: np.ndarray, poisoned: np.ndarray, names: Sequence[str], *,
                    top_k: int = 6, poisoned_name: str = "poisoned", max_background: int = 300) -> go.Figure:
    """Each weight's value over epochs, clean (left) vs poisoned (right); the most diverging ones highlighted.

    Args:
        epochs: checkpoint epochs (T,).
        clean: parameter values of the clean run (T, P).
        poisoned: parameter values of the poisoned run (T, P).
        names: a name per parameter (P,).
        top_k: how many of the most diverging parameters to highlight (largest final |clean − poisoned|).
        poisoned_name: label of the poisoned run.
        max_background: grey background weights drawn at most (evenly spaced over the rest; all if fewer).
    """
    clean, poisoned = np.asarray(clean, dtype=float), np.asarray(poisoned, dtype=float)
    top = set(diverging_parameters(clean, poisoned, top_k).tolist())
    others = [p for p in range(clean.shape[1]) if p not in top]
    if len(others) > max_background:
        others = [others[i] for i in np.linspace(0, len(others) - 1, max_background).round().astype(int)]
    shown = len(others)
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, subplot_titles=(CLEAN, poisoned_name))
    for col, values in ((1, clean), (2, poisoned)):
        # The background weights in one trace (NaN-separated) keep the figure light for thousands of weights.
        rest = others
        if rest:
            xs = np.concatenate([np.append(epochs, np.nan) for _ in rest])
            ys = np.concatenate([np.append(values[:, p], np.nan) for p in rest])
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="rgba(150,150,150,0.25)", width=1),
                                     name=f"other weights ({shown} of {clean.shape[1] - len(top)})",
                                     showlegend=col == 1, hoverinfo="skip"), row=1, col=col)
        for rank, p in enumerate(sorted(top, key=lambda q: -abs(clean[-1, q] - poisoned[-1, q]))):
            fig.add_trace(go.Scatter(x=epochs, y=values[:, p], mode="lines", name=names[p],
                                     line=dict(color=_PALETTE[rank % len(_PALETTE)], width=2.5),
                                     legendgroup=names[p], showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(title_text="weight value", row=1, col=1)
    fig.update_layout(title=f"Parameter paths: the {len(top)} weights that end furthest apart are coloured",
                      height=440)
    return fig


# ---------------------------------------------------------------------------------------------------- SAL and UD


def sal_heatmaps(runs: Mapping[str, np.ndarray], layers: Sequence[str], epochs: np.ndarray, *,
                 log: bool = False, title: str = "SAL per layer and epoch", label: str = "SAL") -> go.Figure:
    """Layer x epoch heatmaps, one panel per run, on one shared colour scale (SAL, or any per-layer value).

    Args:
        runs: run name -> values indexed (epoch, layer), shape (T, L).
        layers: layer names (L,), shown top to bottom in forward order.
        epochs: epoch numbers (T,).
        log: colour by log10 of the value (non-positive values become blank).
        title: figure title.
        label: the value's name in the colour bar and hover text (e.g. "λ_max" or "trace" for curvature).
    """
    names = list(runs)
    lo, hi = shared_range(*runs.values(), log=log)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True, horizontal_spacing=0.04)
    for col, name in enumerate(names, start=1):
        fig.add_trace(go.Heatmap(z=_scale(runs[name], log).T, x=np.asarray(epochs), y=list(layers),
                                 coloraxis="coloraxis", name=name,
                                 hovertemplate=f"epoch %{{x}}<br>%{{y}}<br>{label} %{{z:.4g}}<extra></extra>"),
                      row=1, col=col)
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=lo, cmax=hi, colorbar=dict(title=_zlabel(label, log))),
                      title=title, height=140 + 28 * max(len(layers), 4))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="epoch")
    return fig


def spectral_density(densities: Mapping[str, tuple[np.ndarray, np.ndarray]], *, log: bool = True,
                     title: str = "Hessian eigenvalue density") -> go.Figure:
    """Smoothed spectral densities (stochastic Lanczos quadrature, `BlockCurvature.density`), one curve per name.

    Args:
        densities: name -> (grid (n,), density (n,)).
        log: log10 density axis (PyHessian's ESD plot); values below 1e-12 are clipped so the tails show.
        title: figure title.
    """
    fig = go.Figure()
    names = list(densities)
    for name, (grid, dens) in densities.items():
        y = np.log10(np.clip(np.asarray(dens, dtype=float), 1e-12, None)) if log else np.asarray(dens)
        fig.add_trace(go.Scatter(x=np.asarray(grid), y=y, mode="lines", name=name,
                                 line=dict(color=color_of(name, names))))
    fig.update_layout(title=title, xaxis_title="eigenvalue", yaxis_title=_zlabel("density", log), height=380)
    return fig


def mark_sal_ball(fig: go.Figure, radii: Sequence[float], *, center: tuple[float, float] = (0.0, 0.0)) -> go.Figure:
    """Mark SAL's ball on a layer slice (`Plane.info["sal_ball"]`); returns `fig`, changed in place.

    A 1D slice gets two vertical lines at +-r, a 2D contour the ellipse with semi-axes (r1, r2).
    """
    style = dict(color="black", dash="dash", width=1)
    if len(radii) == 1:
        for x in (center[0] - radii[0], center[0] + radii[0]):
            fig.add_vline(x=float(x), line=style)
        fig.add_annotation(x=center[0] + radii[0], y=1, yref="paper", text="SAL ball", showarrow=False,
                           xanchor="left")
        return fig
    (ra, rb), (a, b) = radii, center
    fig.add_shape(type="circle", xref="x", yref="y", x0=a - ra, x1=a + ra, y0=b - rb, y1=b + rb, line=style)
    return fig


def sal_distributions(runs: Mapping[str, np.ndarray], beta: float | None, *, log: bool = False) -> go.Figure:
    """Histogram of all SAL values (every layer, every epoch) per run, with the learnable threshold β."""
    fig = go.Figure()
    names = list(runs)
    for name, v in runs.items():
        v = _scale(np.asarray(v, dtype=float).ravel(), log)
        fig.add_trace(go.Histogram(x=v[np.isfinite(v)], name=name, opacity=0.6, marker_color=color_of(name, names),
                                   nbinsx=40))
    if beta is not None and (not log or beta > 0):
        x = float(np.log10(beta)) if log else float(beta)
        fig.add_vline(x=x, line=dict(color="black", dash="dash"), annotation_text=f"β = {beta:.4g}",
                      annotation_position="top right")
    fig.update_layout(barmode="overlay", title="SAL distribution (right of β = learnable)",
                      xaxis_title=_zlabel("SAL", log), yaxis_title="layer-epochs", height=380)
    return fig


def learnable_layers(runs: Mapping[str, np.ndarray], layers: Sequence[str], epochs: np.ndarray) -> go.Figure:
    """Which layers are learnable (SAL > β) at each epoch, one panel per run; masks indexed (epoch, layer)."""
    names = list(runs)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, shared_yaxes=True, horizontal_spacing=0.04)
    for col, name in enumerate(names, start=1):
        mask = np.asarray(runs[name], dtype=float)
        fig.add_trace(go.Heatmap(z=mask.T, x=np.asarray(epochs), y=list(layers), zmin=0, zmax=1, showscale=False,
                                 colorscale=[[0, "#eeeeee"], [1, "#2ca02c"]], xgap=1, ygap=1,
                                 hovertemplate="epoch %{x}<br>%{y}<br>learnable %{z}<extra></extra>"),
                      row=1, col=col)
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title="Learnable layers per epoch (green: SAL > β)", height=140 + 28 * max(len(layers), 4))
    return fig


def ud_counts(runs: Mapping[str, tuple[np.ndarray, np.ndarray]], n_layers: int, *,
              lp: Mapping[str, float] | None = None) -> go.Figure:
    """#learnable layers per epoch, one line per run; the dotted line is each run's #LP.

    Args:
        runs: run name -> (epochs (T,), counts (T,)); NaN counts (epochs left out) are gaps.
        n_layers: the number of layers SAL measures (the y-axis ceiling).
        lp: run name -> #LP as the engine computed it (default: the mean of the finite counts).
    """
    fig = go.Figure()
    names = list(runs)
    symbols = ("circle", "square", "diamond", "triangle-up")
    for i, (name, (epochs, counts)) in enumerate(runs.items()):
        color = color_of(name, names)
        counts = np.asarray(counts, dtype=float)
        mean = float(lp[name]) if lp is not None and name in lp else float(np.nanmean(counts))
        # Runs often share counts: later runs are dashed with other markers so both stay visible.
        fig.add_trace(go.Scatter(x=epochs, y=counts, mode="lines+markers", name=name,
                                 line=dict(color=color, dash="solid" if i == 0 else "dash", width=3 if i == 0 else 2),
                                 marker=dict(symbol=symbols[i % len(symbols)], size=9 if i == 0 else 7)))
        fig.add_hline(y=mean, line=dict(color=color, dash="dot"), annotation_text=f"#LP({name}) = {mean:.3g}",
                      annotation_position="top left" if i % 2 == 0 else "bottom right",
                      annotation_font_color=color)
    fig.update_layout(title="Learnable layers per epoch (UD = #LP(poisoned) / #LP(clean))",
                      xaxis=dict(title="epoch", tickformat="d"),
                      yaxis=dict(title="# layers with SAL > β", range=[-0.2, n_layers + 0.5]), height=380)
    return fig


def ud_bars(scores: Mapping[str, float]) -> go.Figure:
    """UD per method as bars, with the clean reference at 1 (lower = more unlearnable)."""
    names = list(scores)
    values = [float(scores[n]) for n in names]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=[color_of(n, names) for n in names],
                           text=[f"{v:.3f}" for v in values], textposition="outside"))
    fig.add_hline(y=1.0, line=dict(color="black", dash="dash"), annotation_text="clean = 1")
    fig.update_layout(title="Unlearnable Distance per method (lower = more unlearnable)", yaxis_title="UD",
                      height=360)
    return fig


# ---------------------------------------------------------------------------------------------------- cross-task


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
        fig.add_trace(go.Bar(x=[f"{t} ({metric[t]})" for t in tasks], y=[by_task.get(t, np.nan) for t in tasks],
                             name=m, marker_color=color_of(m, methods),
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
    fig = make_subplots(rows=1, cols=max(len(tasks), 1), subplot_titles=[f"{t}: {metrics[t]}" for t in tasks],
                        horizontal_spacing=0.06)
    conditions = list(dict.fromkeys(c for t in tasks for c in curves[t]))
    for col, task in enumerate(tasks, start=1):
        for cond, y in curves[task].items():
            y = np.asarray(y, dtype=float)
            fig.add_trace(go.Scatter(x=np.arange(1, len(y) + 1), y=y, mode="lines", name=cond, legendgroup=cond,
                                     line=dict(color=color_of(cond, conditions)), showlegend=col == 1),
                          row=1, col=col)
        fig.update_yaxes(title_text=metrics[task], row=1, col=col)
    fig.update_xaxes(title_text="epoch")
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
