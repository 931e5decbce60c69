"""Progress bars for `(stage, done, total)` callbacks: one tqdm bar per stage (the CLI on stderr, notebooks too).

When stderr is not a terminal (redirected to a file, a pipe, CI logs) bars would write carriage returns and cursor
escapes into it, one bar over the other with several stages at once; there each stage gets plain lines instead:
``stage: done/total`` when it starts, at every tenth of the way and when it ends.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def _plain(stream: Any) -> Any:
    """The `(stage, done, total)` callback writing plain lines (start, each tenth, end) to `stream`."""
    shown: dict[str, int] = {}  # stage -> the last tenth written

    def progress(stage: str, done: int, total: int) -> None:
        tenth = 10 if total <= 0 or done >= total else 10 * done // total
        if shown.get(stage, -1) < tenth:
            shown[stage] = tenth
            print(f"{stage}: {done}/{total}", file=stream, flush=True)

    return progress


@contextmanager
def tqdm_progress(disable: bool = False, *, notebook: bool = False) -> Iterator[Any]:
    """A `(stage, done, total)` progress callback drawing one tqdm bar per stage on stderr.

    With `notebook`, `tqdm.auto` picks the notebook widget when one is available (plain text bars otherwise).
    Where stderr is not a terminal (and no notebook widget is drawn) the progress is plain lines (module doc).
    """
    if notebook:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    widget = any(c.__module__ == "tqdm.notebook" for c in tqdm.__mro__)
    if not disable and not widget and not _is_terminal(sys.stderr):
        yield _plain(sys.stderr)
        return
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
