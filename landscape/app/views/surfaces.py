"""The Landscape page's figures: 1D slices, 2D contours, 3D surfaces, fidelity checks, parameter paths."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from landscape import figures
from landscape.app import engine
from landscape.app.widgets import guard, show_figure, show_table

if TYPE_CHECKING:
    from landscape.app.state import AppSpec
    from landscape.config import SurfaceSpec
    from landscape.surface_results import Surface, SurfaceSet

MAX_TRACKED_WEIGHTS = 100_000  # models up to this size get the parameter-paths view (every checkpoint is read)
SURFACE_KINDS = {
    "pca": "PCA plane of both trajectories (paths drawn)",
    "random": "Random filter-normalised plane around each model",
    "interp": "Clean ↔ poisoned line (or plane through both and the initialisation)",
}
PLANES = {"pca": "the PCA plane of both trajectories", "random": "a random filter-normalised plane",
          "interp": "the plane through clean, poisoned and the initialisation"}  # figure titles: no internal names


def plane_title(label: str, kind: str) -> str:
    """A one-plane figure's title: "loss on the PCA plane of both trajectories", not "loss on the pca plane"."""
    return f"{label} on {PLANES.get(kind, f'the {kind} plane')}"


def surface_request(kind: str, dims: int, resolution: int) -> SurfaceSpec:
    """The engine's `SurfaceSpec` for the page's choices (the rest at the engine's defaults)."""
    from landscape.config import SurfaceSpec

    return SurfaceSpec(kind=kind, dims=dims, resolution=resolution)


def path_views(surface: Surface, metric: str = "loss") -> dict[str, figures.PathView]:
    """The engine's projected paths as `figures.PathView`s (surface value = loss or accuracy at the projection)."""
    out = {}
    for name, p in surface.paths.items():
        real, plane = (p.real_loss, p.plane_loss) if metric == "loss" else (p.real_acc, p.plane_acc)
        out[name] = figures.PathView(epochs=p.epochs, a=p.alpha, b=p.beta, real_loss=real, surface_loss=plane,
                                     residual=p.residual)
    return out


def parameter_trajectories(spec: AppSpec, method: str, max_weights: int = 2000) -> dict[str, Any]:
    """Each weight's value at every checkpoint of the clean and the poisoned run (small models only).

    Returns `epochs` (T,), `clean` and `poisoned` (T, P) and `names` (P,); models with more than
    `max_weights` weights keep the `max_weights` whose final clean and poisoned values differ most.
    """
    runs = {r: engine.training_result(spec, r) for r in ("clean", method)}
    to_numpy = [[{k: v.numpy() for k, v in c.items()} for c in runs[r].checkpoints] for r in ("clean", method)]
    (clean, names), (poisoned, _) = figures.trajectory_matrix(to_numpy[0]), figures.trajectory_matrix(to_numpy[1])
    t = min(len(clean), len(poisoned))  # a diverged run keeps fewer checkpoints
    clean, poisoned = clean[:t], poisoned[:t]
    epochs = np.asarray(runs["clean"].checkpoint_epochs[:t])
    if clean.shape[1] > max_weights:
        keep = np.sort(figures.diverging_parameters(clean, poisoned, max_weights))
        clean, poisoned, names = clean[:, keep], poisoned[:, keep], [names[i] for i in keep]
    return {"epochs": epochs, "clean": clean, "poisoned": poisoned, "names": names}


_trajectories_cached = st.cache_data(max_entries=8, show_spinner=False)(parameter_trajectories)


def live_parameter_paths(spec: AppSpec) -> dict[str, Any] | None:
    """Parameter paths of the stored clean and poisoned runs of a small model (None before they are trained)."""
    if not engine.training_ready(spec):
        return None
    with guard():
        if engine.weight_count(spec) > MAX_TRACKED_WEIGHTS:
            return None
        return {**_trajectories_cached(spec, spec.method), "model": spec.model, "method": spec.method}


def show_parameter_paths(paths: dict[str, Any], name: str) -> None:
    st.subheader(f"Parameter paths ({paths['model']})")
    st.caption("Each weight's value over the epochs, clean vs poisoned; the weights that end furthest apart are "
               "coloured. Ye et al. (§3.1) report that under UEs only some parameters take a different path; this "
               "view lets you check that on these two runs.")
    top_k = st.slider("Highlight", 1, 20, 8, key="ls_topk")
    show_figure(figures.parameter_paths(paths["epochs"], paths["clean"], paths["poisoned"], paths["names"],
                                        top_k=top_k, poisoned_name=paths["method"]), f"parameter-paths-{name}")


def _one_plane(s: Surface, values: np.ndarray, metric: str, log: bool, label: str, name: str) -> None:
    markers = dict(s.anchors) if s.kind == "interp" else None
    # One view at a time (not tabs): a 3D scene is only built when asked for, so the page opens fast.
    view = st.radio("View", ["2D contour with paths", "3D surface"], horizontal=True, key="ls_view_one")
    if view.startswith("2D"):
        show_figure(figures.contour(s.alpha, s.beta, values, paths=path_views(s, metric), markers=markers, log=log,
                                    label=label, title=plane_title(label, s.kind)), f"contour-{name}")
    else:
        show_figure(figures.surface_3d(s.alpha, s.beta, values, paths=path_views(s, metric), log=log, label=label,
                                       title=plane_title(label, s.kind)), f"surface3d-{name}")


def _many_planes(surfaces: dict[str, Surface], values: Any, metric: str, log: bool, label: str, poisoned: str,
                 name: str) -> None:
    panels = {k: figures.Panel(s.alpha, s.beta, values(s), path_views(s, metric)) for k, s in surfaces.items()}
    view = st.radio("View", ["Side by side (shared scale)", "Difference", "3D surfaces"], horizontal=True,
                    key="ls_view_many")
    if view.startswith("Side"):
        show_figure(figures.contours_side_by_side(panels, log=log, label=label), f"side-by-side-{name}")
    elif view == "Difference":
        a, b = "clean", poisoned if poisoned in surfaces else next(k for k in surfaces if k != "clean")
        if np.array_equal(surfaces[a].alpha, surfaces[b].alpha) and np.array_equal(surfaces[a].beta,
                                                                                  surfaces[b].beta):
            st.caption("Same coordinates around each model (each direction filter-normalised to its model).")
            show_figure(figures.difference_contour(surfaces[b].alpha, surfaces[b].beta, values(surfaces[b]),
                                                   values(surfaces[a]), names=(b, a), log=log, label=label),
                        f"difference-{name}")
        else:
            st.info("The two surfaces use different coordinate ranges, so there is no point-wise difference.")
    else:
        lo, hi = figures.shared_range(*(values(s) for s in surfaces.values()), log=log)
        for col, (k, s) in zip(st.columns(len(surfaces)), surfaces.items(), strict=True):
            with col:
                show_figure(figures.surface_3d(s.alpha, s.beta, values(s), paths=path_views(s, metric),
                                               zrange=(lo, hi), log=log, label=label, title=f"around {k}"),
                            f"surface3d-{name}-{k}")


def _fidelity(surfaces: dict[str, Surface], metric: str, name: str) -> None:
    first = next(iter(surfaces.values()))
    with st.expander(f"How faithful is this view? Explained variance, off-plane residuals, real vs surface {metric}",
                     expanded=first.kind == "pca"):
        variance = {k: s.explained_variance for k, s in surfaces.items() if len(s.explained_variance)}
        if variance:
            show_figure(figures.explained_variance(variance), f"explained-variance-{name}")
        paths = {f"{k}: {p}" if len(surfaces) > 1 else p: v for k, s in surfaces.items()
                 for p, v in path_views(s, metric).items()}
        if paths:
            show_figure(figures.path_fidelity(paths, label=metric), f"path-fidelity-{name}")
        st.caption("How each surface was computed (evaluator, device, grid points, images, speed):")
        st.json({k: {key: v for key, v in s.info.items() if isinstance(v, (int, float, str, bool))}
                 for k, s in surfaces.items()}, expanded=False)


def render_surfaces(sset: SurfaceSet, *, metric: str, log: bool, poisoned: str, name: str) -> None:
    """Figures of a `SurfaceSet`: 1D curves, or contour + 3D (+ side by side and difference), fidelity, tables."""
    label = "loss" if metric == "loss" else "accuracy"

    def values(s: Surface) -> np.ndarray:
        return s.loss if metric == "loss" else s.acc

    surfaces = dict(sset.surfaces)
    first = next(iter(surfaces.values()))
    if first.ndim == 1:
        markers = {n: a for n, (a, _b) in first.anchors.items()} if len(surfaces) == 1 else {}
        xlabel = "interpolation coefficient (0 = first model, 1 = second)" if first.kind == "interp" \
            else "step along the direction (filter-normalised units)" if first.kind == "random" \
            else "coordinate along PC1"
        show_figure(figures.slice_1d(first.alpha, {k: values(s)[:, 0] for k, s in surfaces.items()}, xlabel=xlabel,
                                     ylabel=label, log=log, markers=markers), f"slice-1d-{name}")
    elif len(surfaces) == 1:
        _one_plane(first, values(first), metric, log, label, name)
    else:
        _many_planes(surfaces, values, metric, log, label, poisoned, name)
    _fidelity(surfaces, metric, name)
    st.markdown("**Tables**")
    show_table(sset.grid_table(), f"surface-grid-{name}")
    if any(s.paths for s in surfaces.values()):
        show_table(sset.paths_table(), f"surface-paths-{name}")
