"""The names a store writes in its folder, and whether a folder is a store (`landscape.store`'s layout).

A store's folder holds stage folders (`valid_name`), each holding entries (folders of `ENTRY_FILES` only) and the
leftovers of writers (`is_leftover`: temporaries ``.tmp-KEY-<32 hex>``, half-discarded ``.trash-*`` entries,
lock files ``.KEY.lock``), and the ``inputs`` folder of data sets handed in (`INPUTS`, content-named ``.npz``
files, `landscape.data.npz.keep`). Nothing marks a store but these, so a folder of other files (a home or
documents folder, a data folder) is told apart by its content (`holds_a_store`); writing there (stage folders
among the user's files, a sweep deleting lock-like names of theirs) is refused (`refuse_a_non_store`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from landscape.errors import NotAStoreError
from landscape.paths import PROBE_PREFIX

META, ARRAYS, SUMS = "meta.json", "arrays.safetensors", "SHA256SUMS"
ENTRY_FILES = (META, ARRAYS, SUMS)

_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
TMP = re.compile(r"^\.tmp-(?P<key>.+)-[0-9a-f]{32}$")
TRASH = re.compile(r"^\.trash-.+-[0-9a-f]{32}$")
LOCK = re.compile(r"^\.(?P<key>.+)\.lock$")
_KEY = re.compile(r"^[0-9a-f]{16}$")  # a stage's key: 16 hex digits (`landscape.config`)
_KEY_LOCK = re.compile(r"^\.[0-9a-f]{16}\.lock$")  # the lock of a stage's key
INPUTS = "inputs"  # the store's folder of data sets handed in (the Python API's arrays, the app's uploads)
_INPUT = re.compile(r"^[0-9a-f]{32}\.npz$")  # one of them, named by its content (`landscape.data.npz.keep`)
_SHOWN = 3  # names of a non-store folder's content an error lists


def valid_name(part: str) -> bool:
    """True if `part` may be a stage or key name: letters, digits, '_', '-', '.' (not first)."""
    return bool(_NAME.match(part)) and not part.startswith(".")


def is_leftover(name: str) -> bool:
    """True if `name` is that of a writer's leftover in a stage folder (a temporary, trash or a lock file)."""
    return bool(TMP.match(name) or TRASH.match(name) or LOCK.match(name))


def _clutter(name: str) -> bool:
    """Files a desktop leaves in any folder it shows (Finder, Explorer, AppleDouble on exFAT/SMB): nobody's data."""
    return name in (".DS_Store", "Thumbs.db", "desktop.ini") or name.startswith("._")


def _children(folder: Path) -> list[Path]:
    """The children of `folder`; none if it cannot be listed (e.g. a writer just removed an emptied stage folder).

    Another process's write check (`landscape.paths.writable_folder`'s probe file, there for an instant) is none.
    """
    try:
        return [p for p in folder.iterdir() if not p.name.startswith(PROBE_PREFIX) and not _clutter(p.name)]
    except OSError:  # vanished, not a folder, or unreadable: nothing of the user's seen there
        return []


def _held(path: Path) -> bool:
    """True if a live process holds the `flock` of the regular file `path` (a store writer computing its key).

    Read-only and non-blocking: the file is opened for reading (never a FIFO or a link), a shared lock tried
    and released at once.
    """
    with contextlib.suppress(OSError):
        if not stat.S_ISREG(path.lstat().st_mode):
            return False
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing releases a lock taken
    return False


def _is_stage_folder(path: Path) -> bool:
    return path.is_dir() and not path.is_symlink() and valid_name(path.name)


def holds_a_store(root: Path) -> bool:
    """True if the existing folder `root` is a store: empty (a new one), or holding what only a store writes.

    That is, a stage folder of it holds a writer's leftover or an entry (a folder of entry files only, with
    SHA256SUMS, a meta.json naming that stage, or a stage key's name: a damaged entry is still a store's), its
    `INPUTS` folder holds a data set handed in, or every child is an empty stage folder (a writer making or
    removing its first entry). A lock file counts only if named by a stage's key (``.<16 hex>.lock``) or held by
    a live writer: ``.build.lock`` in a folder of the user's is not a store's. A folder of other files (a home
    folder, a data folder) is not a store; nothing marks a store but its entries. Writers and `store --gc` ask
    the same question (a stage folder this version no longer writes still marks a store, which gc lists).
    """
    children = _children(root)
    if any(_INPUT.match(p.name) for p in _children(root / INPUTS)):
        return True
    for stage_dir in children:
        if not _is_stage_folder(stage_dir):
            continue
        for item in _children(stage_dir):
            name = item.name
            if TMP.match(name) or TRASH.match(name) or (LOCK.match(name) and (_KEY_LOCK.match(name) or _held(item))):
                return True
            files = {f.name for f in _children(item)} if item.is_dir() and not item.is_symlink() else set()
            if files and files <= set(ENTRY_FILES) and (SUMS in files or _KEY.match(name) or (META in files and (
                    json_object(bytes_or_none(item / META)) or {}).get("stage") == stage_dir.name)):
                return True
    # a child gone since the listing was a writer's (it removes an emptied stage folder), never the user's
    return all(not os.path.lexists(child) or (_is_stage_folder(child) and not _children(child))
               for child in children)


def not_a_store(root: Path) -> str | None:
    """Why `root` is not a store ("ROOT is not a store: it holds a, b, c and 4 more, and no store entry"), or None.

    None when `root` is a store (`holds_a_store`), does not exist or is not a folder (what is wrong then is
    for the caller's own checks to say).
    """
    if not root.is_dir() or holds_a_store(root):
        return None
    names = sorted(p.name for p in _children(root))
    if not names:  # emptied since it was looked at (writers removing their folders): a new store
        return None
    shown = ", ".join(names[:_SHOWN]) + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")
    return f"{root} is not a store: it holds {shown}, and no store entry"


def bytes_or_none(path: Path) -> bytes | None:
    """The bytes of the file `path`, or None if it cannot be read."""
    try:
        return path.read_bytes()
    except OSError:
        return None


def json_object(text: bytes | None) -> dict[str, Any] | None:
    """`text` parsed, if it is a JSON object; else None (absent, unreadable: damaged, not old or new)."""
    try:
        record = json.loads(text) if text is not None else None
    except (ValueError, RecursionError):  # RecursionError: nested too deeply
        return None
    return record if isinstance(record, dict) else None


def refuse_a_non_store(root: Path) -> None:
    """Raise `NotAStoreError` (a `PathError`) if `root` is a folder of other files, not a store (`not_a_store`).

    Raised before anything is written: writing would put stage folders among the user's files, and a store's first
    write sweeps lock-like names.
    """
    why = not_a_store(root)
    if why is not None:
        raise NotAStoreError(f"{why}; nothing there was touched (give a new or empty folder for a new store, or "
                             f"the folder of an existing store)")
