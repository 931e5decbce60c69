"""What the SAL page draws inside the selected layer: SAL per output channel, clean beside poisoned (issue #13).

Per-channel SAL (`landscape.sal.channel_sal`) moves each output channel's weights (a filter or a neuron) alone,
within the relative ball of that channel, every other weight frozen, with the layer SAL's spec (the sidebar's
preset) at the layer SAL's epochs. It is asked of the stage layer (`ChannelSALStage`, one entry per run and
layer), so a result computed by the CLI, the Python API or another session is served here; otherwise the page
shows a cost line and a button.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st

from landscape import figures
from landscape.app import cost, engine, widgets
from landscape.app.state import AppSpec
from landscape.app.views.curvature import runs_of
from landscape.errors import LandscapeError


def channel_stages(spec: AppSpec, layer: str) -> dict[str, Any]:
    """The `ChannelSALStage` of `layer` for both runs of `spec` by run label (raises for an unknown layer)."""
    from landscape.config import SALSpec
    from landscape.stages.channels import ChannelSALStage

    sal = SALSpec.preset(spec.sal)
    return {run: ChannelSALStage.of(spec.data(), spec.model_spec(), spec.train(), p, sal, layer)
            for run, p in runs_of(spec).items()}


def channels_ready(spec: AppSpec, layer: str) -> bool:
    """Per-channel SAL of `layer` is stored for both runs of `spec`."""
    try:
        stages = channel_stages(spec, layer)
    except LandscapeError:
        return False
    return all(engine.stored(s) for s in stages.values())


def channel_traces(spec: AppSpec, layer: str, progress: widgets.Progress | None = None) -> dict[str, Any]:
    """The per-channel `SALTrace` of `layer` for both runs of `spec` (the runs are trained first if not stored)."""
    from landscape.stages.base import Context, no_progress

    ctx = Context(engine.store(), engine.device(), progress or no_progress)
    return {run: stage.get(ctx) for run, stage in channel_stages(spec, layer).items()}


@st.cache_data(max_entries=32, show_spinner=False)
def stored_channels(spec: AppSpec, layer: str) -> dict[str, Any]:
    """`channel_traces(spec, layer)` served from the store (computed without progress if absent)."""
    return channel_traces(spec, layer)


def channel_table(traces: Mapping[str, Any], layer: str) -> list[dict[str, Any]]:
    """Rows run x epoch x channel of per-channel SAL (`SALTrace.table`), with the layer and the channel index."""
    channel = {name: c for t in traces.values() for c, name in enumerate(t.layers)}  # "<layer>[c]" -> c
    return [{**row, "layer": layer, "channel": channel[row["layer"]]} for run, t in traces.items()
            for row in t.table(run)]


def channel_view(spec: AppSpec, study: Any, layer: str, *, variant: str, log: bool) -> None:
    """Per-channel SAL of `layer` as channel x epoch heatmaps, clean beside poisoned, with its table.

    Args:
        spec: the sidebar spec (its method is the poisoned run).
        study: the experiment's `Study` (its layer SAL's measured seconds price the computation).
        layer: the selected layer.
        variant: "loss" (SAL) or "accuracy" (accuracy SAL, pp), as the page's layer heatmap.
        log: log10 colour scale.
    """
    st.subheader(f"Inside {layer}: SAL per output channel")
    st.caption("Each output channel (filter or neuron) of the layer moves alone, within a ball of radius 5% of "
               "that channel's own weight norm, every other weight frozen; otherwise as the layer SAL. A layer that "
               "is flat as a whole can still hold channels that learn.")
    if not channels_ready(spec, layer) and widgets.compute_behind_button(
            lambda: cost.channel_sal_line(spec, layer, study), "Compute per-channel SAL", "sal_channels_run",
            "Per-channel SAL", lambda p: channel_traces(spec, layer, p), primary=False) is None:
        return
    with widgets.guard(stop=False):
        traces = stored_channels(spec, layer)
        values = {run: (t.sal if variant == "loss" else t.acc_variant) for run, t in traces.items()}
        epochs = next(iter(traces.values())).epochs
        widgets.show_figure(figures.channel_heatmaps(values, layer, epochs, log=log, label=f"{variant} SAL"),
                            f"sal-channels-{layer}-{spec.method}-{variant}")
        widgets.show_table(channel_table(traces, layer), f"sal-channels-{layer}-{spec.method}")
