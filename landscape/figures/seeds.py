"""UD over seeds: every seed's value, the mean ± sample std, and the point value a page shows beside them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from landscape.figures.style import color_of


def ud_seed_spread(values: Mapping[str, Sequence[float | None]], *, point: Mapping[str, float] | None = None,
                   title: str = "UD over seeds") -> go.Figure:
    """One column per method: a marker per seed, the mean with a ±1 sample-std bar, and the shown point value.

    Args:
        values: method -> UD per seed (None/NaN = undefined, left out and counted in the hover text).
        point: method -> the UD value shown elsewhere on the page (e.g. the single run), drawn as a diamond.
        title: figure title; the seed count of each method is in its column label.
    """
    names = list(values)
    fig = go.Figure()
    for name in names:
        v = np.asarray([np.nan if x is None else float(x) for x in values[name]], dtype=float)
        finite = v[np.isfinite(v)]
        label = f"{name} (n={finite.size})"
        color = color_of(name)
        fig.add_trace(go.Scatter(x=[label] * finite.size, y=finite, mode="markers", name=f"{name}: seeds",
                                 marker=dict(color=color, size=9, opacity=0.6),
                                 hovertemplate=f"{name}<br>UD %{{y:.3f}}<extra>one seed</extra>"))
        if finite.size > 1:
            fig.add_trace(go.Scatter(x=[label], y=[finite.mean()], mode="markers", name=f"{name}: mean ± std",
                                     marker=dict(color=color, size=14, symbol="line-ew-open", line=dict(width=3)),
                                     error_y=dict(type="data", array=[finite.std(ddof=1)], visible=True),
                                     hovertemplate=f"{name}<br>mean %{{y:.3f}} ± {finite.std(ddof=1):.3f} "
                                                   f"({finite.size} seeds)<extra></extra>"))
        if point is not None and name in point and np.isfinite(point[name]):
            fig.add_trace(go.Scatter(x=[label], y=[float(point[name])], mode="markers", name=f"{name}: this run",
                                     marker=dict(color="black", size=12, symbol="diamond-open", line=dict(width=2)),
                                     hovertemplate=f"{name}<br>this run: UD %{{y:.3f}}<extra></extra>"))
    fig.add_hline(y=1.0, line=dict(color="black", dash="dash"), annotation_text="clean = 1")
    fig.update_layout(title=title, yaxis_title="UD", height=380, showlegend=False)
    return fig


__all__ = ["ud_seed_spread"]
