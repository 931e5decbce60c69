"""Cross-task: do UEs crafted against classification stop segmentation, edges or reconstruction?"""

import streamlit as st

from landscape import figures, multitask
from landscape.app import cost, engine, state, widgets
from landscape.app.views import cross_task as view
from landscape.stages import crosstask

st.title("Cross-task")
st.caption("The paper's motivating finding (Ye, Su, Qian, ICLR 2025, Fig. 1): on Taskonomy, UEs crafted against "
           "classification barely hurt segmentation or depth. Here every task gets its own model, trained on clean "
           "or poisoned images; the targets always come from the clean images, and every model is scored on the "
           "clean test set. Poisons use their default budget for the data set, on the whole training set.")
spec = state.sidebar()
with widgets.guard():
    from landscape.poisons import POISONS

    c1, c2, c3 = st.columns([3, 1, 1])
    methods = c1.multiselect("UE methods", POISONS.names(), default=list(multitask.DEFAULT_METHODS), key="ct_methods")
    epochs = int(c2.number_input("Epochs", 1, 100, value=multitask.DEFAULT_TRAIN.epochs, key="ct_epochs"))
    with_sal = c3.toggle("SAL and UD", value=True, key="ct_sal")
    if not methods:
        st.info("Pick at least one UE method.")
        st.stop()
    ct = multitask.CrossTaskSpec.for_methods(methods, seed=spec.seed, data=spec.data(),
                                             train=multitask.DEFAULT_TRAIN.replace(epochs=epochs),
                                             sal=multitask.DEFAULT_SAL if with_sal else None)
    result = view.stored(ct)
    if result is None:
        todo = crosstask.missing_runs(ct, engine.store())
        result = widgets.compute_behind_button(
            f"{len(todo)} of {len(ct.tasks) * len(ct.conditions)} task models still to train: about "
            f"{cost.format_seconds(crosstask.estimate_seconds(ct, len(todo)))} on one CPU core, plus crafting.",
            "Run the cross-task probe", "ct_run", "Cross-task probe", lambda progress: crosstask.run_cross_task(
                ct, store=engine.store(), device=engine.device(), progress=progress))
if result is None:
    st.stop()

ct, root = result.spec, str(engine.store().root)  # the spec of what is shown
st.caption(f"Source: {view.source(ct, root)}.")
rows = result.table()
widgets.show_table(widgets.frame(rows).drop(columns=["higher_is_better", "diverged"]), "cross-task-table")
st.caption(view.table_notes(rows, ct))
widgets.show_figure(widgets.figure(("ct-drops", ct), lambda: figures.cross_task_drops(rows)), "cross-task-drops")
curves = widgets.figure(("ct-curves", ct), lambda: figures.task_curves(result.curves(), result.metric_names()))
widgets.show_figure(curves, "cross-task-curves")
if ct.sal is not None:
    task = st.selectbox("SAL of task", ct.tasks, key="ct_task")
    traces = {c: result.run(task, c).sal for c in ct.conditions}
    widgets.show_figure(widgets.figure(("ct-sal", ct, task), lambda: figures.sal_heatmaps(
        {c: t.sal for c, t in traces.items()}, traces["clean"].layers, traces["clean"].epochs,
        title=f"SAL of the {task} models (loss of {task})")), f"cross-task-sal-{task}")
    scope = st.radio("Layers in the SAL vectors", ["all", "encoder"], horizontal=True, key="ct_scope",
                     format_func={"all": "all 6 (by depth)", "encoder": "the 4 shared-architecture conv layers"}.get)
    layers = None if scope == "all" else multitask.ENCODER_LAYERS
    widgets.show_figure(widgets.figure(("ct-similarity", ct, scope), lambda: figures.task_similarity(
        result.similarities(layers=layers), ct.tasks)), f"cross-task-similarity-{scope}")
