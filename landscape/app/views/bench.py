"""The benchmark results shipped in assets/benchmarks: per result its report (Markdown) and one downloadable table."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import streamlit as st

from landscape.app.widgets import frame, json_download, show_table

BENCHMARKS = Path(__file__).resolve().parents[3] / "assets" / "benchmarks"


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


def benchmark_results() -> dict[str, list[Path]]:
    """The shipped results, one per file stem: ``ud_digits_cnn`` -> its CSV, JSON and Markdown files."""
    results: dict[str, list[Path]] = {}
    for path in sorted(BENCHMARKS.iterdir() if BENCHMARKS.is_dir() else ()):
        if path.suffix in (".csv", ".md", ".json"):
            results.setdefault(path.stem, []).append(path)
    return results


def demote_headings(markdown: str, levels: int = 3) -> str:
    """`markdown` with every ATX heading `levels` deeper (at most h6).

    A shipped report's "# title" must not out-shout the page's own title and section headers.
    """
    return re.sub(r"^(#{1,6})(?=\s)", lambda m: "#" * min(6, len(m.group(1)) + levels), markdown, flags=re.M)


def show_result(paths: list[Path]) -> None:
    """Render one result, collapsed: its Markdown report (headings demoted), then one table with its downloads.

    Collapsed because a shipped report runs to tens of thousands of pixels (the regime study's per-setting layer
    tables) and would otherwise bury the rest of the page. The table is the CSV's, else the JSON's rows; a JSON
    beside a CSV (the same rows and a header) or without rows is offered as a download of the whole file, not shown
    as a second table.
    """
    by = {p.suffix: p for p in paths}

    def read(path: Path) -> Any:
        return _read(path, path.stat().st_mtime_ns)  # cached until the file changes

    with st.expander(f"Report and table of {paths[0].stem}", expanded=False):
        if ".md" in by:
            st.markdown(demote_headings(read(by[".md"])))
        if ".csv" in by:
            path = by[".csv"]
            show_table(frame(read(path)), path.stem, key=f"bench-{path.name}")
        if ".json" in by:
            path = by[".json"]
            data = read(path)
            rows = data.get("rows") if isinstance(data, dict) else None
            if rows and ".csv" not in by:
                show_table(rows, path.stem, key=f"bench-{path.name}")
            else:
                json_download(data, f"{path.stem} summary", key=f"bench-{path.name}")
