"""`python -m landscape store`: inspect the store; `--gc` removes leftovers, corrupt and old-schema entries.

Without `--gc` (or with `--gc --dry-run`) nothing is removed: the summary says what `--gc` would remove.
What counts as garbage, and why removing it is safe while other processes write, is `Store.gc`'s docstring.
"""

from __future__ import annotations

import argparse

from landscape.commands import COMMANDS, Command
from landscape.commands.common import open_store, print_json, tqdm_progress
from landscape.store import GcReport

_LABELS = {"temporaries": "temporary folder(s) of interrupted writes", "trash": "half-deleted entry folder(s)",
           "locks": "unused lock file(s)", "old_schema": "entry(ies) of an older format or spec schema",
           "corrupt": "corrupt entry(ies)"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gc", action="store_true", help="remove leftovers of crashed writers, corrupt entries and "
                                                     "entries of older schema versions")
    p.add_argument("--dry-run", action="store_true", help="with --gc: only report what would be removed")
    p.add_argument("--store", default=None, help="store folder (default: $UE_LANDSCAPE_STORE or ~/.cache/ue-landscape)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")


def run(a: argparse.Namespace) -> int:
    dry_run = a.dry_run or not a.gc
    store = open_store(a, write=not dry_run)
    with tqdm_progress(disable=a.json) as progress:
        report = store.gc(dry_run=dry_run, progress=lambda done, total: progress("store", done, total))
    if a.json:
        print_json(report.to_dict())
    else:
        print(summary(report))
        if not a.gc and report.removed:
            print("nothing was removed; run with --gc to remove it")
    return 0


def summary(report: GcReport) -> str:
    """The report as a few lines: kept, removed (or to remove) by kind, bytes freed, kernels of the kept entries."""
    verb = "would remove" if report.dry_run else "removed"
    lines = [f"store {report.root}: {report.kept} entr{'y' if report.kept == 1 else 'ies'} kept "
             f"({_mb(report.kept_bytes)}, integrity checked)"]
    if report.removed:
        parts = [f"{count} {_LABELS.get(kind, kind)} ({_mb(size)})" for kind, (count, size) in report.removed.items()]
        lines.append(f"{verb}: " + "; ".join(parts) + f"; {_mb(report.bytes_freed)} "
                     f"{'to free' if report.dry_run else 'freed'}")
    else:
        lines.append(f"{verb}: nothing")
    if report.in_use:
        lines.append(f"left alone: {report.in_use} temporary folder(s)/lock(s) in use by a running writer")
    if report.unknown:
        lines.append(f"left alone: {len(report.unknown)} path(s) that are not the store's, e.g. {report.unknown[0]}")
    for label, count in sorted(report.numerics.items()):
        lines.append(f"computed with {label}: {count} entr{'y' if count == 1 else 'ies'}")
    return "\n".join(lines)


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 10_000 else f"{size} bytes"


COMMANDS.register("store")(Command("inspect the store; --gc removes leftovers, corrupt and old-schema entries",
                                   add_arguments, run))
