"""Warm-up: while no page is running, import in the background what later pages compute with.

Measured by `bench/app_latency.py` (2-core machine): a page's first visit otherwise pays its imports while the
user waits: pandas and pyarrow for `st.dataframe` (Poison, ~0.35 s). A reader spends seconds on a page, so those
imports move into that time, off the first chart's path and off the page switches. No page imports SciPy or
scikit-learn to show a stored result (every UD shown is stored, the Cross-task table's too: `TaskUDStage`), so
they are left to the live computations that need them (`landscape.ud.import_dependencies`).

An import holds the GIL, so the thread imports one module at a time and only once no page's script has run for
`IDLE_S` (`app.py` marks every run with `page_run`), `FIRST_IDLE_S` before the first import: after the first
page's run the browser is still fetching and drawing its charts from this server.

A page run that starts while a module is being imported waits for that import to end (`_importing`): Python's
module lock only makes an `import` wait, while code that merely looks into `sys.modules` sees the half-imported
module. Plotly does that for pandas (`pd.Series` in its array checks), and a page built during the warm-up's
pandas import failed with "partially initialized module 'pandas' has no attribute 'Series'" (seen in 2 of 9
browser tours that clicked the next page as soon as one was drawn).
"""

from __future__ import annotations

import importlib
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

MODULES = ("pandas", "pyarrow")  # Streamlit's dataframe dependencies
IDLE_S = 0.5
FIRST_IDLE_S = 2.0  # the floor app draws its chart ~1 s after its script has run (bench/results/app_latency.md)
_lock = threading.Lock()
_importing = threading.Lock()  # held by the warm-up while it imports one module
_import = importlib.import_module
_running = 0  # page script runs in progress, over every session
_last_end = 0.0  # time.monotonic() when the last one ended


@contextmanager
def page_run() -> Iterator[None]:
    """Mark one page's script run (also when it stops or reruns); the first run to end starts the warm-up."""
    global _running, _last_end
    with _lock:
        _running += 1  # from here on no import starts (`_import_all` starts one only while no page runs)
    with _importing:
        pass  # one already started ends first
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            _last_end = time.monotonic()
        start()


def _acquire_when_idle(seconds: float) -> None:
    """Take `_importing` once no page has run for `seconds`, atomically with that check (under `_lock`)."""
    while True:
        with _lock:
            if _running == 0 and time.monotonic() - _last_end >= seconds:
                _importing.acquire()
                return
        time.sleep(0.05)


def _import_all() -> None:
    for i, name in enumerate(MODULES):
        _acquire_when_idle(FIRST_IDLE_S if i == 0 else IDLE_S)
        try:
            _import(name)
        finally:
            _importing.release()


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Start the warm-up imports once per server process (a daemon thread); returns the thread."""
    thread = threading.Thread(target=_import_all, name="ue-landscape-warmup", daemon=True)
    thread.start()
    return thread
