"""UD: the Unlearnable Distance with its learnable-layer counts over epochs, and the benchmark of all methods."""

import streamlit as st

from landscape import figures
from landscape.app import state, widgets
from landscape.app.views import bench, seeds
from landscape.app.views import study as views

st.title("UD: Unlearnable Distance")
st.caption("UD = #LP(poisoned) / #LP(clean), #LP = the mean number of layers with SAL > β over the epochs "
           "(Ye, Su, Qian, ICLR 2025). Clean scores 1; lower = more unlearnable; above 1 = the model learns "
           "(something) more, as with adversarial poisons such as TAP.")
spec = state.sidebar()
study = views.study_or_stop("ud", spec)
method = spec.method
st.caption(f"Source: {study.label}.")
r = study.ud[method]
cols = st.columns(4)
cols[0].metric(f"UD ({method})", views.ud_value(r))
cols[1].metric("#LP clean", f"{r.lp_clean:.2f}")
cols[2].metric(f"#LP {method}", f"{r.lp_poisoned:.2f}")
cols[3].metric("β", f"{r.beta:.4g}")
if r.message:
    st.warning(r.message)
widgets.show_figure(widgets.figure(("ud-counts", spec), lambda: figures.ud_counts(
    {"clean": (r.epochs_clean, r.counts_clean), method: (r.epochs_poisoned, r.counts_poisoned)},
    n_layers=r.flags_clean.shape[1], lp={"clean": r.lp_clean, method: r.lp_poisoned})), f"ud-counts-{method}")
views.digits_caveat(study, method)
seeds.seed_spread(spec, method, r.ud if r.ud_defined else None)
st.subheader("Threshold-free views (ours, not the paper's)")
st.caption("With few layers the count ratio moves in steps; these compare the SAL values directly: the "
           "Wasserstein-1 distance between the clean and poisoned SAL distributions, and the ratio of mean SAL.")
c1, c2 = st.columns(2)
c1.metric("W1 distance, all layers", f"{r.w1_overall:.4g}")
c2.metric("mean SAL ratio (poisoned / clean)", f"{r.mean_ratio_overall:.3g}")
widgets.show_table(r.layer_table(study.sal["clean"].layers), f"ud-layers-{method}")
widgets.show_table(r.counts_table(method), f"ud-counts-{method}")
widgets.show_table(study.ud_table(), "ud-summary")
if r.notes:
    with st.expander(f"{len(r.notes)} note(s) from the engine"):
        st.markdown("\n".join(f"- {n}" for n in r.notes))

st.subheader("Benchmark of all methods")
results = bench.benchmark_results()
if not results:
    st.caption("No benchmark table shipped yet (assets/benchmarks/*.csv, *.md or *.json).")
for stem, paths in results.items():
    st.markdown(f"**{stem}** ({', '.join(p.name for p in paths)})")
    bench.show_result(paths)
