"""Curvature and layer-slice figures: λ_max / trace heatmaps, ESD, SAL-vs-curvature rank agreement, layer slices.

`curvature_figures` and `layer_slice_figures` assemble the figures the CLI writes, the app shows and the Python
API returns, from the engine's result objects (`CurvatureTrace`, `SALTrace`, a layer `SurfaceSet`); the other
builders take plain arrays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from landscape.figures.sal import mark_sal_ball, sal_heatmaps, spectral_density
from landscape.figures.style import color_of, epoch_axis, last_epoch
from landscape.figures.surfaces import contour

if TYPE_CHECKING:
    from landscape.curvature import CurvatureTrace
    from landscape.sal import SALTrace
    from landscape.surface_results import SurfaceSet


def rank_agreement(series: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
                   title: str = "Spearman rank agreement across layers, per epoch") -> go.Figure:
    """Per-epoch Spearman correlation between two per-layer tables (e.g. SAL and λ_max), one line per name.

    Args:
        series: name (e.g. "clean: SAL vs λ_max") -> (epochs (T,), rho (T,)); NaN (no ranking) leaves a gap.
        title: figure title.
    """
    fig = go.Figure()
    for name, (epochs, rho) in series.items():
        run = name.split(":")[0]
        dash = "dot" if "trace" in name else "solid"
        fig.add_trace(go.Scatter(x=np.asarray(epochs), y=np.asarray(rho, dtype=float), mode="lines+markers",
                                 name=name, line=dict(color=color_of(run),
                                                      dash=dash)))
    fig.add_hline(y=0.0, line=dict(color="grey", width=1))
    fig.update_layout(title=title, xaxis=epoch_axis(last_epoch(*(e for e, _ in series.values()))),
                      yaxis_title="Spearman ρ", yaxis_range=[-1.05, 1.05], height=360)
    return fig


def selectable_cells(fig: go.Figure, runs: Mapping[str, np.ndarray], layers: Sequence[str], epochs: np.ndarray, *,
                     label: str = "SAL") -> go.Figure:
    """Make every cell of layer x epoch heatmap panels (`sal_heatmaps`, one panel per run) clickable.

    Plotly's selection events carry no data for heatmap traces (streamlit#8760, plotly.js#7920), so each panel gets
    a transparent marker on every cell centre, whose `customdata` is [run, layer, epoch]; a click selects that
    marker and the app reads the cell from it. The markers carry the hover text (the value, as the heatmap's).
    Returns `fig`, changed in place.

    Args:
        fig: the heatmap figure, panel i (1-based column) showing the i-th run of `runs`.
        runs: run name -> its values (T, L), in column order.
        layers: the y values (L,).
        epochs: the x values (T,).
        label: the value's name in the hover text.
    """
    ee, ll = np.meshgrid(np.asarray(epochs), np.arange(len(layers)), indexing="ij")  # (T, L)
    names = [layers[j] for j in ll.ravel()]
    for col, (run, values) in enumerate(runs.items(), start=1):
        custom = [[run, name, int(e)] for name, e in zip(names, ee.ravel(), strict=True)]
        text = [f"{v:.4g}" for v in np.asarray(values, dtype=float).ravel()]  # (T, L) row-major, as the markers
        fig.add_trace(go.Scatter(x=ee.ravel(), y=names, mode="markers", customdata=custom, text=text,
                                 name=f"{run} cells", showlegend=False,
                                 marker=dict(size=14, symbol="square", color="rgba(0,0,0,0)"),
                                 hovertemplate=f"{run}, epoch %{{x}}<br>%{{y}}<br>{label} %{{text}}<extra></extra>"),
                      row=1, col=col)
    fig.update_traces(hoverinfo="skip", hovertemplate=None, selector=dict(type="heatmap"))
    fig.update_layout(clickmode="event+select", hovermode="closest")
    return fig


def layer_slice(alpha: np.ndarray, loss: Mapping[str, np.ndarray], acc: Mapping[str, np.ndarray],
                radii: Sequence[float], *, layer: str = "layer", epoch: int | None = None) -> go.Figure:
    """A layer's 1D slice, loss beside accuracy, one curve per run, SAL's ball |α| <= r shaded on both.

    Args:
        alpha: (A,) normalised coordinates along the layer's direction (the same for every run).
        loss: run -> (A,) loss along the slice.
        acc: run -> (A,) accuracy along the slice.
        radii: SAL's ball radius in slice coordinates (`Plane.info["sal_ball"]`; the first is used).
        layer: the layer's name, for the title.
        epoch: the sliced epoch, for the title.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=["loss", "accuracy"], horizontal_spacing=0.1)
    for col, values in ((1, loss), (2, acc)):
        for name, y in values.items():
            fig.add_trace(go.Scatter(x=np.asarray(alpha), y=np.asarray(y, dtype=float), mode="lines", name=name,
                                     legendgroup=name, showlegend=col == 1,
                                     line=dict(color=color_of(name))), row=1, col=col)
    r = float(radii[0])
    fig.add_vrect(x0=-r, x1=r, row="all", col="all", fillcolor="grey", opacity=0.15, line_width=0,
                  annotation_text="SAL ball", annotation_position="top left")
    at = f" at epoch {epoch}" if epoch is not None else ""
    fig.update_layout(title=f"1D slice along {layer}{at}", height=360)
    fig.update_xaxes(title_text="α (filter-normalised layer direction)")
    return fig


def curvature_figures(traces: Mapping[str, CurvatureTrace],
                      sal: Mapping[str, SALTrace] | None = None) -> list[go.Figure]:
    """λ_max and trace heatmaps (layers x epochs, runs side by side), SAL beside them, the rank agreement, the ESD.

    Args:
        traces: run -> its `CurvatureTrace` (all measuring the same layers and epochs).
        sal: run -> its `SALTrace`; with it, the SAL heatmaps and the per-epoch Spearman agreement between SAL and
            λ_max and between SAL and the trace (`landscape.curvature.sal_agreement`) are added.

    Returns:
        [λ_max heatmaps, trace heatmaps, (SAL heatmaps, rank agreement,) spectral densities at the last epoch of
        the whole model (or of the first layer when the whole model was not measured)].
    """
    from landscape.curvature import WHOLE, sal_agreement

    first = next(iter(traces.values()))
    out = [sal_heatmaps({k: t.lambda_max for k, t in traces.items()}, first.layers, first.epochs, log=True,
                        title="λ_max per layer and epoch", label="λ_max"),
           sal_heatmaps({k: t.trace for k, t in traces.items()}, first.layers, first.epochs, log=True,
                        title="Hessian trace per layer and epoch", label="trace")]
    if sal:
        s = next(iter(sal.values()))
        out.append(sal_heatmaps({k: v.sal for k, v in sal.items()}, list(s.layers), s.epochs))
        out.append(rank_agreement({f"{k}: SAL vs {name}": sal_agreement(sal[k], t, what)
                                   for k, t in traces.items() if k in sal
                                   for what, name in (("lambda_max", "λ_max"), ("trace", "trace"))}))
    densities = {}
    for label, t in traces.items():
        state = t.states[-1]
        name, block = (WHOLE, state.whole) if state.whole is not None else next(iter(state.layers.items()))
        densities[f"{label}: {name}"] = block.density()
    out.append(spectral_density(densities, title=f"Hessian eigenvalue density at epoch {int(first.epochs[-1])}"))
    return out


def layer_slice_figures(result: SurfaceSet) -> list[go.Figure]:
    """The figures of a layer `SurfaceSet` (`landscape.layer_slices`), SAL's ball marked on each.

    1D: one figure, loss beside accuracy, every run on the shared coordinates (`layer_slice`). 2D: per run, a loss
    contour and an accuracy contour with the ball's ellipse.
    """
    labels = list(result.surfaces)
    first = result[labels[0]]
    layer, radii = ", ".join(first.info["layers"]), first.info["sal_ball"]
    if first.ndim == 1:
        return [layer_slice(first.alpha, {k: result[k].loss[:, 0] for k in labels},
                            {k: result[k].acc[:, 0] for k in labels}, radii, layer=layer,
                            epoch=first.info.get("epoch"))]
    out = []
    xlabel, ylabel = (f"{axis} (direction {i + 1} of {layer})" for i, axis in enumerate("αβ"))
    for k in labels:
        s = result[k]
        for values, name in ((s.loss, "loss"), (s.acc, "accuracy")):
            f = contour(s.alpha, s.beta, values, markers=s.anchors, label=name, xlabel=xlabel, ylabel=ylabel,
                        title=f"{name} around {k} at epoch {s.info.get('epoch')}: {layer}")
            out.append(mark_sal_ball(f, s.info["sal_ball"]))
    return out


__all__ = ["curvature_figures", "layer_slice", "layer_slice_figures", "rank_agreement", "selectable_cells"]
