"""Warm-up: once the first page is drawn, import in the background what later pages compute with.

Measured by `bench/app_latency.py` (2-core machine): a page's first visit otherwise pays its imports while the
user waits: pandas and pyarrow for `st.dataframe` (Poison, ~0.35 s), SciPy's `stats` (Curvature's rank agreement,
~0.5 s), scikit-learn's KMeans (UD of the Cross-task table, ~0.3 s). A reader spends seconds on the first page, so
those imports move there, off the first chart's path (`app.py` starts this after the page's script has run) and
off the page switches. Python's per-module import locks make a page that needs a module mid-import wait for it.
The thread waits `DELAY_S` first: an import holds the GIL, and the server is still sending the browser the first
page's chart and its JavaScript.
"""

from __future__ import annotations

import importlib
import threading
import time

import streamlit as st

from landscape import ud

# Streamlit's dataframe dependencies; UD's (`ud.import_dependencies`) follow.
DATAFRAME_MODULES = ("pandas", "pyarrow")
DELAY_S = 1.0


def _import_all() -> None:
    time.sleep(DELAY_S)
    for name in DATAFRAME_MODULES:
        importlib.import_module(name)
    ud.import_dependencies()


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Start the warm-up imports once per server process (a daemon thread); returns the thread."""
    thread = threading.Thread(target=_import_all, name="ue-landscape-warmup", daemon=True)
    thread.start()
    return thread
