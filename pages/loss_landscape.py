"""Landscape: 1D slices, 2D contours and 3D surfaces with both optimisation paths, clean vs poisoned."""

import streamlit as st

from landscape.app import cost, engine, state, widgets
from landscape.app.views import surfaces

st.title("Loss landscape")
st.caption("Slices of the clean-test loss around the trained models. The PCA plane holds both optimisation paths; "
           "check how much of each path it explains and how far the checkpoints sit off the plane before "
           "reading shapes into it.")
spec = state.sidebar()

c1, c2, c3 = st.columns([3, 1, 1])
kind = c1.radio("Directions", list(surfaces.SURFACE_KINDS), format_func=surfaces.SURFACE_KINDS.get, key="ls_kind")
dims = c2.radio("Slice", [2, 1], format_func=lambda d: f"{d}D", key="ls_dims", horizontal=True)
metric = c3.radio("Show", ["loss", "accuracy"], key="ls_metric", horizontal=True)
log = c3.toggle("log10 scale", value=True, key="ls_log", disabled=metric != "loss")
resolution = st.select_slider("Grid points per axis", [11, 21, 31, 41, 51], value=21, key="ls_res")
with widgets.guard():
    request = surfaces.surface_request(kind, dims, resolution)
if not engine.surface_ready(spec, request) and widgets.compute_behind_button(
        lambda: cost.surface_line(spec, request), "Compute the landscape", "surface", "Landscape",
        lambda p: engine.surfaces(spec, request, p)) is None:
    st.stop()
with widgets.guard():
    sset = engine.surface_set(spec, request)
    st.caption(f"Source: {engine.origin(engine.surface_stage(spec, request))}.")

surfaces.render_surfaces(sset, metric=metric, log=log and metric == "loss", poisoned=spec.method,
                         name=f"{kind}-{dims}d")
paths = surfaces.live_parameter_paths(spec)
if paths is not None:
    surfaces.show_parameter_paths(paths, paths["model"])
