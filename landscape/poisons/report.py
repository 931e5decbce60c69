"""Budget sweeps of the poison methods: the budgets to sweep and a pure figure builder (no computation).

`sweep_budgets(norm, image_shape)` gives the four budgets the benchmark (`bench/ue_budget.py`) sweeps for a
norm; `budget_sweep_figure(rows)` turns the measured rows into a Plotly figure with one
panel per norm, because L∞, L2, L0 and CUDA's blur strength are not on one scale.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

# The L∞ sweep in units of 1/255; the L2 sweep uses the same per-pixel RMS (L2 = sqrt(C*H*W) * level/255),
# so a column of the table compares like with like; L0 counts pixels; CUDA's eps is its blur strength.
LINF_LEVELS = (8, 16, 32, 64)
L0_LEVELS = (1, 2, 4, 8)
BLUR_LEVELS = (0.1, 0.3, 0.6, 1.0)
NORM_ORDER = ("linf", "l2", "l0", "none")
AXIS_TITLES = {
    "linf": "L∞ budget (×1/255)",
    "l2": "L2 budget ([0, 1] scale)",
    "l0": "L0 budget (pixels)",
    "none": "CUDA blur strength",
}


def sweep_budgets(norm: str, image_shape: tuple[int, int, int]) -> list[float]:
    """The four budgets swept for `norm` on images of `image_shape` (C, H, W), on the [0, 1] scale."""
    if norm == "linf":
        return [level / 255 for level in LINF_LEVELS]
    if norm == "l2":
        root = math.sqrt(math.prod(image_shape))
        return [root * level / 255 for level in LINF_LEVELS]
    if norm == "l0":
        return [int(level) for level in L0_LEVELS]
    if norm == "none":
        return list(BLUR_LEVELS)
    raise ValueError(f"unknown norm {norm!r}; valid choices: {', '.join(NORM_ORDER)}")


def axis_value(norm: str, eps: float) -> float:
    """The x coordinate of a budget on its panel (L∞ in units of 1/255, the others as they are)."""
    return eps * 255 if norm == "linf" else eps


def budget_sweep_figure(rows: Sequence[dict[str, Any]]) -> go.Figure:
    """Clean test accuracy against budget, one panel per norm, one line (with ±std bars) per method.

    Args:
        rows: dicts with `method`, `norm` ("linf", "l2", "l0", "none"), `eps` (on the [0, 1] scale, pixels
            for L0, blur for "none"), `acc_mean` and optionally `acc_std`. A row with `method == "clean"`
            is drawn as a dashed horizontal reference line on every panel.

    Returns:
        The figure; traces are named by method, x follows `axis_value`, y is accuracy in [0, 1].
    """
    clean = [r for r in rows if r["method"] == "clean"]
    data = [r for r in rows if r["method"] != "clean"]
    norms = [n for n in NORM_ORDER if any(r["norm"] == n for r in data)] or ["linf"]
    fig = make_subplots(rows=1, cols=len(norms), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[AXIS_TITLES[n] for n in norms])
    for col, norm in enumerate(norms, start=1):
        methods = list(dict.fromkeys(r["method"] for r in data if r["norm"] == norm))
        for method in methods:
            pts = sorted((r for r in data if r["method"] == method and r["norm"] == norm), key=lambda r: r["eps"])
            fig.add_trace(go.Scatter(
                x=[axis_value(norm, r["eps"]) for r in pts], y=[r["acc_mean"] for r in pts],
                error_y={"type": "data", "array": [r.get("acc_std") or 0.0 for r in pts], "visible": True},
                mode="lines+markers", name=method, legendgroup=method,
            ), row=1, col=col)
        fig.update_xaxes(title_text=AXIS_TITLES[norm], type="log" if norm in ("linf", "l2", "l0") else "linear",
                         row=1, col=col)
        if clean:
            fig.add_hline(y=clean[0]["acc_mean"], line_dash="dash", line_color="grey", row=1, col=col,
                          annotation_text="clean" if col == 1 else None)
    fig.update_yaxes(title_text="clean test accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_layout(title="Unlearnable examples: clean test accuracy vs budget", legend_title_text="method",
                      template="plotly_white")
    return fig
