"""What the Cross-task page reads of a stored probe, once per probe and store: the result and where it comes from.

A page switch or a widget change reruns the page, so the result is kept (a stored result never changes); its
table reads the stored UDs (or, for a probe stored before they were, computes them once into the result).
"""

from __future__ import annotations

import streamlit as st

from landscape.app import engine
from landscape.multitask import CrossTaskResult, CrossTaskSpec
from landscape.stages import crosstask


class _NotStored(Exception):
    """Internal: the probe is not (all) stored; nothing is cached then."""


@st.cache_resource(max_entries=8, show_spinner=False)
def _stored(ct: CrossTaskSpec, root: str) -> CrossTaskResult:
    result = crosstask.load_cross_task(ct, engine.store())
    if result is None:
        raise _NotStored
    return result


def stored(ct: CrossTaskSpec) -> CrossTaskResult | None:
    """The stored result of the probe `ct` (the shipped demo or the user's store), or None if a run is missing."""
    try:
        return _stored(ct, str(engine.store().root))
    except _NotStored:
        return None


@st.cache_data(max_entries=8, show_spinner=False)
def source(ct: CrossTaskSpec, root: str) -> str:
    """Where the stored probe comes from, for the caption."""
    return engine.origin(next(iter(crosstask.run_stages(ct).values())))
