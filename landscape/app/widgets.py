"""Rendering helpers every page uses: engine errors as `st.error`, downloadable figures and tables, progress."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

import streamlit as st

from landscape import jsontext
from landscape.errors import LandscapeError

if TYPE_CHECKING:
    import pandas as pd
    import plotly.graph_objects as go

T = TypeVar("T")
Progress = Callable[[str, int, int], None]
Rows = Sequence[dict[str, Any]]
LIVE = "_live_runs"  # session key: {"stopped": the status label of a live run Streamlit stopped midway}


@contextlib.contextmanager
def guard(stop: bool = True) -> Iterator[None]:
    """Show an engine error as `st.error` with the engine's message (no stack trace); stop the page."""
    try:
        yield
    except LandscapeError as err:
        st.error(str(err), icon="⚠️")
        if stop:
            st.stop()


def compute_button(label: str, **kwargs: Any) -> bool:
    """`st.button` for a computation; disabled, with the reason as its help, when the store cannot be written.

    So a read-only store (or one that is a file) never offers a computation that could only fail.
    """
    from landscape.app import engine
    from landscape.errors import PathError

    try:
        engine.store().check_readable().check_writable()
    except PathError as err:
        kwargs.update(disabled=True, help=f"Results cannot be saved: {err}")
    return st.button(label, **kwargs)


def slug(text: str) -> str:
    """A file-name-safe, lower-case form of `text`."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "figure"


@st.cache_resource(max_entries=128, show_spinner=False)
def _built(key: tuple[Any, ...], _build: Callable[[], go.Figure]) -> go.Figure:
    return _build()


def figure(key: tuple[Any, ...], build: Callable[[], go.Figure]) -> go.Figure:
    """`build()`, once per `key` in the app's process (a plotly figure takes 0.05-0.5 s to build).

    So a page switch or rerun draws the same figure without building it again.

    `key` must name everything the figure shows (the sidebar's `AppSpec`, the page's options, the figure's name);
    the figure is shared, so nothing may change it after `build` returns.
    """
    return _built(key, build)


def show_figure(fig: go.Figure, name: str, *, key: str | None = None, select: bool = False) -> Any:
    """Render a figure with a download button for a self-contained HTML file (built only on click).

    With `select`, a click selects a point and the page reruns: the Plotly selection event is returned (else None).
    """
    key = key or slug(name)
    selecting = {"on_select": "rerun", "selection_mode": "points"} if select else {}
    event = st.plotly_chart(fig, key=f"fig-{key}", config={"displaylogo": False,
                                                            "toImageButtonOptions": {"filename": slug(name)}},
                            **selecting)
    st.download_button("Download figure (HTML)", data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
                       file_name=f"{slug(name)}.html", mime="text/html", key=f"dl-{key}", on_click="ignore",
                       icon=":material/download:")
    return event if select else None


def frame(rows: Rows | pd.DataFrame) -> pd.DataFrame:
    """A DataFrame of a result object's table rows (pandas is imported on first use: the first chart need not wait)."""
    import pandas

    return rows if isinstance(rows, pandas.DataFrame) else pandas.DataFrame(list(rows))


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The table as CSV or JSON (records) bytes."""
    if fmt == "csv":
        return df.to_csv(index=False).encode()
    if fmt == "json":
        return df.to_json(orient="records", indent=1).encode()
    raise ValueError(f"unknown table format {fmt!r}; valid: csv, json")


def show_table(rows: Rows | pd.DataFrame, name: str, *, key: str | None = None) -> None:
    """Render a table (rows of a result object's `table()`, or a DataFrame) with CSV and JSON downloads (on click)."""
    df, key = frame(rows), key or slug(name)
    st.dataframe(df, hide_index=True, key=f"tbl-{key}")
    left, right = st.columns(2)
    left.download_button("Download CSV", data=lambda: table_bytes(df, "csv"), file_name=f"{slug(name)}.csv",
                         mime="text/csv", key=f"csv-{key}", on_click="ignore", icon=":material/download:")
    right.download_button("Download JSON", data=lambda: table_bytes(df, "json"), file_name=f"{slug(name)}.json",
                          mime="application/json", key=f"json-{key}", on_click="ignore", icon=":material/download:")


def json_download(obj: Any, name: str, *, key: str | None = None) -> None:
    """A JSON download of a plain object (numpy arrays become lists), written only on click."""
    def text() -> str:
        return jsontext.dumps(obj, indent=1)

    st.download_button(f"Download {name} (JSON)", data=text, file_name=f"{slug(name)}.json",
                       mime="application/json", key=f"json-{key or slug(name)}", on_click="ignore",
                       icon=":material/download:")


def eta(first: tuple[float, int], now: float, done: int, total: int) -> float | None:
    """Seconds left at the rate since the stage's `first` report (time, done), or None before it has a rate."""
    if done >= total:
        return 0.0
    (t0, d0) = first
    return None if done <= d0 or now <= t0 else (now - t0) / (done - d0) * (total - done)


class StatusProgress:
    """A `(stage, done, total)` callback drawing one progress bar per stage inside an `st.status` box.

    Each bar shows its steps, the seconds since the run started and its stage's ETA (`eta`: the stage's rate
    since its first report; stages of concurrent chains, `landscape.stages.pool`, have bars and ETAs of their own).
    """

    def __init__(self, box: Any) -> None:
        self.box = box
        self.bars: dict[str, Any] = {}
        self.first: dict[str, tuple[float, int]] = {}
        self.started = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = time.perf_counter()
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = self.box.progress(0.0, text=stage)
            self.first[stage] = (now, done)
        fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
        left = eta(self.first[stage], now, done, total)
        bar.progress(fraction, text=f"{stage}: {done}/{total}  ({now - self.started:.0f} s"
                                    f"{'' if left is None else f', ETA {left:.0f} s'})")


def run_with_progress(label: str, work: Callable[[Progress], T]) -> T | None:
    """Run `work(progress)` inside an `st.status` box with live bars; engine errors become `st.error`.

    Streamlit stops a run (its Stop, a page switch, a changed widget) by raising `StopException` or
    `RerunException` from the next `st` call, i.e. from a progress bar inside `work`; the run's label is then kept
    in the session, so the next script run says that it was stopped (`stopped_notice`). It goes into a dict the
    session already holds: a session-state write is itself such a call, and would raise the stop again unmade.
    """
    from streamlit.runtime.scriptrunner import RerunException, StopException

    live = st.session_state.setdefault(LIVE, {})
    with st.status(label, expanded=True) as box:
        progress = StatusProgress(box)
        try:
            result = work(progress)
        except (StopException, RerunException):
            live["stopped"] = label
            raise
        except LandscapeError as err:
            box.update(label=f"{label}: failed", state="error")
            st.error(str(err), icon="⚠️")
            return None
        box.update(label=f"{label}: done in {time.perf_counter() - progress.started:.1f} s", state="complete",
                   expanded=False)
    return result


def stopped_notice() -> None:
    """Say once, on the script run after it, that a live run was stopped before it finished (`run_with_progress`).

    What it had finished is whole in the store: every entry is written in one step once its stage is done
    (`landscape.store`), and a stopped stage (its worker processes too, `landscape.stages.pool`) writes nothing.
    """
    label = st.session_state.get(LIVE, {}).pop("stopped", None)
    if label is not None:
        st.warning(f"The previous run ({label}) was stopped before it finished (Stop, a page switch or a changed "
                   "setting). Nothing half-computed was kept: the steps it had finished are stored and reused, the "
                   "rest is computed when you start it again.", icon=":material/stop_circle:")


def compute_behind_button(cost: str | Callable[[], str], label: str, key: str, status: str,
                          work: Callable[[Progress], T], *, primary: bool = True) -> T | None:
    """What a page does for a result not stored yet: its cost line and a button; once pressed, `work` with live bars.

    Returns `work`'s result, or None while the button is not pressed, when the cost line or `work` fails (the
    engine's error is shown) or the store cannot be written (the button is disabled, `compute_button`). Once the
    work is done, its cost line and button are cleared, so the page goes on with the result under the status box
    ("done in ... s") instead of offering again what it just computed.

    Args:
        cost: the cost line (or a callable giving it, whose engine errors are shown instead).
        label: the button's label.
        key: the button's widget key.
        status: the status box's label while `work` runs.
        work: the computation, called with the progress callback.
        primary: a primary (highlighted) button.
    """
    slot = st.empty()
    with slot.container():
        try:
            st.info(cost if isinstance(cost, str) else cost())
        except LandscapeError as err:
            st.error(str(err), icon="⚠️")
            return None
        pressed = compute_button(label, key=key, type="primary" if primary else "secondary")
    if not pressed:
        return None
    result = run_with_progress(status, work)
    if result is not None:
        slot.empty()
    return result
