"""Poison: craft a UE method on the chosen data set and look at clean / perturbation / poisoned images."""

import streamlit as st

from landscape import figures, ui

st.title("Poison")
st.caption("Pick a data set, method, budget and poison ratio in the sidebar; crafting runs only when you press the "
           "button, and is then served from the store.")
spec = ui.sidebar()
source = ui.source_picker("poison", ui.poison_ready(spec))

if source == "demo":
    demo = ui.demo()
    method = st.selectbox("Method of the demo", demo.methods, key="poison_demo_method")
    view, budgets = demo.poison[method], {m: demo.poison[m]["budget"] for m in demo.methods}
else:
    method = spec.method
    with ui.guard():
        info = ui.method_defaults(spec.method, spec.dataset)
        cost = ui.crafting_estimate(spec)
    with st.expander(f"About `{spec.method}` ({ui.describe_budget(info['norm'], spec.eps or info['eps'])}, "
                     f"{info['granularity']}-wise)"):
        st.text(info["doc"])
    if not ui.poison_ready(spec):
        st.info(f"Crafting `{spec.method}` on {spec.dataset}: about {cost['gradient_evals']:,} image-gradient "
                f"evaluations, roughly {ui.format_seconds(cost['cpu_seconds'])} on one CPU thread (an estimate).")
        if not st.button(f"Craft {spec.method}", type="primary", key="craft"):
            st.stop()
        if ui.run_with_progress(f"Crafting {spec.method}", lambda p: ui.poisoned_train(spec, p)) is None:
            st.stop()
        ui.mark_done("poison", spec)
    with ui.guard():
        view = ui.poison_view(spec)
    ui.remember("budget", f"{spec.dataset}:{spec.method}", view["budget"])
    budgets = {k.split(":", 1)[1]: v for k, v in ui.remembered("budget").items() if k.startswith(f"{spec.dataset}:")}

st.subheader(f"{method}: {view['n_changed']} of {view['n_train']} training images changed")
ui.show_figure(figures.image_grid(view["clean"], view["poisoned"], view["labels"], view["class_names"]),
               f"poison-images-{source}-{method}")
st.subheader("Budget figures")
st.caption("Measured by the engine on the poisoned images: L∞ and L2 on the [0, 1] pixel scale, L0 = changed pixel "
           "positions per image, PSNR in dB (higher = less visible). Live: every method crafted in this session.")
ui.show_figure(figures.budget_figure({m: ui.budget_for_figure(b) for m, b in budgets.items()}), f"budget-{source}")
ui.show_table(ui.budget_table(budgets), f"budget-{source}")
