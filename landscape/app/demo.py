"""The shipped demo bundle (assets/demo) and the demo/live source picker of the pages."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from landscape.errors import LandscapeError


@st.cache_resource(show_spinner=False)
def _demo_at(folder: str, stamp: float) -> Any:
    from landscape.commands.demo import load_bundle

    return load_bundle(folder)


def demo() -> Any:
    """The shipped demo bundle (`landscape.commands.demo.Demo`), or None if missing; loaded once per file version.

    Shared across sessions: treat it as read-only.
    """
    from landscape.commands.demo import MANIFEST, demo_dir

    folder = demo_dir()
    path = folder / MANIFEST
    stamp = path.stat().st_mtime if path.exists() else 0.0
    try:
        return _demo_at(str(folder), stamp)
    except LandscapeError as err:
        st.warning(str(err))
        return None


def source_picker(page: str, live_ready: bool | None = None) -> str:
    """"demo" (the shipped precomputed results) or "live" (the sidebar spec), as a radio on the page."""
    options = ["demo", "live"]
    labels = {"demo": "Shipped demo (instant)", "live": "Live run (sidebar spec)"}
    key = f"source_{page}"
    if key not in st.session_state:
        st.session_state[key] = "live" if live_ready else "demo"
    if demo() is None:
        st.warning("The shipped demo is missing (assets/demo); run `python -m landscape demo` to rebuild it.")
        st.session_state[key] = "live"
    return st.radio("Results", options, format_func=labels.get, key=key, horizontal=True)


def comparable(dataset: str, model: str) -> Any:
    """The demo if it used `dataset` and `model` (its timings then price a live run), else None."""
    d = demo()
    if d is None or d.manifest["plan"]["data"]["name"] != dataset or d.manifest["plan"]["model"]["name"] != model:
        return None
    return d


def epoch_seconds(dataset: str, model: str) -> float | None:
    """Seconds per training epoch measured when the demo was built, if it used the same data set and model."""
    d = comparable(dataset, model)
    seconds = [h["seconds"] for h in d.histories.values() if "seconds" in h] if d is not None else []
    return float(np.median(np.concatenate(seconds))) if seconds else None


def sal_seconds(dataset: str, model: str) -> float | None:
    """Seconds of SAL per epoch (fast preset) measured when the demo was built, if comparable."""
    d = comparable(dataset, model)
    if d is None or not d.sal:
        return None
    return float(np.median(np.concatenate([t.seconds for t in d.sal.values()])))


def surfaces(kind: str, dims: int) -> tuple[Any, str]:
    """The demo's `SurfaceSet` for (kind, dims) and the poisoned run the page compares with, or (None, "")."""
    d = demo()
    sset = None if d is None else d.surfaces.get(f"{kind}-{dims}d")
    if sset is None:
        return None, ""
    choices = d.methods
    poisoned = (st.selectbox("Poisoned run of the demo", choices, key="demo_poisoned") if len(choices) > 1
                else choices[0])
    return sset, poisoned


def label() -> str:
    d = demo()
    if d is None:
        return "no demo"
    plan = d.manifest["plan"]
    return (f"{plan['data']['name']} / {plan['model']['name']} / clean + {', '.join(plan['methods'])} / "
            f"{plan['train']['epochs']} epochs, built by `{d.manifest['command']}`")


def parameter_paths(method: str) -> dict[str, Any] | None:
    """The demo's toy-model parameter paths, clean vs `method`."""
    d = demo()
    if d is None or method not in d.paths:
        return None
    return {"epochs": d.path_epochs, "clean": d.paths["clean"], "poisoned": d.paths[method], "names": d.path_names,
            "model": f"{d.manifest['plan']['paths_model']['name']}, the paper's toy model", "method": method}
