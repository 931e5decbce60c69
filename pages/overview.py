"""Overview: what UEs, SAL and UD are, and the sidebar's experiment (the shipped demo by default) or its button."""

import streamlit as st

from landscape import figures
from landscape.app import cost, engine, state, widgets
from landscape.app.views import study
from landscape.spec import plural

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
spec = state.sidebar()
st.subheader("The experiment of the sidebar")
st.markdown(f"A clean `{spec.model}` and one trained on `{spec.method}`-poisoned images, on "
            f"{spec.dataset_label()}, {plural(spec.epochs, 'epoch')}, SAL at every epoch, then UD. The "
            f"app opens on the shipped demo; change the sidebar to run your own.")
if not engine.experiment_ready(spec) and widgets.compute_behind_button(
        lambda: cost.experiment_line(spec), "Run this experiment", "overview_run", "Experiment",
        lambda p: engine.experiment(spec, p)) is None:
    st.stop()
with widgets.guard():
    result = study.live_study(spec)
st.caption(f"Source: {result.label}. Every page shows this run.")
widgets.show_figure(widgets.figure(("overview-training", spec), lambda: figures.training_curves(result.histories)),
                    "overview-training-curves")
study.run_metrics(result.histories, result.ud)
if spec.dataset == "digits":
    st.caption("On the 8x8 digits UD need not follow the accuracy drop: the UD page says why, and in which settings "
               "of the shipped regime study UD does separate UEs from random noise.")
