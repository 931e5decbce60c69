"""Loss-landscape figures: 1D slices, contours, 3D surfaces, projected optimisation paths, parameter paths."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.figures.style import (
    CLEAN,
    DIVERGING,
    PALETTE,
    SEQUENTIAL,
    color_of,
    epoch_axis,
    last_epoch,
    scaled,
    shared_range,
    zlabel,
)

if TYPE_CHECKING:
    from landscape.surface_results import Surface


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
    """The projected paths of a `Surface` as `PathView`s (surface value = loss or accuracy)."""
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
    for name, y in curves.items():
        fig.add_trace(go.Scatter(x=np.asarray(coords), y=scaled(y, log), mode="lines", name=name,
                                 line=dict(color=color_of(name))))
    for name, x in (markers or {}).items():
        fig.add_vline(x=float(x), line=dict(color=color_of(name), dash="dot"),
                      annotation_text=name, annotation_position="top")
    fig.update_layout(title=f"1D slice: {zlabel(ylabel, log)}", xaxis_title=xlabel, yaxis_title=zlabel(ylabel, log),
                      height=380)
    return fig


def _path_traces(paths: Mapping[str, PathView], z_of: Mapping[str, np.ndarray] | None = None) -> list[go.Scatter]:
    traces = []
    for name, p in paths.items():
        color = color_of(name)
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
    z = scaled(values, log).T  # plotly: rows = y = beta, columns = x = alpha
    lo, hi = zrange if zrange is not None else shared_range(values, log=log)
    fig = go.Figure(go.Contour(x=np.asarray(alpha), y=np.asarray(beta), z=z, zmin=lo, zmax=hi, colorscale=SEQUENTIAL,
                               contours=dict(showlabels=True), colorbar=dict(title=zlabel(label, log)),
                               name=title))
    for trace in _path_traces(paths or {}):
        fig.add_trace(trace)
    for name, (a, b) in (markers or {}).items():
        fig.add_trace(go.Scatter(x=[a], y=[b], mode="markers+text", text=[name], textposition="top center",
                                 marker=dict(symbol="star", size=14, color=color_of(name),
                                             line=dict(color="white", width=1)), name=name))
    # The legend goes below the α title: at y=-0.15 (45 px under a 300 px plot) it covered the title as soon as the
    # anchors' stars made it wide (the clean ↔ poisoned plane).
    fig.update_layout(title=title, xaxis_title=xlabel, yaxis_title=ylabel, height=480,
                      legend=dict(orientation="h", y=-0.22, yanchor="top"))
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
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=[f"{zlabel(label, log)} around {n}" for n in names])
    seen: set[str] = set()
    for col, name in enumerate(names, start=1):
        p = panels[name]
        fig.add_trace(go.Contour(x=np.asarray(p.alpha), y=np.asarray(p.beta), z=scaled(p.values, log).T,
                                 coloraxis="coloraxis", contours=dict(showlabels=False), name=name), row=1, col=col)
        for trace in _path_traces(p.paths):
            trace.showlegend = trace.name not in seen
            seen.add(trace.name)
            fig.add_trace(trace, row=1, col=col)
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=lo, cmax=hi,
                                     colorbar=dict(title=zlabel(label, log))),
                      title="One shared colour scale", height=460, legend=dict(orientation="h", y=-0.2))
    fig.update_xaxes(title_text=xlabel)
    fig.update_yaxes(title_text=ylabel, row=1, col=1)
    return fig


def surface_3d(alpha: np.ndarray, beta: np.ndarray, values: np.ndarray, *, paths: Mapping[str, PathView] | None = None,
               zrange: tuple[float, float] | None = None, log: bool = False, label: str = "loss",
               title: str = "loss surface") -> go.Figure:
    """3D surface of `values[i, j]` at (alpha[i], beta[j]); paths drawn at their surface (or real) loss."""
    lo, hi = zrange if zrange is not None else shared_range(values, log=log)
    fig = go.Figure(go.Surface(x=np.asarray(alpha), y=np.asarray(beta), z=scaled(values, log).T, cmin=lo, cmax=hi,
                               colorscale=SEQUENTIAL, colorbar=dict(title=zlabel(label, log)), opacity=0.9))
    paths = paths or {}
    z_of = {}
    for name, p in paths.items():
        z = p.surface_loss if p.surface_loss is not None else p.real_loss
        z_of[name] = scaled(z if z is not None else np.full(len(p.a), lo), log)
    for trace in _path_traces(paths, z_of):
        fig.add_trace(trace)
    # Legend below the scene, not at the right where the colour bar and its title sit; the camera a little further
    # out than Plotly's (1.25, 1.25, 1.25), so the α and β tick labels are not clipped at the scene's bottom.
    fig.update_layout(title=title, height=560, legend=dict(orientation="h", y=0, yanchor="top"),
                      scene=dict(xaxis_title="α", yaxis_title="β", zaxis_title=zlabel(label, log),
                                 camera=dict(eye=dict(x=1.45, y=1.45, z=1.2))))
    return fig


def difference_contour(alpha: np.ndarray, beta: np.ndarray, first: np.ndarray, second: np.ndarray, *,
                       names: tuple[str, str] = ("poisoned", "clean"), log: bool = False,
                       label: str = "loss") -> go.Figure:
    """Contour of first - second on the same grid, on a diverging scale centred at zero."""
    diff = scaled(first, log) - scaled(second, log)
    finite = np.abs(diff[np.isfinite(diff)])
    m = float(finite.max()) if finite.size else 1.0
    fig = go.Figure(go.Contour(x=np.asarray(alpha), y=np.asarray(beta), z=diff.T, zmin=-m, zmax=m, zmid=0,
                               colorscale=DIVERGING, colorbar=dict(title="difference")))
    label = zlabel(label, log)
    fig.update_layout(title=f"Difference: {label}({names[0]}) − {label}({names[1]})", xaxis_title="α (direction 1)",
                      yaxis_title="β (direction 2)", height=460)
    return fig


def explained_variance(ratios: Mapping[str, Sequence[float]]) -> go.Figure:
    """Explained-variance ratio of the PCA components, one group of bars per trajectory/plane."""
    fig = go.Figure()
    for name, r in ratios.items():
        r = np.asarray(r, dtype=float)
        fig.add_trace(go.Bar(x=[f"PC{i + 1}" for i in range(len(r))], y=r, name=name,
                             marker_color=color_of(name), text=[f"{v:.1%}" for v in r], textposition="outside"))
    fig.update_layout(title="PCA explained variance of the trajectory (how much of the path the plane keeps)",
                      yaxis=dict(title="fraction of variance", range=[0, 1.1], tickformat=".0%"), barmode="group",
                      height=340)
    return fig


def path_fidelity(paths: Mapping[str, PathView], *, label: str = "loss") -> go.Figure:
    """Left: off-plane residual per checkpoint; right: the checkpoint's real value vs the surface at its projection.

    `label` names the value (loss or accuracy: whichever `PathView.real_loss` and `surface_loss` hold).
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("off-plane residual ‖θ_t − proj(θ_t)‖",
                                                        f"real {label} (solid) vs surface at projection (dotted)"))
    runs = [n.split(":")[0] for n in paths]  # "clean: clean" (the clean path on the plane around clean) is clean's
    for (name, p), run in zip(paths.items(), runs, strict=True):
        color = color_of(run)
        if p.residual is not None:
            fig.add_trace(go.Scatter(x=p.epochs, y=p.residual, mode="lines+markers", name=f"{name} residual",
                                     line=dict(color=color), marker=dict(symbol="square")), row=1, col=1)
        if p.real_loss is not None:
            fig.add_trace(go.Scatter(x=p.epochs, y=p.real_loss, mode="lines+markers", name=f"{name} real {label}",
                                     line=dict(color=color)), row=1, col=2)
        if p.surface_loss is not None:
            fig.add_trace(go.Scatter(x=p.epochs, y=p.surface_loss, mode="lines", name=f"{name} surface {label}",
                                     line=dict(color=color, dash="dot")), row=1, col=2)
    fig.update_xaxes(**epoch_axis(last_epoch(*(p.epochs for p in paths.values()))))
    fig.update_yaxes(title_text="distance in weight space", row=1, col=1)
    fig.update_yaxes(title_text=label, row=1, col=2)
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
        if not shape:
            names.append(k)
            continue
        index = np.stack(np.unravel_index(np.arange(int(np.prod(shape))), shape), axis=1).tolist()  # (numel, ndim)
        names += [f"{k}{position}" for position in index]  # Python ints: "0.weight[3, 7]"
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
                                     line=dict(color=PALETTE[rank % len(PALETTE)], width=2.5),
                                     legendgroup=names[p], showlegend=col == 1), row=1, col=col)
    fig.update_xaxes(**epoch_axis(last_epoch(epochs)))
    fig.update_yaxes(title_text="weight value", row=1, col=1)
    fig.update_layout(title=f"Parameter paths: the {len(top)} weights that end furthest apart are coloured",
                      height=440)
    return fig
