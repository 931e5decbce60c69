"""Overview: what UEs, SAL and UD are, the shipped demo result, and one button that runs a quick demo live."""

import streamlit as st

from landscape import figures, ui

st.title("UE Landscape")
st.markdown(
    "**Unlearnable examples (UEs)** are training images with a small, crafted perturbation: a model trained on "
    "them fits the perturbation (a shortcut) instead of the content, and fails on clean test images. "
    "**SAL** (Sharpness-Aware Learnability) asks, for every layer at every epoch, how much the training loss "
    "can still move inside a small ball around that layer's weights: a high SAL means the layer can still "
    "learn, a flat one means it has stopped. **UD** (Unlearnable Distance) counts the learnable layers "
    "(SAL above a threshold β set on the clean run) of the poisoned model relative to the clean one: "
    "1 = as learnable as clean, lower = more unlearnable (Ye, Su, Qian, ICLR 2025)."
)
demo = ui.demo()
if demo is not None:
    st.subheader("The shipped demo")
    st.caption(f"Precomputed, read from assets/demo: {ui.demo_label()}.")
    ui.show_figure(figures.training_curves(demo.histories), "demo-training-curves")
    ui.demo_metrics(demo)
else:
    st.warning("The shipped demo is missing (assets/demo); build it with `python -m landscape demo`.")

ui.sidebar()  # after the demo figure: the sidebar imports the engine (torch), the figure does not need it
st.subheader("Run it yourself")
quick = ui.quick_spec()
st.markdown(f"The quick demo trains a clean and an `{quick.method}`-poisoned `{quick.model}` on {quick.dataset} "
            f"for {quick.epochs} epochs, measuring SAL at every epoch, and computes UD. "
            f"{ui.quick_estimate(quick)}")
clicked = st.button("Run the quick demo", type="primary", key="quick_demo")
if clicked and ui.run_with_progress("Quick demo", lambda p: ui.quick_demo(quick, p)) is not None:
    ui.mark_done("experiment", quick)
if ui.experiment_ready(quick):
    with ui.guard():
        study = ui.experiment_cached(quick)
    ui.show_figure(figures.training_curves(study.histories), "quick-demo-training-curves")
    ui.quick_metrics(study)
    st.caption("Every page can show this run: pick *Live run* there with the same sidebar settings.")
