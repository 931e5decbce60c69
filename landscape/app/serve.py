"""`python -m landscape.app.serve [streamlit options]`: `streamlit run app.py`, the engine imported meanwhile.

`make app` runs this. The first page's script run used to begin by importing the engine (torch, the stage layer,
Plotly: about 1-1.5 s on a 2-core machine), while the server had sat idle during the second or so in which the
browser fetched and started Streamlit's frontend. Here a thread imports the engine from the moment the server starts,
so the first page finds it imported (or waits, through Python's module lock, for the rest of an import in flight).
Measured with `bench/app_latency.py` (its `first_chart_serve_s`, side by side with `streamlit run app.py`).

The two threads import disjoint modules: Streamlit, its server and runtime are imported here first, in the main
thread, and the engine never imports Streamlit. Nothing else changes: same app, options and configuration as
`streamlit run app.py`, which stays a valid way to open the app.

One thing differs, on purpose: Streamlit starts a server in its legacy multipage mode when a `pages/` folder sits
next to the main script, until the first `st.navigation` call. On a fresh server, the first request for a page
(a bookmarked page, or a tab reconnecting after `make app` restarted the server) then runs that page's file
without app.py, and `landscape.app.state` reruns it through app.py's navigation: two runs. The launcher leaves
that mode before the first session starts, as `st.navigation` would, so the first run is app.py's. (Under either
command no "Page not found" dialog opens: each page's URL is its file's name, as the legacy mode names it,
`landscape.app.pages.Page.url_path`.)
"""

from __future__ import annotations

import importlib
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parents[2] / "app.py"
ENGINE = ("landscape.study", "landscape.figures")  # what the pages compute and draw with (torch, stages, Plotly)


def _import_engine() -> None:
    try:
        for name in ENGINE:
            importlib.import_module(name)
    except Exception:  # noqa: BLE001 (the page's own import raises it again, where the app shows it)
        pass


def leave_legacy_pages_mode() -> None:
    """Route every request through app.py's `st.navigation` from the first one (see the module docstring)."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if hasattr(PagesManager, "uses_pages_directory"):
        PagesManager.uses_pages_directory = False


def main(argv: list[str] | None = None) -> None:
    """Start the preload thread, then Streamlit's `run` command on app.py with `argv` (default: the command line)."""
    import streamlit.runtime  # noqa: F401 (Streamlit's server side, imported before the engine thread starts)
    import streamlit.web.server  # noqa: F401
    from streamlit.web import cli

    leave_legacy_pages_mode()
    threading.Thread(target=_import_engine, name="ue-landscape-preload", daemon=True).start()
    cli.main(["run", str(APP), *(sys.argv[1:] if argv is None else argv)], prog_name="streamlit")


if __name__ == "__main__":
    main()
