"""Train: a clean and a poisoned model side by side; loss and accuracy on the training set and the clean test set."""

import streamlit as st

from landscape import figures
from landscape.app import cost, engine, state, widgets
from landscape.app.views import train

st.title("Train")
st.caption("Both models start from the same initial weights and see the same batches; only the training images "
           "differ. The test set is always clean.")
spec = state.sidebar()
runs = ("clean", spec.method)
if not engine.training_ready(spec) and widgets.compute_behind_button(
        lambda: cost.training_line(spec), "Train clean and poisoned", "train", "Training",
        lambda p: [engine.training_result(spec, r, p) for r in runs]) is None:
    st.stop()
with widgets.guard():
    histories = {run: engine.training_history(spec, run) for run in runs}
    st.caption(f"Source: {engine.origin(engine.train_stage(spec, spec.method))}.")

widgets.show_figure(widgets.figure(("training", spec), lambda: figures.training_curves(histories)), "training")
train.accuracy_metrics(histories)
widgets.show_table(train.history_table(histories), "history")
