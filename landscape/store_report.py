"""A store checked entry by entry, and its garbage collection (`python -m landscape store`).

`gc` looks at every child of every stage folder: a writer's leftover (`Store.leftover`: removed when nobody
holds its key), an entry (verified as loading verifies it, `landscape.store.read_record`; an unusable one is
listed with the reason and removed), or anything else (listed in `unknown`, never touched). Given `stages`, the
folders this code's stages write (`landscape.stages.folders.stage_folders`), a top-level folder not among them is
listed in `unknown` and never read or touched, and an intact entry its folder's test calls retired (a layout no
stage reads any more) is removed like one of an older spec schema. An entry of a newer store format or spec
schema (written by a newer version of this code sharing the store) is listed in `newer` and left alone.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from landscape.config import SCHEMA_VERSION
from landscape.errors import StoreError
from landscape.store import (
    ENTRY_FILES,
    NewerFormat,
    OldFormat,
    Store,
    Unusable,
    discard_folder,
    read_record,
    size_of,
    valid_name,
)
from landscape.store_names import not_a_store

Retired = Callable[[dict[str, Any]], str | None]  # why an intact entry (its meta.json record) is dead, or None


@dataclass
class GcReport:
    """What `gc` found and removed (or, with `dry_run`, would remove); sizes in bytes.

    `removed` maps a category (temporaries, trash, locks, old_schema, old_layout, corrupt) to [count, bytes];
    `dropped` lists each entry removed, as {"path", "kind" (its category), "reason"}; `in_use` counts temporaries
    and locks skipped because a live writer holds their key's lock; `unknown` lists paths that are not the
    store's and were left alone; `newer` lists, as {"path", "reason"}, intact entries of a newer store format or
    spec schema, left alone; `numerics` counts the kept entries per numeric environment (kernels'
    instruction sets and mode) that computed them.
    """

    root: str
    dry_run: bool
    kept: int = 0
    kept_bytes: int = 0
    removed: dict[str, list[int]] = field(default_factory=dict)
    dropped: list[dict[str, str]] = field(default_factory=list)
    in_use: int = 0
    unknown: list[str] = field(default_factory=list)
    newer: list[dict[str, str]] = field(default_factory=list)
    numerics: dict[str, int] = field(default_factory=dict)

    @property
    def bytes_freed(self) -> int:
        return sum(size for _, size in self.removed.values())

    def add(self, category: str, size: int) -> None:
        count, total = self.removed.get(category, [0, 0])
        self.removed[category] = [count + 1, total + size]

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "dry_run": self.dry_run, "kept": self.kept, "kept_bytes": self.kept_bytes,
                "removed": self.removed, "bytes_freed": self.bytes_freed, "dropped": self.dropped,
                "in_use": self.in_use, "unknown": self.unknown, "newer": self.newer, "numerics": self.numerics}


def gc(store: Store, *, dry_run: bool = False, stages: Mapping[str, Retired] | None = None,
       progress: Callable[[int, int], None] | None = None) -> GcReport:
    """Remove what is not a usable entry from `store`'s own folder; return what was kept and removed.

    A folder that is not a store (`landscape.store_names.not_a_store`: files and folders, none a store's) is
    refused with `StoreError` before anything in it is read or removed.

    Removes writers' leftovers nobody holds (`Store.leftover`) and every entry that is damaged (integrity
    check, a missing file), of an older store format or spec schema (`landscape.config.SCHEMA_VERSION`), or
    retired (below). Only the store's own names are touched; anything else is listed in `unknown`.

    Args:
        store: the store; its read-only snapshots are not looked at.
        dry_run: report only, remove nothing.
        stages: the stage folders this code writes, each with its retired test (`Retired`); a top-level folder
            not among them is listed in `unknown` and left alone. None: every folder of the root is a stage's.
        progress: called as `progress(done, total)` over the items looked at.
    """
    report = GcReport(str(store.root), dry_run)
    if not store.root.is_dir():
        return report
    why = not_a_store(store.root)
    if why is not None:
        raise StoreError(f"{why}; nothing there was removed (give the folder of a store; an empty folder is an "
                         f"empty store)")
    now = time.time()
    folders = []
    for stage_dir in sorted(store.root.iterdir()):
        if (stage_dir.is_dir() and not stage_dir.is_symlink() and valid_name(stage_dir.name)
                and (stages is None or stage_dir.name in stages)):
            folders.append(stage_dir)
        else:
            report.unknown.append(str(stage_dir))
    items = [item for stage_dir in folders for item in sorted(stage_dir.iterdir())]
    for done, item in enumerate(items, 1):
        stage = item.parent.name
        found = store.leftover(stage, item, dry_run=dry_run, now=now)
        if found is None:
            _check_entry(stage, item, report, dry_run=dry_run, retired=None if stages is None else stages[stage])
        elif found[0] == "in_use":
            report.in_use += 1
        else:
            report.add(*found)
        if progress is not None:
            progress(done, len(items))
    if not dry_run:
        for stage_dir in folders:
            with contextlib.suppress(OSError):
                stage_dir.rmdir()  # only if it is now empty
    return report


def _check_entry(stage: str, item: Path, report: GcReport, *, dry_run: bool, retired: Retired | None) -> None:
    """Verify the entry `item` of `stage`: count it as kept, or record why it is unusable and remove it."""
    name = item.name
    if name.startswith(".") or not item.is_dir() or item.is_symlink() or not valid_name(name):
        report.unknown.append(str(item))
        return
    try:
        present = {p.name for p in item.iterdir()}
    except FileNotFoundError:
        return  # removed meanwhile (dropped by a reader)
    if not present & set(ENTRY_FILES) or present - set(ENTRY_FILES):
        report.unknown.append(str(item))  # not (only) an entry of ours: leave it
        return
    size = size_of(item)
    try:
        inode = item.stat().st_ino
    except OSError:
        return  # removed meanwhile (dropped by a reader)
    try:
        record = read_record(item, stage, name)
    except NewerFormat as err:
        report.newer.append({"path": str(item), "reason": str(err)})
        return
    except OldFormat as err:
        kind, reason = "old_schema", str(err)
    except Unusable as err:
        kind, reason = "corrupt", str(err)
    except Exception as err:  # noqa: BLE001 - same rule as loading: unreadable is damaged
        kind, reason = "corrupt", f"{type(err).__name__}: {err}"
    else:
        schema = record.get("schema")
        if isinstance(schema, int) and schema > SCHEMA_VERSION:
            report.newer.append({"path": str(item), "reason": f"spec schema {schema}, written by a newer version "
                                                              f"(this code reads {SCHEMA_VERSION})"})
            return
        kind, reason = _stale(record, retired)
        if kind is None:
            report.kept += 1
            report.kept_bytes += size
            environment = record.get("environment")  # a hand-made or foreign entry may hold anything here
            label = numerics_label(environment if isinstance(environment, dict) else {})
            report.numerics[label] = report.numerics.get(label, 0) + 1
            return
    report.add(kind, size)
    report.dropped.append({"path": str(item), "kind": kind, "reason": reason})
    if not dry_run:
        discard_folder(item, inode)


def _stale(record: dict[str, Any], retired: Retired | None) -> tuple[str, str] | tuple[None, None]:
    """(category, reason) if the intact entry of `record` is of an older spec schema or retired, else (None, None)."""
    if record.get("schema") != SCHEMA_VERSION:
        return "old_schema", f"spec schema {record.get('schema')!r}, this code reads {SCHEMA_VERSION}"
    why = retired(record) if retired is not None else None
    return ("old_layout", why) if why else (None, None)


def numerics_label(environment: dict[str, Any]) -> str:
    """A short label of the kernels that computed an entry, e.g. "ATen AVX512, oneDNN avx512_core_amx"."""
    if not environment:
        return "unrecorded"
    label = f"ATen {environment.get('aten_capability', '?')}, oneDNN {environment.get('onednn_isa', '?')}"
    if environment.get("mkl_cbwr"):
        label += f", MKL_CBWR {environment['mkl_cbwr']}"
    return label + (" (reproducible mode)" if environment.get("reproducible") else "")
