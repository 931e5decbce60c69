"""Shared style of the figures: one colour per run name, shared colour ranges, log scales."""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import numpy as np

CLEAN = "clean"
# One colour per run name, stable across figures: clean is always blue, poisons follow plotly's palette.
PALETTE = ("#d62728", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#7f7f7f")
_CLEAN_COLOR = "#1f77b4"
SEQUENTIAL = "Viridis"
DIVERGING = "RdBu_r"


_NEUTRAL = {"shared": "#555555", "interp": "#555555", "init": "#7f7f7f", "center": "#555555"}
# The shipped UE methods keep one colour each on every page, whichever others a figure holds (a colour by slot among
# a figure's names made `ops` red beside clean on the SAL page and orange beside `em` in the UD-over-seeds chart):
# the poisoned run of the demo (`em`) is red everywhere, as before.
METHOD_COLORS = {"em": PALETTE[0], "ops": PALETTE[1], "lsp": PALETTE[2], "tap": PALETTE[3], "random": PALETTE[4],
                 "ar": PALETTE[5], "rem": PALETTE[6], "hypo": PALETTE[7], "cuda": "#637939"}
# Other names (a user's own method, a method added later without an entry here) take a colour no method above uses,
# chosen from the name alone, so it too is the same in every figure.
_OTHERS = ("#393b79", "#8c6d31", "#843c39", "#7b4173", "#6b6ecf", "#b5cf6b")


def color_of(name: str) -> str:
    """The colour of run `name`, the same in every figure.

    Blue for clean, grey for non-runs, a fixed colour per shipped UE method, else one of `_OTHERS` picked by the
    name's CRC-32. Non-runs are labels such as a shared plane or the initialisation.
    """
    if name == CLEAN:
        return _CLEAN_COLOR
    if name in _NEUTRAL:
        return _NEUTRAL[name]
    if name in METHOD_COLORS:
        return METHOD_COLORS[name]
    return _OTHERS[zlib.crc32(name.encode()) % len(_OTHERS)]


def shared_range(*arrays: np.ndarray | None, log: bool = False) -> tuple[float, float]:
    """(min, max) over the finite values of all arrays (after log10 if `log`), for one shared colour scale."""
    values = [np.asarray(a, dtype=float).ravel() for a in arrays if a is not None]
    flat = np.concatenate(values) if values else np.zeros(0)
    if log:
        flat = np.log10(flat[flat > 0])
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        return 0.0, 1.0
    lo, hi = float(flat.min()), float(flat.max())
    return (lo, hi) if hi > lo else (lo - 0.5, hi + 0.5)


def scaled(z: np.ndarray, log: bool) -> np.ndarray:
    """`z` as floats, log10 of it if `log` (non-positive values become NaN: blank cells, not -inf)."""
    z = np.asarray(z, dtype=float)
    if not log:
        return z
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z > 0, np.log10(np.where(z > 0, z, 1.0)), np.nan)


def zlabel(label: str, log: bool) -> str:
    """The axis title of a value shown on a log scale or not."""
    return f"log10 {label}" if log else label


MAX_EPOCH_TICKS = 12  # axes up to this epoch get a tick per epoch


def epoch_axis(last_epoch: int) -> dict[str, object]:
    """An epoch x-axis running to `last_epoch`: whole-number ticks, one per epoch for short runs.

    `last_epoch` is the largest epoch shown, not how many points there are: a 30-epoch run measured every 5
    epochs has 6 points and keeps Plotly's automatic ticks. With `tickformat="d"` alone, Plotly's automatic
    ticks on a 1-3 epoch run fall at half epochs and read "0, 1, 1, 2, 2"; up to `MAX_EPOCH_TICKS` every epoch
    gets its own tick instead.
    """
    axis: dict[str, object] = {"title": "epoch", "tickformat": "d"}
    if last_epoch <= MAX_EPOCH_TICKS:
        axis["dtick"] = 1
    return axis


def last_epoch(*epochs: Sequence[float] | np.ndarray) -> int:
    """The largest epoch in any of the `epochs` arrays (0 when all are empty), for `epoch_axis`."""
    return max((int(np.max(e)) for e in epochs if len(e)), default=0)
