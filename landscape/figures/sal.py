"""SAL and UD figures: per-layer heatmaps, distributions, learnable layers, UD counts and bars, spectral density."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.figures.style import SEQUENTIAL, color_of, epoch_axis, last_epoch, scaled, shared_range, zlabel

HEATMAP_MARGINS = 180  # Plotly's default top (100) and bottom (80) margins: title, subplot titles, epoch axis
HEATMAP_MIN_ROWS = 8  # rows' worth of plot height at least: a 6-layer heatmap's colour bar was ~50 px, its ticks
#                       overlapping at 1280 px wide


def heatmap_height(rows: int, *, row_px: int = 28, max_plot_px: int | None = None) -> int:
    """Figure height of a layer (or channel) x epoch heatmap with `rows` rows.

    `row_px` per row, at least `HEATMAP_MIN_ROWS` rows' worth (so the colour bar beside it has room for its ticks),
    at most `max_plot_px` of plot area.
    """
    plot = row_px * max(rows, HEATMAP_MIN_ROWS)
    return HEATMAP_MARGINS + (plot if max_plot_px is None else min(plot, max_plot_px))


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
        fig.add_trace(go.Heatmap(z=scaled(runs[name], log).T, x=np.asarray(epochs), y=list(layers),
                                 coloraxis="coloraxis", name=name,
                                 hovertemplate=f"epoch %{{x}}<br>%{{y}}<br>{label} %{{z:.4g}}<extra></extra>"),
                      row=1, col=col)
    fig.update_layout(coloraxis=dict(colorscale=SEQUENTIAL, cmin=lo, cmax=hi,
                                     colorbar=dict(title=dict(text=zlabel(label, log), side="right"))),
                      title=title, height=heatmap_height(len(layers)))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(**epoch_axis(last_epoch(epochs)))
    return fig


def channel_heatmaps(runs: Mapping[str, np.ndarray], layer: str, epochs: np.ndarray, *, log: bool = False,
                     label: str = "SAL") -> go.Figure:
    """Channel x epoch heatmaps of one layer, one panel per run, on one shared colour scale (per-channel SAL).

    Row c is output channel c of `layer` (a filter or a neuron), channel 0 on top; the panels are `sal_heatmaps`
    with the channels as rows, their height bounded so a wide layer stays on screen.

    Args:
        runs: run name -> values indexed (epoch, channel), shape (T, C), the same C for every run.
        layer: the layer's name, for the title and the channel axis.
        epochs: epoch numbers (T,).
        log: colour by log10 of the value (non-positive values become blank).
        label: the value's name in the title, colour bar and hover text.
    """
    shapes = {name: np.shape(v) for name, v in runs.items()}
    if not runs or len({s[1:] for s in shapes.values()}) != 1 or len(next(iter(shapes.values()))) != 2:
        raise ValueError(f"channel_heatmaps needs (epoch, channel) arrays with the same channels per run; got {shapes}")
    n = next(iter(shapes.values()))[1]
    fig = sal_heatmaps(runs, list(range(n)), epochs, log=log, label=label,
                       title=f"{label} per output channel of {layer} and epoch (one colour scale)")
    fig.update_traces(hovertemplate=f"epoch %{{x}}<br>channel %{{y}}<br>{label} %{{z:.4g}}<extra></extra>")
    fig.update_yaxes(title_text=f"output channel of {layer}", col=1)
    fig.update_layout(height=heatmap_height(n, max_plot_px=520))
    return fig


def spectral_density(densities: Mapping[str, tuple[np.ndarray, np.ndarray]], *, log: bool = True,
                     title: str = "Hessian eigenvalue density") -> go.Figure:
    """Smoothed spectral densities (stochastic Lanczos quadrature, `BlockCurvature.density`), one curve per name.

    Args:
        densities: name (a run, or "run: block", e.g. "clean: whole model") -> (grid (n,), density (n,)); a curve
            takes its run's colour.
        log: log10 density axis (PyHessian's ESD plot); values below 1e-12 are clipped so the tails show.
        title: figure title.
    """
    fig = go.Figure()
    runs = [name.split(":")[0] for name in densities]
    for (name, (grid, dens)), run in zip(densities.items(), runs, strict=True):
        y = np.log10(np.clip(np.asarray(dens, dtype=float), 1e-12, None)) if log else np.asarray(dens)
        fig.add_trace(go.Scatter(x=np.asarray(grid), y=y, mode="lines", name=name,
                                 line=dict(color=color_of(run))))
    fig.update_layout(title=title, xaxis_title="eigenvalue", yaxis_title=zlabel("density", log), height=380)
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
    for name, v in runs.items():
        v = scaled(np.asarray(v, dtype=float).ravel(), log)
        fig.add_trace(go.Histogram(x=v[np.isfinite(v)], name=name, opacity=0.6, marker_color=color_of(name),
                                   nbinsx=40))
    if beta is not None and (not log or beta > 0):
        x = float(np.log10(beta)) if log else float(beta)
        fig.add_vline(x=x, line=dict(color="black", dash="dash"), annotation_text=f"β = {beta:.4g}",
                      annotation_position="top right")
    fig.update_layout(barmode="overlay", title="SAL distribution (right of β = learnable)",
                      xaxis_title=zlabel("SAL", log), yaxis_title="layer-epochs", height=380)
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
    fig.update_xaxes(**epoch_axis(last_epoch(epochs)))
    fig.update_layout(title="Learnable layers per epoch (green: SAL > β)", height=heatmap_height(len(layers)))
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
    symbols = ("circle", "square", "diamond", "triangle-up")
    for i, (name, (epochs, counts)) in enumerate(runs.items()):
        color = color_of(name)
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
                      xaxis=epoch_axis(last_epoch(*(e for e, _ in runs.values()))),
                      yaxis=dict(title="# layers with SAL > β", range=[-0.2, n_layers + 0.5]), height=380)
    return fig


def ud_bars(scores: Mapping[str, float]) -> go.Figure:
    """UD per method as bars, with the clean reference at 1 (lower = more unlearnable)."""
    names = list(scores)
    values = [float(scores[n]) for n in names]
    fig = go.Figure(go.Bar(x=names, y=values, marker_color=[color_of(n) for n in names],
                           text=[f"{v:.3f}" for v in values], textposition="outside"))
    fig.add_hline(y=1.0, line=dict(color="black", dash="dash"), annotation_text="clean = 1")
    fig.update_layout(title="Unlearnable Distance per method (lower = more unlearnable)", yaxis_title="UD",
                      height=360)
    return fig
