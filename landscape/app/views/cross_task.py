"""What the Cross-task page reads of a stored probe: the result, where it comes from, and what its table says.

A page switch or a widget change reruns the page, so the result is kept (a stored result never changes); its
table reads the stored UDs (or, for a probe stored before they were, computes them once into the result).
"""

from __future__ import annotations

import streamlit as st

from landscape import multitask
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


def table_notes(rows: list[dict], ct: CrossTaskSpec) -> str:
    """The table's reading: its columns, the computed verdict per method, and whether the paper's finding holds.

    The finding (Fig. 1): UEs crafted against classification collapse it while the other tasks keep their clean
    performance (`multitask.finding_holds`, with the declared thresholds). Said plainly either way, from `rows`.
    """
    notes = ("drop = (clean − poisoned) / clean for accuracy, mIoU and PSNR; (poisoned − clean) / clean for MSE: > 0 "
             "means the poisoned-trained model is worse. UD: β from each task's own clean model. SAL ratio (ours): "
             "mean poisoned SAL / mean clean SAL.")
    if "classify" not in ct.tasks or len(ct.tasks) < 2:
        return notes
    lines = multitask.verdict(rows, ct.methods, ct.tasks)
    holds = [m for m in ct.methods if multitask.finding_holds(rows, m, ct.tasks)]
    fails = [m for m in ct.methods if m not in holds]
    finding = "; ".join(part for part in (f"holds here for {', '.join(holds)}" if holds else "",
                                          f"does not hold here for {', '.join(fails)}" if fails else "") if part)
    return (f"{notes} Verdict (computed; collapses = drop ≥ {100 * multitask.COLLAPSES:.0f} %, keeps = drop < "
            f"{100 * multitask.KEEPS:.0f} %): " + "; ".join(lines) + ". The paper's finding (classification "
            f"collapses while the other tasks keep their clean performance) {finding}.")
