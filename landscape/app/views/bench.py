"""The benchmark tables shipped in assets/benchmarks, as downloadable tables (CSV, JSON rows) or text (Markdown)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st

from landscape.app.widgets import frame, json_download, show_table

BENCHMARKS = Path(__file__).resolve().parents[3] / "assets" / "benchmarks"


def benchmark_files(folder: Path = BENCHMARKS) -> list[Path]:
    """Benchmark tables shipped in `folder` (CSV, Markdown or the benchmark's JSON)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".md", ".json"))


@st.cache_data(max_entries=32, show_spinner=False)
def _read(path: Path, mtime_ns: int) -> Any:
    """A benchmark file's content as shown (a DataFrame, the JSON summary, the Markdown text), once per version."""
    if path.suffix == ".csv":
        import pandas

        return pandas.read_csv(path)
    if path.suffix == ".json":
        from landscape.bench import read_summary

        return read_summary(path)
    return path.read_text()


def show_benchmark(path: Path) -> None:
    """Render one benchmark file: CSV and JSON rows as a downloadable table, Markdown as text."""
    data = _read(path, path.stat().st_mtime_ns)
    if path.suffix == ".csv":
        show_table(frame(data), path.stem, key=f"bench-{path.name}")
    elif path.suffix == ".json":
        rows = data.get("rows") if isinstance(data, dict) else None
        if rows:
            show_table(rows, path.stem, key=f"bench-{path.name}")
        else:
            json_download(data, path.stem, key=f"bench-{path.name}")
    else:
        st.markdown(data)
