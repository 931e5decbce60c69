"""The figures of one clean-vs-poisoned experiment: training curves, SAL, learnable layers and UD's counts.

What the app's Overview (training curves), SAL (heatmaps, distribution, learnable layers) and UD (counts) pages
draw for an `ExperimentResult`, by name; `Study.figures` and the report of `python -m landscape run --out` use
them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import plotly.graph_objects as go

from landscape.figures.sal import learnable_layers, sal_distributions, sal_heatmaps, ud_counts
from landscape.figures.training import training_curves

if TYPE_CHECKING:
    from landscape.experiment import ExperimentResult


def experiment_figures(result: ExperimentResult, *, log: bool = False) -> dict[str, go.Figure]:
    """The figures by name: training, sal, sal-distribution, learnable-layers, ud-counts.

    `log` colours SAL (heatmaps, distribution) by log10. The runs are labelled "clean" and by the poison's method
    (one run when the method is "clean").
    """
    r, ud, label = result, result.ud, result.spec.poison.method
    sal = {"clean": r.sal_clean.sal, label: r.sal_poisoned.sal}
    return {
        "training": training_curves({"clean": r.clean.history, label: r.poisoned.history}),
        "sal": sal_heatmaps(sal, r.sal_clean.layers, r.sal_clean.epochs, log=log),
        "sal-distribution": sal_distributions(sal, ud.beta, log=log),
        "learnable-layers": learnable_layers({"clean": ud.flags_clean, label: ud.flags_poisoned},
                                             r.sal_clean.layers, r.sal_clean.epochs),
        "ud-counts": ud_counts({"clean": (ud.epochs_clean, ud.counts_clean),
                                label: (ud.epochs_poisoned, ud.counts_poisoned)},
                               n_layers=len(r.sal_clean.layers), lp={"clean": ud.lp_clean, label: ud.lp_poisoned}),
    }


__all__ = ["experiment_figures"]
