"""What the Curvature page and the SAL page's cell link draw: curvature per layer and epoch, a layer's slice.

The layer is the unit of every view (issue #13): the Curvature page shows λ_max and the trace of each layer's
Hessian block (`landscape.curvature`) beside SAL for both runs, their per-epoch rank agreement and the spectral
density; on the SAL page a selected heatmap cell (layer, epoch) opens that layer's 1D slice at that epoch
(`landscape.layer_slices`), clean beside poisoned, with its SAL, λ_max and trace. Everything is asked of the stage
layer (`CurvatureStage`, `LayerSliceStage`), so a result computed by the CLI or another session is served here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from landscape import figures
from landscape.app import engine, widgets
from landscape.app.state import AppSpec, keep, persisted
from landscape.config import CurvatureSpec, LayerSliceSpec, PoisonSpec
from landscape.errors import LandscapeError
from landscape.spec import plural

# The app's curvature settings: the engine's defaults (512 training images of each run, Lanczos to 1e-3, 8 probes,
# the whole model too), measured at every epoch so that any SAL cell has its λ_max and trace.
APP_CURVATURE = CurvatureSpec()


@dataclass(frozen=True)
class Cell:
    """A selected cell of a layer x epoch heatmap: the run whose panel was clicked, the layer and the epoch."""

    run: str
    layer: str
    epoch: int


def selected_cell(event: Any) -> Cell | None:
    """The cell of a Plotly selection event on a `figures.selectable_cells` heatmap (None if no cell is selected).

    The event is what `st.plotly_chart(..., on_select="rerun")` returns: `event.selection.points`, each point a
    dict whose "customdata" is [run, layer, epoch] on a cell marker (other traces carry none).
    """
    selection = getattr(event, "selection", None) if not isinstance(event, Mapping) else event.get("selection")
    points = (selection.get("points") if isinstance(selection, Mapping) else getattr(selection, "points", None)) or []
    for point in points:
        custom = point.get("customdata") if isinstance(point, Mapping) else None
        if isinstance(custom, Sequence) and not isinstance(custom, str) and len(custom) == 3:
            return Cell(str(custom[0]), str(custom[1]), int(custom[2]))
    return None


def runs_of(spec: AppSpec) -> dict[str, PoisonSpec]:
    """The two runs of `spec`: "clean" and its poison (by method name)."""
    return {"clean": PoisonSpec(), spec.method: spec.poison()}


def _stage(make: Any) -> Any:
    try:
        return make()
    except LandscapeError:
        return None


def curvature_stages(spec: AppSpec) -> dict[str, Any]:
    from landscape.stages.curvature import CurvatureStage

    d, m, t = spec.data(), spec.model_spec(), spec.train()
    return {run: _stage(lambda p=p: CurvatureStage.of(d, m, t, p, APP_CURVATURE)) for run, p in runs_of(spec).items()}


def curvature_ready(spec: AppSpec) -> bool:
    """The curvature of both runs of `spec` is stored."""
    return all(s is not None and engine.stored(s) for s in curvature_stages(spec).values())


def curvature_traces(spec: AppSpec, progress: widgets.Progress | None = None) -> dict[str, Any]:
    """The engine's `CurvatureTrace` of both runs of `spec` by run label (trains the runs first if not stored)."""
    from landscape.experiment import get_curvature

    kwargs = {"progress": progress} if progress is not None else {}
    return {run: get_curvature(spec.data(), spec.model_spec(), spec.train(), p, APP_CURVATURE, store=engine.store(),
                               device=engine.device(), **kwargs) for run, p in runs_of(spec).items()}


@st.cache_data(max_entries=16, show_spinner=False)
def stored_curvature(spec: AppSpec) -> dict[str, Any]:
    """`curvature_traces(spec)` served from the store (computed without progress if absent)."""
    return curvature_traces(spec)


def slice_spec(layer: str, epoch: int) -> LayerSliceSpec:
    """The app's layer slice: 1D, 21 points over ten SAL radii either side, 1024 training images of each run."""
    return LayerSliceSpec(layers=(layer,), epoch=epoch)


def slice_stage(spec: AppSpec, layer: str, epoch: int) -> Any:
    """The stage of `layer_slices(spec, layer, epoch)` (None when its specs do not resolve)."""
    from landscape.stages.surface import LayerSliceStage

    return _stage(lambda: LayerSliceStage.of(spec.data(), spec.model_spec(), spec.train(), spec.poison(),
                                             slice_spec(layer, epoch)))


def slice_ready(spec: AppSpec, layer: str, epoch: int) -> bool:
    stage = slice_stage(spec, layer, epoch)
    return stage is not None and engine.stored(stage)


def layer_slices(spec: AppSpec, layer: str, epoch: int, progress: widgets.Progress | None = None) -> Any:
    """The engine's layer `SurfaceSet` of `layer` at `epoch`, clean and poisoned (trains the runs if needed)."""
    from landscape.experiment import get_layer_slices

    kwargs = {"progress": progress} if progress is not None else {}
    return get_layer_slices(spec.data(), spec.model_spec(), spec.train(), spec.poison(), slice_spec(layer, epoch),
                            store=engine.store(), device=engine.device(), **kwargs)


@st.cache_data(max_entries=64, show_spinner=False)
def stored_slices(spec: AppSpec, layer: str, epoch: int) -> Any:
    return layer_slices(spec, layer, epoch)


# ------------------------------------------------------------------------------------------------ SAL cell link


def _value_at(trace: Any, table: np.ndarray, layer: str, epoch: int) -> float | None:
    """table[epoch, layer] of a trace with `epochs` and `layers`, or None where it was not measured."""
    epochs, layers = [int(e) for e in trace.epochs], list(trace.layers)
    if epoch not in epochs or layer not in layers:
        return None
    return float(table[epochs.index(epoch), layers.index(layer)])


def cell_values(study: Any, curvature: Mapping[str, Any] | None, layer: str, epoch: int) -> list[dict[str, Any]]:
    """One row per run: SAL, λ_max, trace and its standard error of `layer` at `epoch` (None where not measured)."""
    rows = []
    for run, sal in study.sal.items():
        row: dict[str, Any] = {"run": run, "layer": layer, "epoch": epoch,
                               "SAL": _value_at(sal, sal.sal, layer, epoch)}
        c = (curvature or {}).get(run)
        for name, table in (("λ_max", "lambda_max"), ("trace", "trace"), ("trace s.e.", "trace_se")):
            row[name] = None if c is None else _value_at(c, getattr(c, table), layer, epoch)
        rows.append(row)
    return rows


def _fmt(value: float | None) -> str:
    return "not measured" if value is None else f"{value:.4g}"


def choose_cell(study: Any, method: str, event: Any) -> Cell:
    """The cell to open: a new click on the heatmap, else the layer and epoch pickers (which a click also moves).

    The choice is kept in the session (`sal_cell_layer`, `sal_cell_epoch`), so it survives leaving the page.
    """
    clean = study.sal["clean"]
    layers, epochs = list(clean.layers), [int(e) for e in clean.epochs]
    clicked = selected_cell(event)
    if clicked is not None and clicked != st.session_state.get("sal_cell_seen") and clicked.layer in layers \
            and clicked.epoch in epochs:  # a new click moves the pickers (a kept selection does not, on reruns)
        st.session_state["sal_cell_seen"] = clicked
        st.session_state["sal_cell_layer"], st.session_state["sal_cell_epoch"] = clicked.layer, clicked.epoch
    left, right = st.columns(2)
    layer = left.selectbox("Layer", layers, key=persisted("sal_cell_layer", layers[0], layers),
                           on_change=keep, args=("sal_cell_layer",))
    epoch = right.selectbox("Epoch", epochs, key=persisted("sal_cell_epoch", epochs[-1], epochs),
                            on_change=keep, args=("sal_cell_epoch",))
    return Cell(clicked.run if clicked is not None else method, layer, int(epoch))


def cell_panel(spec: AppSpec, study: Any, method: str, cell: Cell) -> None:
    """The selected layer at the selected epoch: its 1D slice, clean beside poisoned, with SAL, λ_max and trace."""
    st.subheader(f"{cell.layer} at epoch {cell.epoch}")
    curvature = stored_curvature(spec) if curvature_ready(spec) else None
    rows = cell_values(study, curvature, cell.layer, cell.epoch)
    for col, row in zip(st.columns(len(rows)), rows, strict=True):
        col.metric(f"SAL ({row['run']})", _fmt(row["SAL"]))
        col.metric(f"λ_max ({row['run']})", _fmt(row["λ_max"]))
        trace = _fmt(row["trace"]) + ("" if row["trace s.e."] is None else f" ± {row['trace s.e.']:.2g}")
        col.metric(f"trace ({row['run']})", trace)
    if curvature is None:
        st.caption("λ_max and the trace appear once the curvature of both runs is computed (Curvature page).")
    if not slice_ready(spec, cell.layer, cell.epoch) and widgets.compute_behind_button(
            f"The 1D slice of {cell.layer} at epoch {cell.epoch} is not computed yet: 21 points x 2 runs on "
            f"{slice_spec(cell.layer, cell.epoch).n_eval} training images each (seconds on digits; the runs are "
            f"trained first if they are not stored).", "Compute this layer slice", "sal_slice_run", "Layer slice",
            lambda p: layer_slices(spec, cell.layer, cell.epoch, p), primary=False) is None:
        return
    with widgets.guard(stop=False):
        sset = stored_slices(spec, cell.layer, cell.epoch)
        for i, f in enumerate(figures.layer_slice_figures(sset)):
            widgets.show_figure(f, f"layer-slice-{cell.layer}-epoch{cell.epoch}-{method}-{i}")
        st.caption("The shaded band is SAL's ball ||δ|| <= ε ||θ_l|| in the slice's coordinates: the region SAL "
                   "searched. Both runs move along the same random direction, filter-normalised to each run's own "
                   "weights, on their own training images.")
        widgets.show_table(rows, f"layer-{cell.layer}-epoch{cell.epoch}-{method}")


# ------------------------------------------------------------------------------------------------ Curvature page


def curvature_view(spec: AppSpec, study: Any, method: str) -> None:
    """λ_max and trace heatmaps beside SAL for both runs, their per-epoch Spearman agreement, the ESD, a table."""
    if not curvature_ready(spec) and widgets.compute_behind_button(
            f"Curvature of both runs is not computed yet: every layer's Hessian block and the whole model's at "
            f"every epoch ({plural(spec.epochs, 'epoch')}), on {APP_CURVATURE.n_data} training images (about a few "
            f"seconds per epoch and run for the digits cnn on one CPU thread).", "Compute curvature",
            "curvature_compute", "Curvature", lambda p: curvature_traces(spec, p)) is None:
        st.stop()
    with widgets.guard():
        traces = stored_curvature(spec)
    sal = {run: study.sal[run] for run in traces if run in study.sal}
    for i, f in enumerate(figures.curvature_figures(traces, sal)):
        widgets.show_figure(f, f"curvature-{method}-{i}")
    from landscape.curvature import sal_agreement

    cols = st.columns(len(traces))
    for col, (run, trace) in zip(cols, traces.items(), strict=True):
        if run in sal:
            _, rho = sal_agreement(sal[run], trace)
            finite = rho[np.isfinite(rho)]
            value = f"{finite.mean():.2f} ± {finite.std(ddof=1):.2f}" if finite.size > 1 else \
                (f"{finite[0]:.2f}" if finite.size else "n/a")
            col.metric(f"Spearman(SAL, λ_max), {run}", value, help="mean ± std over epochs of the rank correlation "
                       "across layers; NaN epochs (a constant row) left out")
    widgets.show_table(curvature_table(traces), f"curvature-{method}")


def curvature_table(traces: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Rows run x epoch x layer (and the whole model): λ_max, top-k eigenvalues, trace and its standard error."""
    from landscape.export import curvature_rows

    header, rows = curvature_rows(traces)
    return [dict(zip(header, row, strict=True)) for row in rows]
