"""Paths a user gives (flags, environment variables, app fields): read, checked and explained in one place.

Every path option and path variable goes through `user_path` (``~`` and ``~user`` expanded, an empty or
unexpandable path refused with a message naming it); what a command will write goes through
`writable_folder` or `writable_file` before any work starts, so a bad store or output folder is reported in
a second, not after an hour of training; `reporting` turns an `OSError` while writing into a `PathError`
naming the path. Nothing here imports torch.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

from landscape.errors import PathError

PROBE_PREFIX = ".ue-landscape-write-check-"  # the file `writable_folder` creates and removes again at once


def user_path(value: str | os.PathLike[str], what: str) -> Path:
    """`value` as a `Path` with ``~``/``~user`` expanded; `what` names it in errors (e.g. "--store").

    Raises:
        PathError: the path is empty (or blank), holds a NUL byte, or names a home folder that does not exist.
    """
    text = os.fspath(value)
    if not text.strip():
        raise PathError(f"{what} is empty; give a path (an empty path would mean the current folder)")
    if "\x00" in text:
        raise PathError(f"{what} {text!r} contains a NUL byte; give a plain path")
    try:
        return Path(text).expanduser()
    except RuntimeError:  # "~nosuchuser/..." or no $HOME
        user = text[1:].split("/", 1)[0]
        whose = f"user {user!r} has no home folder on this machine" if user else "$HOME is not set"
        raise PathError(f"{what} {text!r} cannot be expanded: {whose}; give the path in full") from None


def writable_folder(path: Path, what: str) -> Path:
    """Check that `path` is, or can be created as, a folder this process may write into; return it.

    Nothing is left behind: the check creates and removes one temporary file in `path` or in its nearest
    existing parent (a real write, so read-only mounts, immutable folders and full quotas show up too).

    Raises:
        PathError: `path` (or a parent) is a file, or the folder is not writable.
    """
    if path.exists() and not path.is_dir():
        raise PathError(f"{what} {path} is a file, not a folder; give a folder (it is created if missing)")
    missing = missing_folders(path)
    existing = missing[-1].parent if missing else path  # the nearest existing folder (or the file in the way)
    if not existing.is_dir():
        raise PathError(f"{what} {path} cannot be created: {existing} is a file, not a folder")
    try:
        fd, probe = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=existing)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        where = "" if existing == path else f" (its nearest existing folder {existing})"
        raise PathError(f"{what} {path}{where} is not writable: {err.strerror}; choose another folder or fix "
                        f"its permissions") from None
    return path


def missing_folders(path: Path) -> list[Path]:
    """`path` and those of its parents that do not exist, deepest first (what creating `path` would make).

    A use that creates a folder and then writes nothing removes these again (each only while empty), so a
    failed command leaves no empty folder behind.
    """
    missing = []
    while not path.exists() and path != path.parent:
        missing.append(path)
        path = path.parent
    return missing


@contextlib.contextmanager
def making_folder(path: Path, what: str) -> Iterator[Path]:
    """Create the folder `path` (and its missing parents) for the block; if the block fails, remove them again.

    Only the folders this created are removed, deepest first, each only while empty: what the block wrote stays,
    and so does every folder that was there before.

    Raises:
        PathError: the folder cannot be created.
    """
    created = missing_folders(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PathError(f"cannot create {what} {path}: {err.strerror or err}") from err
    try:
        yield path
    except BaseException:
        for folder in created:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (or gone): nor are its parents
        raise


def writable_file(path: Path, what: str, hint: str = "give a file name inside it, e.g. {path}/out.html") -> Path:
    """Check that `path` can be written as a file (a folder, or a missing folder that can be created, holds it).

    `hint` says what to give instead of a folder (``{path}`` stands for the folder): the file a flag names, or
    the prefix of the files it names.

    Raises:
        PathError: `path` is an existing folder, or its folder cannot be created or written.
    """
    if path.is_dir():
        raise PathError(f"{what} {path} is a folder; {hint.format(path=path)}")
    writable_folder(path.parent, f"the folder of {what}")
    return path


def describe(err: OSError, what: str) -> str:
    """One line: what failed, on which path, and the system's reason."""
    paths = " -> ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    return f"{what}: {err.strerror or err}" + (f": {paths}" if paths else "")


@contextlib.contextmanager
def reporting(what: str) -> Iterator[None]:
    """Turn an `OSError` raised inside into a `PathError` whose one-line message names `what` and the path."""
    try:
        yield
    except OSError as err:
        raise PathError(describe(err, what)) from err
