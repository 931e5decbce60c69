"""Short text of a result for people in a notebook: the pieces of the result classes' `__repr__` and `_repr_html_`.

A result holds arrays; its repr names what it is, its sizes and its headline numbers in a line or two, never the
arrays, from what it holds in memory (no store read, no SAL or UD computed anew). A missing value (None, NaN)
reads "n/a", as in the CLI's text output.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from landscape.spec import plural

NOTES = 3  # UD's notes a table shows (there may be one per epoch)


def number(value: Any, spec: str = ".3g") -> str:
    """`value` formatted by `spec`; "n/a" for None or NaN (an infinite value reads "inf")."""
    if value is None or math.isnan(float(value)):
        return "n/a"
    return format(float(value), spec)


def span(values: Any, spec: str = ".3g") -> str:
    """The range of the finite entries of `values` as "lo..hi" (one value when they are equal), "n/a" if none."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return "n/a"
    lo, hi = format(float(v.min()), spec), format(float(v.max()), spec)
    return lo if lo == hi else f"{lo}..{hi}"


def listed(names: Sequence[Any], most: int = 3, sep: str = ", ") -> str:
    """The first `most` names joined by `sep`, then how many more: ``clean, em, tap + 4 more``."""
    shown = sep.join(map(str, names[:most]))
    return shown + (f" + {len(names) - most} more" if len(names) > most else "")


def clip(text: str, most: int = 60) -> str:
    """The first line of `text`, cut to `most` characters (an ellipsis marks a cut)."""
    line = text.splitlines()[0] if text else ""
    return line if len(line) <= most and line == text else line[:most - 1].rstrip() + "…"


def experiment_title(s: Mapping[str, Any]) -> str:
    """An experiment's setting from its `ExperimentResult.summary()`: ``digits / cnn / em, 30 epochs, SAL preset fast``.

    The title of its reprs, tables and of `python -m landscape run --out` reports.
    """
    return f"{s['dataset']} / {s['model']} / {s['method']}, {plural(s['epochs'], 'epoch')}, SAL preset {s['sal']}"


def experiment_line(s: Mapping[str, Any]) -> str:
    """An experiment in a line from its `ExperimentResult.summary()`: the setting, then UD, β, #LP, accuracies."""
    m = s["method"]
    diverged = [run for run, why in s["diverged"].items() if why]
    return (f"{experiment_title(s)}: UD {number(s['ud'], '.3f')}, β {number(s['beta'])}, #LP "
            f"{number(s['lp_clean'])} clean vs {number(s['lp_poisoned'])} {m}, test acc "
            f"{number(s['clean_test_acc'], '.2f')} clean vs {number(s['poisoned_test_acc'], '.2f')} {m}"
            + (f", {' and '.join(diverged)} diverged" if diverged else ""))


def experiment_rows(s: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The headline numbers of an `ExperimentResult.summary()` as (name, value) rows of a table."""
    m = s["method"]
    ud = number(s["ud"], ".3f") + ("" if s["ud_defined"] else f" ({s['message']})")
    rows = [("UD (#LP poisoned / #LP clean)", ud), ("β (learnable threshold)", number(s["beta"], ".4g")),
            (f"#LP clean / {m}", f"{number(s['lp_clean'])} / {number(s['lp_poisoned'])}"),
            (f"test accuracy clean / {m}", f"{number(s['clean_test_acc'])} / {number(s['poisoned_test_acc'])}"),
            (f"train accuracy clean / {m}", f"{number(s['clean_train_acc'])} / {number(s['poisoned_train_acc'])}"),
            ("W1 of SAL, clean vs poisoned (ours)", number(s["w1_overall"])),
            ("mean SAL ratio, poisoned / clean (ours)", number(s["mean_ratio_overall"])),
            ("layers x epochs", f"{len(s['layers'])} x {len(s['counts_clean'])}")]
    rows += [(f"{run} diverged", str(why)) for run, why in s["diverged"].items() if why]
    notes = list(s["notes"])
    rows += [("note", note) for note in notes[:NOTES]]
    return rows + ([("note", f"+ {len(notes) - NOTES} more (in .ud.notes)")] if len(notes) > NOTES else [])


def grid_table(caption: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """An HTML table of result rows (one dict per row, the first row's keys as header) under `caption`.

    Numbers to 4 significant digits, "n/a" where missing; every text escaped (the page of `run --out`).
    """
    header = list(rows[0]) if rows else []
    head = "".join(f"<th>{html.escape(str(k))}</th>" for k in header)

    def cell(value: Any) -> str:
        return number(value, ".4g") if isinstance(value, float) or value is None else str(value)

    body = "".join("<tr>" + "".join(f"<td>{html.escape(cell(row.get(k)))}</td>" for k in header) + "</tr>"
                   for row in rows)
    return (f"<table><caption>{html.escape(caption)}</caption><thead><tr>{head}</tr></thead><tbody>{body}</tbody>"
            f"</table>")


def html_table(title: str, rows: Iterable[tuple[str, Any]], note: str) -> str:
    """A small HTML table of (name, value) rows under a bold title, `note` below it; every text escaped."""
    body = "".join(f"<tr><td style='text-align:left'>{html.escape(str(k))}</td>"
                   f"<td style='text-align:left'>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return (f"<div><b>{html.escape(title)}</b><table>{body}</table>"
            f"<p style='font-size:smaller'>{html.escape(note)}</p></div>")


__all__ = ["clip", "experiment_line", "experiment_rows", "experiment_title", "grid_table", "html_table", "listed",
           "number", "span"]
