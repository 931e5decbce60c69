"""Train: a clean and a poisoned model side by side; loss and accuracy on the training set and the clean test set."""

import streamlit as st

from landscape import figures, ui

st.title("Train")
st.caption("Both models start from the same initial weights and see the same batches; only the training images "
           "differ. The test set is always clean.")
spec = ui.sidebar()
source = ui.source_picker("train", ui.training_ready(spec))

if source == "demo":
    histories = ui.demo().histories
else:
    runs = ("clean", spec.method)
    if not ui.training_ready(spec):
        with ui.guard():
            st.info(f"Cost: {ui.training_estimate(spec)}, after crafting `{spec.method}` if it is not stored yet.")
        if not st.button("Train clean and poisoned", type="primary", key="train"):
            st.stop()
        if ui.run_with_progress("Training", lambda p: [ui.training_result(spec, r, p) for r in runs]) is None:
            st.stop()
        ui.mark_done("train", spec)
    with ui.guard():
        histories = {run: ui.training_history(spec, run) for run in runs}

ui.show_figure(figures.training_curves(histories), f"training-{source}")
for col, (run, h) in zip(st.columns(len(histories)), histories.items(), strict=True):
    col.metric(f"{run}: clean test accuracy", f"{h['test_acc'][-1]:.1%}",
               help=f"after epoch {len(h['test_acc'])}; best {h['test_acc'].max():.1%}")
ui.show_table(ui.dataframe_of_history(histories), f"history-{source}")
