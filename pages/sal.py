"""SAL: per-layer, per-epoch Sharpness-Aware Learnability, clean vs poisoned, with the learnable threshold β; a
selected cell opens its layer (slice, SAL, λ_max, trace) and that layer's SAL per output channel."""

import dataclasses

import streamlit as st

from landscape import figures
from landscape.app import state, widgets
from landscape.app.views import channels, curvature
from landscape.app.views import study as views

st.title("SAL: which layers can still learn")
st.caption("SAL of a layer = the largest change of the training loss that a few rounds of SGD find inside a ball "
           "of radius 5% of the layer's weight norm, all other layers frozen (Ye, Su, Qian, ICLR 2025). High = the "
           "layer can still learn; ≈ 0 = it sits in a flat region. β (from the clean run) splits learnable from "
           "unlearnable layers.")
spec = state.sidebar()
study = views.study_or_stop("sal", spec)
method = spec.method
st.caption(f"Source: {study.label}.")
c1, c2 = st.columns(2)
variant = c1.radio("Variant", ["loss", "accuracy"], horizontal=True, key="sal_variant",
                   format_func={"loss": "loss SAL (enters UD)", "accuracy": "accuracy SAL (pp)"}.get)
log = c2.toggle("log10 colour scale", value=True, key="sal_log", disabled=variant != "loss")
runs = {r: study.sal[r] for r in ("clean", method)}
values = {r: (t.sal if variant == "loss" else t.acc_variant) for r, t in runs.items()}
label = "SAL" if variant == "loss" else "accuracy SAL (pp)"  # the colour bar's name and unit
report = study.ud[method]
clean = runs["clean"]

cells = widgets.figure(("sal-cells", spec, variant, log), lambda: figures.selectable_cells(figures.sal_heatmaps(
    values, clean.layers, clean.epochs, log=log and variant == "loss",
    title=f"{variant} SAL per layer and epoch (one colour scale)", label=label), values, clean.layers, clean.epochs,
    label=f"{variant} SAL"))
event = widgets.show_figure(cells, f"sal-heatmaps-{method}-{variant}", select=True)
st.caption("Pick a layer and an epoch (a cell of the heatmap) to open that layer's 1D slice at that epoch, clean "
           "beside poisoned, with its SAL, λ_max and trace.")
cell = curvature.choose_cell(study, method, event)
curvature.cell_panel(dataclasses.replace(spec, method=method), study, method, cell)
st.divider()
channels.channel_view(spec, study, cell.layer, variant=variant, log=log and variant == "loss")
st.divider()
left, right = st.columns(2)
with left:
    widgets.show_figure(widgets.figure(("sal-distribution", spec, log), lambda: figures.sal_distributions(
        {r: runs[r].sal for r in runs}, report.beta, log=log)), f"sal-distribution-{method}")
with right:
    widgets.show_figure(widgets.figure(("learnable-layers", spec), lambda: figures.learnable_layers(
        {"clean": report.flags_clean, method: report.flags_poisoned}, clean.layers, clean.epochs)),
        f"learnable-layers-{method}")
st.metric("β (learnable threshold, from the clean run)", f"{report.beta:.4g}")
views.digits_caveat(study, method)
widgets.show_table(study.sal_table(), f"sal-{method}")
