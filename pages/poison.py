"""Poison: craft a UE method on the chosen data set and look at clean / perturbation / poisoned images."""

import streamlit as st

from landscape import figures
from landscape.app import cost, engine, state, widgets
from landscape.app.views import poison

st.title("Poison")
st.caption("Pick a data set, method, budget and poison ratio in the sidebar; crafting runs only when you press the "
           "button, and is then served from the store.")
spec = state.sidebar()
with widgets.guard():
    info = engine.method_defaults(spec.method, spec.data())
    line = cost.crafting_line(spec)
with st.expander(f"About `{spec.method}` ({cost.describe_budget(info['norm'], spec.eps or info['eps'])}, "
                 f"{info['granularity']}-wise)"):
    st.text(info["doc"])
if line and widgets.compute_behind_button(f"Cost: {line}.", f"Craft {spec.method}", "craft",
                                          f"Crafting {spec.method}", lambda p: engine.poisoned_train(spec, p)) is None:
    st.stop()
with widgets.guard():
    view = engine.poison_view(spec)
    st.caption(f"Source: {engine.origin(engine.poison_stage(spec))}.")
state.remember("budget", f"{spec.dataset}:{spec.method}", view["budget"])
budgets = {k.rpartition(":")[2]: v for k, v in state.remembered("budget").items() if k.startswith(f"{spec.dataset}:")}

st.subheader(f"{spec.method}: {view['n_changed']} of {view['n_train']} training images changed")
widgets.show_figure(widgets.figure(("poison-images", spec), lambda: figures.image_grid(
    view["clean"], view["poisoned"], view["labels"], view["class_names"])), f"poison-images-{spec.method}")
st.subheader("Budget figures")
st.caption("Measured by the engine on the poisoned images when it crafted them (stored with the poison): L∞ and L2 "
           "on the [0, 1] pixel scale, L0 = changed pixel positions per image, PSNR in dB (higher = less visible). "
           "Every method looked at in this session.")
widgets.show_figure(figures.budget_figure({m: poison.budget_for_figure(b) for m, b in budgets.items()}), "budget")
widgets.show_table(poison.budget_table(budgets), "budget")
with widgets.guard():
    poison.release_download(spec)
