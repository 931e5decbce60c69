"""`python -m landscape store`: inspect the store; `--gc` removes leftovers, corrupt and old-schema entries.

Without `--gc` (or with `--gc --dry-run`) nothing is removed: the summary says what `--gc` would remove, and
names every unusable entry with the reason (a missing file, a checksum mismatch, an older format) and every
path that is not the store's (left alone, e.g. a folder no stage writes). What counts as garbage, and why removing
it is safe while other processes write, is `landscape.store_report.gc`'s docstring. A path given (`--store`,
`$UE_LANDSCAPE_STORE`) where no folder exists is an error (nothing is created there), and so is a folder of other
files with no store entry (`landscape.store_names.not_a_store`; nothing in it is removed); an empty folder, and the
default cache folder not made yet, are an empty store.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from landscape.commands import COMMANDS, Command
from landscape.commands.common import open_store, print_json, tqdm_progress
from landscape.errors import PathError
from landscape.stages.folders import stage_folders
from landscape.store import ENV_VAR
from landscape.store_report import GcReport, gc

_LABELS = {"temporaries": "temporary folder(s) of interrupted writes", "trash": "half-deleted entry folder(s)",
           "locks": "unused lock file(s)", "old_schema": "entry(ies) of an older format or spec schema",
           "old_layout": "entry(ies) of a retired layout no stage reads", "corrupt": "damaged entry(ies)"}
_KINDS = {"corrupt": "damaged", "old_schema": "older format or schema", "old_layout": "retired layout"}
_LISTED = 10  # paths listed per kind in the summary (--json lists them all)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--gc", action="store_true", help="remove leftovers of crashed writers, corrupt entries and "
                                                     "entries of older schema versions")
    p.add_argument("--dry-run", action="store_true", help="with --gc: only report what would be removed")
    p.add_argument("--store", default=None, help="store folder (default: $UE_LANDSCAPE_STORE or ~/.cache/ue-landscape)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a summary")


def run(a: argparse.Namespace) -> int:
    dry_run = a.dry_run or not a.gc
    store = open_store(a, write=False)
    # a folder given that holds no store is an error; the default cache not made yet is an empty store
    if not store.root.is_dir() and (a.store is not None or os.environ.get(ENV_VAR)):
        raise PathError(f"no store at {store.root}: the folder does not exist (nothing was created there); give the "
                        f"folder of an existing store with --store, or set ${ENV_VAR}")
    if not dry_run:
        store.check_writable()
    with tqdm_progress(disable=a.json) as progress:
        report = gc(store, dry_run=dry_run, stages=stage_folders(),
                    progress=lambda done, total: progress("store", done, total))
    if a.json:
        print_json(report.to_dict())
    else:
        print(summary(report))
        if not a.gc and report.removed:
            print("nothing was removed; run with --gc to remove it")
    return 0


def summary(report: GcReport) -> str:
    """The report as lines: kept, removed (or to remove) by kind, bytes freed, kernels of the kept entries.

    Each entry removed (or to remove) is listed with why, and each path left alone, `_LISTED` of a kind at most.
    """
    verb = "would remove" if report.dry_run else "removed"
    if not Path(report.root).is_dir():
        return f"store {report.root}: no store yet (nothing computed here); nothing to inspect"
    lines = [f"store {report.root}: {report.kept} entr{'y' if report.kept == 1 else 'ies'} kept "
             f"({_mb(report.kept_bytes)}, integrity checked)"]
    if report.removed:
        parts = [f"{count} {_LABELS.get(kind, kind)} ({_mb(size)})" for kind, (count, size) in report.removed.items()]
        lines.append(f"{verb}: " + "; ".join(parts) + f"; {_mb(report.bytes_freed)} "
                     f"{'to free' if report.dry_run else 'freed'}")
    else:
        lines.append(f"{verb}: nothing")
    for kind, label in _KINDS.items():
        lines += _listed([f"{label}: {d['path']} ({d['reason']})" for d in report.dropped if d["kind"] == kind])
    if report.in_use:
        lines.append(f"left alone: {report.in_use} temporary folder(s)/lock(s) in use by a running writer")
    lines += _listed([f"left alone, of a newer version of this code: {d['path']} ({d['reason']})"
                      for d in report.newer])
    root = Path(report.root)
    lines += _listed([f"left alone, {'not a stage folder' if Path(p).parent == root else 'not an entry'}: {p}"
                      for p in report.unknown])
    for label, count in sorted(report.numerics.items()):
        lines.append(f"computed with {label}: {count} entr{'y' if count == 1 else 'ies'}")
    return "\n".join(lines)


def _listed(lines: list[str]) -> list[str]:
    """The first `_LISTED` of `lines`, and how many more there are."""
    more = len(lines) - _LISTED
    return lines[:_LISTED] + ([f"... and {more} more (--json lists them all)"] if more > 0 else [])


def _mb(size: int) -> str:
    return f"{size / 1e6:.2f} MB" if size >= 10_000 else f"{size} bytes"


COMMANDS.register("store")(Command("inspect the store; --gc removes leftovers, corrupt and old-schema entries",
                                   add_arguments, run))
