"""Overview: what UEs, SAL and UD are, the shipped demo result, and one button that runs a quick demo live."""

import streamlit as st

from landscape import figures
from landscape.app import cost, demo, engine, state, widgets
from landscape.app.views import study

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
shipped = demo.demo()
if shipped is not None:
    st.subheader("The shipped demo")
    st.caption(f"Precomputed, read from assets/demo: {demo.label()}.")
    widgets.show_figure(figures.training_curves(shipped.histories), "demo-training-curves")
    study.run_metrics(shipped.histories, shipped.ud)
else:
    st.warning("The shipped demo is missing (assets/demo); build it with `python -m landscape demo`.")

state.sidebar()  # after the demo figure: the sidebar imports the engine (torch), the figure does not need it
st.subheader("Run it yourself")
quick = study.quick_spec()
st.markdown(f"The quick demo trains a clean and an `{quick.method}`-poisoned `{quick.model}` on {quick.dataset} "
            f"for {quick.epochs} epochs, measuring SAL at every epoch, and computes UD. {cost.quick_line(quick)}")
if st.button("Run the quick demo", type="primary", key="quick_demo"):
    widgets.run_with_progress("Quick demo", lambda p: engine.experiment(quick, p))
if engine.experiment_ready(quick):
    with widgets.guard():
        result = study.live_study(quick)
    widgets.show_figure(figures.training_curves(result.histories), "quick-demo-training-curves")
    study.run_metrics(result.histories, result.ud)
    st.caption("Every page can show this run: pick *Live run* there with the same sidebar settings.")
