"""Progress bars for `(stage, done, total)` callbacks: one tqdm bar per stage (the CLI on stderr, notebooks too)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


@contextmanager
def tqdm_progress(disable: bool = False, *, notebook: bool = False) -> Iterator[Any]:
    """A `(stage, done, total)` progress callback drawing one tqdm bar per stage on stderr.

    With `notebook`, `tqdm.auto` picks the notebook widget when one is available (plain text bars otherwise).
    """
    if notebook:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, disable=disable, leave=True)
        bar.total = total
        bar.n = done
        bar.refresh()

    try:
        yield progress
    finally:
        for bar in bars.values():
            bar.close()
