"""Data identity for cache keys: a content hash of the files a file-backed data set reads.

A data set registered with `files=` metadata (a function `DataSpec -> list[Path]`) is identified by the
SHA-256 of its files' contents, so a changed, replaced or truncated file changes every key that depends on
the data and is read again. Hashing is cached per process by (path, size, mtime), so asking again is cheap;
a file rewritten in place with the same size and mtime is not seen (as with make and rsync).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING

from landscape.errors import DataError
from landscape.files import hexdigests

if TYPE_CHECKING:
    from landscape.config import DataSpec

_CACHE: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike[str]) -> str:
    """SHA-256 of one file's bytes, cached by (resolved path, size, mtime in ns)."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror or exc}") from None
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _CACHE:
        _CACHE[key] = hexdigests(path, "sha256")[0]
    return _CACHE[key]


def files_fingerprint(paths: list[Path]) -> str:
    """16-hex-digit hash of the files' contents and paths below their common folder, in the given order.

    Files in one folder are identified by their names (the folder itself may move); files in sub-folders by
    their relative paths, so moving an image from one class folder to another changes the fingerprint.
    """
    digest = hashlib.sha256()
    absolute = [os.path.abspath(p) for p in paths]
    common = os.path.commonpath([os.path.dirname(p) for p in absolute]) if paths else ""
    for path in absolute:
        digest.update(f"{Path(os.path.relpath(path, common)).as_posix()}\0{file_sha256(path)}\0".encode())
    return digest.hexdigest()[:16]


def data_fingerprint(spec: DataSpec) -> str | None:
    """The content fingerprint of the files behind `spec`, or None for a data set that reads no files."""
    from landscape.data import DATASETS

    files = DATASETS.meta(spec.name).get("files")
    return None if files is None else files_fingerprint(list(files(spec)))
