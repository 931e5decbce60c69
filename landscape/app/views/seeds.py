"""UD's seed distribution from the shipped regime study (`bench/regime.py`), beside the UD value a page shows."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from landscape import figures, seeds
from landscape.app import engine, widgets
from landscape.app.state import AppSpec


@st.cache_data(max_entries=16, show_spinner=False)
def _study(experiment: Any) -> dict[str, Any] | None:
    """What the view shows of the study for the `ExperimentSpec` `experiment`, read once (None: no study shipped)."""
    rows = seeds.study_rows()
    if not rows:
        return None
    here = seeds.study_methods(experiment, rows)
    return {"here": here, "exact": seeds.study_spread(experiment, rows) is not None,
            "note": seeds.single_seed_note(experiment), "settings": seeds.study_settings(rows)}


@st.cache_data(max_entries=16, show_spinner=False)
def _shares(label: str) -> dict[str, dict[str, Any]]:
    return seeds.study_shares(label)


def seed_spread(spec: AppSpec, method: str, point: float | None) -> None:
    """The study's UD over seeds on the sidebar's setting, with `point` (the page's UD of `method`) marked.

    Below it, a picker over every setting the study covers, so a user can compare how far UD moves between seeds
    in each (the study's recipes and SAL baselines the sidebar does not offer included).
    """
    st.subheader("UD over seeds (the shipped regime study)")
    study = _study(engine.experiment_spec(spec))
    if study is None:
        st.caption("No regime study is shipped (assets/benchmarks/regime.json; `python bench/regime.py`).")
        return
    here = study["here"]
    if method in here:
        fig = figures.ud_seed_spread({m: s.values for m, s in here.items()},
                                     point=None if point is None else {method: point},
                                     title=f"UD over seeds: {spec.label()}")
        widgets.show_figure(fig, f"ud-seeds-{method}", key="ud-seeds-here")
        shown = "" if point is None else f"; ◇ = the UD on this page, {point:.3f} (one seed)"
        other = "" if study["exact"] else \
            " The study measured SAL at other epochs than this setting (e.g. every 2nd), so its values are close, " \
            "not identical, to a run of this setting."
        st.caption(f"{method}: UD {here[method].text()} over the study's seeds{shown}. A single UD is one draw "
                   f"from this spread.{other}")
    else:
        st.info(study["note"])
    settings = study["settings"]
    label = st.selectbox("Setting of the regime study", list(settings), key="ud_study_setting",
                         help="every setting bench/regime.py ran (3 seeds each, both SAL baselines)")
    chosen = settings[label]
    widgets.show_figure(figures.ud_seed_spread({m: s.values for m, s in chosen.items()}, title=f"UD over seeds: "
                                               f"{label}"), "ud-seeds-study", key="ud-seeds-study")
    st.caption(" · ".join(f"{m}: {s.text()}" for m, s in chosen.items()))
    shares = _shares(label)
    ues = [m for m in shares if m != "random"]
    if ues and "random" in shares:
        ue = st.selectbox("Which layers (UE against random noise)", ues, key="ud_study_layers")
        a, r = shares[ue], shares["random"]
        widgets.show_figure(figures.sal_heatmaps(
            {"clean": np.asarray(a["clean"]), "random": np.asarray(r["poisoned"]), ue: np.asarray(a["poisoned"])},
            a["layers"], np.asarray(a["epochs"]), title="Each layer's share of its epoch's SAL (ours; mean over "
            "seeds)", label="share"), "ud-study-shares", key="ud-study-shares")
        st.caption("Ours, not the paper's: SAL_l(t) / Σ_l SAL_l(t), so the epoch's overall trend is divided out and "
                   "a layer that flattens under the UE shows as a darker cell than under random noise at the same "
                   "epoch. The per-layer numbers are in assets/benchmarks/regime.md.")
