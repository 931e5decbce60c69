"""Landscape: 1D slices, 2D contours and 3D surfaces with both optimisation paths, clean vs poisoned."""

import streamlit as st

from landscape import figures, ui

st.title("Loss landscape")
st.caption("Slices of the clean-test loss around the trained models. The PCA plane holds both optimisation paths; "
           "check how much of each path it explains and how far the checkpoints sit off the plane before "
           "reading shapes into it.")
spec = ui.sidebar()

c1, c2, c3 = st.columns([3, 1, 1])
kind = c1.radio("Directions", list(ui.SURFACE_KINDS), format_func=ui.SURFACE_KINDS.get, key="ls_kind")
dims = c2.radio("Slice", [2, 1], format_func=lambda d: f"{d}D", key="ls_dims", horizontal=True)
metric = c3.radio("Show", ["loss", "accuracy"], key="ls_metric", horizontal=True)
log = c3.toggle("log10 scale", value=True, key="ls_log", disabled=metric != "loss")
source = ui.source_picker("landscape")

if source == "demo":
    sset, poisoned = ui.demo_surfaces(kind, dims)
    if sset is None:
        st.info(f"The shipped demo has no {dims}D `{kind}` slice; switch to a live run.")
        st.stop()
else:
    resolution = st.select_slider("Grid points per axis", [11, 21, 31, 41, 51], value=21, key="ls_res")
    with ui.guard():
        request = ui.surface_request(kind, dims, resolution)
    poisoned = spec.method
    if not ui.surface_ready(spec, request):
        with ui.guard():
            st.info(f"Cost: {ui.surface_estimate(spec, request)}.")
        if not st.button("Compute the landscape", type="primary", key="surface"):
            st.stop()
        if ui.run_with_progress("Landscape", lambda p: ui.surfaces(spec, request, p)) is None:
            st.stop()
        ui.mark_done(f"surface-{request.key()}", spec)
    with ui.guard():
        sset = ui.surface_set(spec, request)

ui.render_surfaces(sset, metric=metric, log=log and metric == "loss", poisoned=poisoned,
                   name=f"{source}-{kind}-{dims}d")

paths = ui.demo_parameter_paths(poisoned) if source == "demo" else (
    ui.live_parameter_paths(spec) if spec.model in ("linear", "mlp") else None)
if paths is not None:
    st.subheader(f"Parameter paths ({paths['model']})")
    st.caption("Each weight's value over the epochs, clean vs poisoned; the weights that end furthest apart are "
               "coloured (Ye et al. §3.1: under UEs only some parameters take a different path).")
    top_k = st.slider("Highlight", 1, 20, 8, key="ls_topk")
    ui.show_figure(figures.parameter_paths(paths["epochs"], paths["clean"], paths["poisoned"], paths["names"],
                                           top_k=top_k, poisoned_name=paths["method"]),
                   f"parameter-paths-{source}-{paths['model']}")
