"""Content-addressed on-disk store: one entry per (stage, spec key), JSON metadata + safetensors arrays.

Layout: `<root>/<stage>/<key>/{meta.json, arrays.safetensors, SHA256SUMS}`.

- **Integrity.** `SHA256SUMS` (the `sha256sum` format, so `sha256sum -c SHA256SUMS` checks an entry by hand)
  holds the SHA-256 of the exact bytes of `meta.json` and of `arrays.safetensors`; it is the entry's one
  integrity record. `meta.json` names its stage, key, store format and spec schema. Loading recomputes both
  digests and requires the record to be byte-identical to what they give, so any changed byte of any of the
  three files (a flipped bit, a truncation, a hand edit, an entry copied under another key) makes the entry
  corrupt. A `decode(entry)` hook turns the entry into the caller's result object; any exception there (a
  missing tensor, a wrong shape or type: an entry that is intact but not what this code can read) is
  corruption too. A corrupt entry is dropped with a `StoreWarning` naming stage and key, and recomputed by
  `get_or_compute`: never served, never a crash. An entry of a newer store format (a newer version of this
  code sharing the store) is neither served nor dropped: loading it from the store's own folder raises
  `StoreError` saying so, and a read-only snapshot's is skipped with a warning.
- **Atomic writes.** An entry is written in a temporary folder, every file fsynced, and renamed into place in
  one step, so readers never see half an entry; a writer killed mid-write leaves only a `.tmp-*` folder. Every
  file of an entry gets the mode a plain `open()` gives (0666 less the umask), the arrays included.
- **One computation per key.** `get_or_compute` (and `save`) hold a per-key lock file (`flock`), so two
  processes, or two app sessions, asking for the same entry compute it once and both get the same entry.
- **Garbage.** `sweep()` removes what crashed writers leave (temporaries, half-discarded entries, unused lock
  files); a process's first write to a stage sweeps that stage's folder of those untouched for an hour
  (`SWEEP_AGE`). Checking every entry and removing the unusable ones is `landscape.store_report.gc` (`python -m
  landscape store`). A folder of other files is no store: writing there is refused (`landscape.store_names`).
- **Layers.** A store may read from read-only snapshots first (folders of entries exactly as a store writes
  them, e.g. the app's shipped demo); it never writes or deletes there.
- **No pickles.** Arrays are safetensors, metadata JSON: loading never executes anything. Loading does not
  import torch (the app's demo path reads entries without it).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import shutil
import stat
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np
from safetensors.numpy import load_file, save_file

from landscape.config import SCHEMA_VERSION
from landscape.errors import PathError, StoreError
from landscape.files import hexdigests
from landscape.paths import missing_folders, user_path, writable_folder
from landscape.reproducible import pinned
from landscape.store_names import (
    ARRAYS,
    ENTRY_FILES,
    LOCK,
    META,
    SUMS,
    TMP,
    bytes_or_none,
    is_leftover,
    json_object,
    refuse_a_non_store,
    valid_name,
)

ENV_VAR = "UE_LANDSCAPE_STORE"
# 3: SHA256SUMS covers meta.json and the arrays (format 2 checked the arrays only, from inside meta.json).
FORMAT = 3
SWEEP_AGE = 3600.0  # seconds: temporaries and locks untouched this long are swept by the first write to their stage

T = TypeVar("T")
Decode = Callable[["Entry"], T]


class StoreWarning(UserWarning):
    """A store entry is not served as it should be.

    It was unusable (corrupt, undecodable, of an old or a newer format) and was skipped (see `load`), or, in
    reproducible mode, it is served though it was computed without that mode.
    """


class Unusable(Exception):
    """Why a stored entry cannot be served (the message says why): damaged, incomplete, or not what this code reads."""


class OldFormat(Unusable):
    """The entry is complete in the layout of an older store format (not damaged: written before `FORMAT`)."""


class NewerFormat(Unusable):
    """The entry was written by a newer version of this code (a store format above `FORMAT`): not ours to judge."""


def default_root() -> Path:
    """`$UE_LANDSCAPE_STORE`, else `$XDG_CACHE_HOME/ue-landscape`, else `~/.cache/ue-landscape` (unset = empty)."""
    if os.environ.get(ENV_VAR):
        return user_path(os.environ[ENV_VAR], f"${ENV_VAR}")
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.environ.get("HOME") or "~", ".cache")
    return user_path(cache, "$XDG_CACHE_HOME" if os.environ.get("XDG_CACHE_HOME") else "the cache folder") \
        / "ue-landscape"


@dataclass(frozen=True)
class Entry:
    """A loaded store entry: the caller's metadata dict and its named numpy arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]


def _sums(meta_digest: str, arrays_digest: str) -> bytes:
    """The exact bytes of a SHA256SUMS record (`sha256sum` format: digest, two spaces, file name)."""
    return f"{meta_digest}  {META}\n{arrays_digest}  {ARRAYS}\n".encode()


def size_of(path: Path) -> int:
    """Bytes under `path` (a file or a folder); 0 if it vanished meanwhile."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())
        return path.lstat().st_size
    return 0


def _fsync_write(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


_held = threading.local()  # the lock files this thread holds (the key lock is re-entrant within a thread)
_swept: set[tuple[Path, str]] = set()  # (store root, stage folder) swept by this process
_once_guard = threading.Lock()  # guards `_swept` and `_unpinned_noted`, the things done once per process
_unpinned_noted: set[Path] = set()  # store folders that served this process an entry computed outside reproducible mode


class Store:
    """A folder of cached results, keyed by stage name and spec hash.

    Args:
        root: the store folder (created on first write); default `default_root()`. Checked by
            `landscape.paths.user_path` (an empty or unexpandable path is refused).
        snapshots: read-only store folders asked before `root` (e.g. the app's shipped demo, `landscape.demo`):
            an entry found there is served as is; everything computed is written to `root` only; `keys`, the
            garbage collection (`landscape.store_report.gc`) and dropping corrupt entries concern `root` only.
    """

    def __init__(self, root: str | Path | None = None, *, snapshots: Sequence[str | Path] = ()) -> None:
        self.root = user_path(root, "the store") if root is not None else default_root()
        self.snapshots = tuple(user_path(p, "a store snapshot") for p in snapshots)

    def check_writable(self) -> Store:
        """Raise `PathError` unless entries can be written (the root is, or can be made, a writable folder).

        A folder of other files, not a store, is refused first (`landscape.store_names.refuse_a_non_store`).
        """
        refuse_a_non_store(self.root)
        writable_folder(self.root, "the store")
        return self

    def check_readable(self) -> Store:
        """Raise `PathError` if the root exists and is not a folder (a missing store just holds nothing)."""
        if self.root.exists() and not self.root.is_dir():
            raise PathError(f"the store {self.root} is a file, not a folder; give a folder (it is created if "
                            f"missing)")
        return self

    def path(self, stage: str, key: str, root: Path | None = None) -> Path:
        """Folder of the entry (stage, key) in `root` (default: the store's own folder); both must be plain names."""
        for part in (stage, key):
            if not valid_name(part):
                raise StoreError(f"store names may use letters, digits, '_', '-', '.' (not first) only; got {part!r}")
        return (self.root if root is None else root) / stage / key

    def exists(self, stage: str, key: str) -> bool:
        """True if a complete, valid entry is stored (an unusable one is dropped)."""
        return self.load(stage, key) is not None

    @overload
    def load(self, stage: str, key: str, decode: None = None) -> Entry | None: ...

    @overload
    def load(self, stage: str, key: str, decode: Decode[T]) -> T | None: ...

    def load(self, stage: str, key: str, decode: Decode[T] | None = None) -> Entry | T | None:
        """The entry (or `decode(entry)`, which must not return None), or None if absent.

        The read-only snapshots are asked first, then the store's own folder. An entry that fails its integrity
        check, or whose `decode` raises anything, is skipped with a `StoreWarning` naming stage and key (and,
        in the store's own folder, dropped); None is returned when no layer has a usable entry. An entry of a
        newer store format raises `StoreError` in the store's own folder (it is left as is) and is skipped in a
        snapshot.
        """
        found = self._find(stage, key, decode)
        return None if found is None else found[1]

    def origin(self, stage: str, key: str) -> Path | None:
        """The folder (a snapshot's or the store's own root) that serves (stage, key), or None if none does."""
        found = self._find(stage, key, None)
        return None if found is None else found[0]

    def _find(self, stage: str, key: str, decode: Decode[T] | None) -> tuple[Path, Entry | T] | None:
        for root in (*self.snapshots, self.root):
            folder = self.path(stage, key, root)
            try:
                inode = folder.stat().st_ino
            except (FileNotFoundError, NotADirectoryError):  # absent, or a root that is a file: nothing stored
                continue
            try:
                entry = self._read(folder, stage, key)
                return root, entry if decode is None else decode(entry)
            except NewerFormat as err:
                if root == self.root:  # not ours to drop, and its folder is taken: stop, naming what to do
                    raise StoreError(f"store entry {folder} was written by a newer version of UE Landscape ({err}); "
                                     f"it is left as is: upgrade, or use another store (--store, or ${ENV_VAR})"
                                     ) from None
                warnings.warn(f"store entry {stage}/{key} in {root} was written by a newer version ({err}); "
                              "skipped (read-only snapshot)", StoreWarning, stacklevel=3)
            except Exception as err:  # noqa: BLE001 - any failure to read or decode means the entry is not usable
                reason = str(err) if isinstance(err, Unusable) else f"cannot be decoded: {type(err).__name__}: {err}"
                writable = root == self.root
                warnings.warn(f"store entry {stage}/{key} in {root} is unusable ({reason}); "
                              f"{'dropped, it will be recomputed' if writable else 'skipped (read-only snapshot)'}",
                              StoreWarning, stacklevel=3)
                if writable:
                    discard_folder(folder, inode)
        return None

    def save(self, stage: str, key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
             *, spec: dict[str, Any] | None = None, seconds: float | None = None) -> Entry:
        """Write an entry atomically; if a valid one exists already, keep that one and return it."""
        from landscape.device import numeric_environment

        arrays = {k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()}
        final = self.path(stage, key)
        record = {
            "stage": stage, "key": key, "format": FORMAT, "schema": SCHEMA_VERSION, "spec": spec, "meta": meta,
            "seconds": seconds, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "environment": numeric_environment(),
        }
        text = json.dumps(record, indent=1, default=_json_default).encode()  # before any file: a bad value fails here
        with self._lock(stage, key):
            existing = self.load(stage, key)
            if existing is not None:
                return existing
            tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex}"
            try:
                tmp.mkdir()
                _fsync_write(tmp / META, text)
                save_file(arrays, str(tmp / ARRAYS))
                # safetensors creates its file 0600 (a temporary's mode); give it meta.json's, i.e. what open() gives
                os.chmod(tmp / ARRAYS, stat.S_IMODE((tmp / META).stat().st_mode))
                with open(tmp / ARRAYS, "rb+") as fh:
                    os.fsync(fh.fileno())
                _fsync_write(tmp / SUMS, _sums(hashlib.sha256(text).hexdigest(), hexdigests(tmp / ARRAYS, "sha256")[0]))
                _fsync_dir(tmp)
                os.rename(tmp, final)
                _fsync_dir(final.parent)
            except OSError as err:  # disk full, quota, permissions changed since the command's check
                raise StoreError(f"cannot write the store entry {final}: {err.strerror or err}") from err
            finally:
                if tmp.exists():
                    shutil.rmtree(tmp, ignore_errors=True)
        loaded = self.load(stage, key)
        if loaded is None:
            raise StoreError(f"store entry {final} could not be read back after writing")
        return loaded

    @overload
    def get_or_compute(self, stage: str, key: str, compute: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray]]],
                       *, spec: dict[str, Any] | None = None, decode: None = None) -> Entry: ...

    @overload
    def get_or_compute(self, stage: str, key: str, compute: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray]]],
                       *, spec: dict[str, Any] | None = None, decode: Decode[T]) -> T: ...

    def get_or_compute(self, stage: str, key: str,
                       compute: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray]]],
                       *, spec: dict[str, Any] | None = None, decode: Decode[T] | None = None) -> Entry | T:
        """Load (stage, key) (decoded by `decode` if given), or compute it under the key's lock, store and return it.

        An unusable stored entry (see `load`) is recomputed. If the entry just computed cannot be decoded,
        that is a bug in `compute` or `decode`, not corruption: `StoreError` is raised.
        """
        value = self.load(stage, key, decode)
        if value is not None:
            return value
        with self._lock(stage, key):
            value = self.load(stage, key, decode)  # another process may have finished it while we waited
            if value is not None:
                return value
            started = time.perf_counter()
            meta, arrays = compute()
            entry = self.save(stage, key, meta, arrays, spec=spec, seconds=time.perf_counter() - started)
        if decode is None:
            return entry
        try:
            return decode(entry)
        except Exception as err:
            raise StoreError(f"store entry {stage}/{key} was just computed but cannot be decoded "
                             f"({type(err).__name__}: {err}); this is a bug, please report it") from err

    def discard(self, stage: str, key: str) -> None:
        """Remove the entry (stage, key) from this store's own folder (snapshots are read-only); absent: nothing."""
        with self._lock(stage, key):
            discard_folder(self.path(stage, key))

    def keys(self, stage: str) -> list[str]:
        """Keys of the complete entries of a stage (not validated)."""
        folder = self.root / stage
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    def sweep(self, *, min_age: float = 0.0, stages: Collection[str] | None = None) -> None:
        """Remove the leftovers of writers (`leftover`) untouched for `min_age` seconds from the stage folders.

        Those of `stages` (None: every folder of the root with a stage's name). A stage folder this empties is
        removed too; nothing that is not a leftover is touched.
        """
        if not self.root.is_dir():
            return
        now = time.time()
        for stage_dir in sorted(self.root.iterdir()):
            if (stage_dir.is_dir() and not stage_dir.is_symlink() and valid_name(stage_dir.name)
                    and (stages is None or stage_dir.name in stages)):
                items = sorted(stage_dir.iterdir())
                found = [self.leftover(stage_dir.name, item, min_age=min_age, now=now) for item in items]
                if any(kind and kind[0] != "in_use" for kind in found):
                    with contextlib.suppress(OSError):
                        stage_dir.rmdir()  # only if it is now empty

    def leftover(self, stage: str, item: Path, *, dry_run: bool = False, min_age: float = 0.0,
                 now: float | None = None) -> tuple[str, int] | None:
        """If `item`, a child of the folder of `stage`, is a writer's leftover: remove it (unless `dry_run`), say what.

        Leftovers are temporaries of writers that died (`.tmp-KEY-*` whose key nobody holds locked), half-discarded
        entries (`.trash-*`) and lock files nobody holds; removing them is safe while other processes write.
        Returns (category, bytes), the category "temporaries", "trash" or "locks"; ("in_use", 0) for one left
        alone (its key's lock is held by a live writer, or it was modified less than `min_age` seconds ago);
        None if `item` is not a leftover (or has vanished).
        """
        name = item.name
        if not is_leftover(name):
            return None
        try:
            age = (time.time() if now is None else now) - item.lstat().st_mtime
        except FileNotFoundError:
            return None
        if min_age > 0 and age < min_age:
            return "in_use", 0
        tmp, lock = TMP.match(name), LOCK.match(name)
        category, key = ("temporaries", tmp["key"]) if tmp else ("locks", lock["key"]) if lock else ("trash", None)
        size = size_of(item)
        if key is None or not valid_name(key):
            if not dry_run:
                _remove(item)
            return category, size
        with self._try_lock(stage, key, remove=category == "locks" and not dry_run) as free:
            if not free:
                return "in_use", 0
            if not dry_run and category == "temporaries":
                _remove(item)
        return category, size

    # ------------------------------------------------------------------------------------------------ internals

    def _read(self, folder: Path, stage: str, key: str) -> Entry:
        """The verified entry in `folder`; raises `Unusable` (or whatever reading raises) if it is not usable."""
        record = read_record(folder, stage, key)
        _note_unpinned(folder.parent.parent, stage, key, record.get("environment") or {})
        return Entry(record["meta"], load_file(str(folder / ARRAYS)))

    def _sweep_once(self, stage: str) -> None:
        """On a process's first write to `stage`: refuse a root of other files, sweep that stage's folder only.

        The root is checked by `refuse_a_non_store`; the sweep removes the temporaries and locks untouched for
        `SWEEP_AGE` of the folder of `stage` (a name a stage writes), no other folder of the root.
        """
        root = self.root.resolve()
        with _once_guard:
            if (root, stage) in _swept:
                return
            refuse_a_non_store(self.root)
            _swept.add((root, stage))
        with contextlib.suppress(OSError):
            self.sweep(min_age=SWEEP_AGE, stages=(stage,))

    def _lock_path(self, stage: str, key: str) -> Path:
        return self.path(stage, key).parent / f".{key}.lock"

    @contextlib.contextmanager
    def _lock(self, stage: str, key: str) -> Iterator[None]:
        """Hold the key's lock file (re-entrant within a thread; other threads and processes wait)."""
        path = self._lock_path(stage, key)
        held: set[Path] = _held.__dict__.setdefault("paths", set())
        if path in held:
            yield
            return
        self._sweep_once(stage)
        created = missing_folders(self.root)
        try:
            fh = _acquire(path, blocking=True)
        except OSError as err:
            raise StoreError(f"cannot write to the store at {self.root}: {err.strerror or err}") from err
        held.add(path)
        try:
            yield
        finally:
            # No use leaves its lock file, nor a failed one (bad data, Ctrl-C) an empty stage or store folder (rmdir
            # fails on one holding entries). Removing them while held is safe: a waiter that then gets the old inode
            # sees that the path no longer names it and locks afresh (`_acquire` recreates the folders).
            with contextlib.suppress(OSError):
                path.unlink()
                path.parent.rmdir()
                for folder in created:  # and the store folder (and parents) this use made, if nothing was written
                    folder.rmdir()
            held.discard(path)
            fh.close()  # closing releases the flock

    @contextlib.contextmanager
    def _try_lock(self, stage: str, key: str, *, remove: bool) -> Iterator[bool]:
        """Take the key's lock if nobody holds it (yield True), else yield False; `remove` deletes the lock file."""
        path = self._lock_path(stage, key)
        if path in _held.__dict__.get("paths", set()):
            yield False
            return
        fh = _acquire(path, blocking=False, create=False)
        if fh is None:
            yield not path.exists()
            return
        try:
            yield True
            if remove:
                # unlinking while holding it is safe: a waiter that then gets the old inode sees that the path
                # no longer names it and locks afresh (see `_acquire`)
                with contextlib.suppress(OSError):
                    path.unlink()
        finally:
            fh.close()


def _note_unpinned(root: Path, stage: str, key: str, environment: dict[str, Any]) -> None:
    """In reproducible mode, say once per store folder and process that it serves entries computed without the mode.

    The kernels are not part of a key (see `landscape.reproducible`), so such an entry answers the same question
    with another machine's rounding; served silently, a "reproducible" run would mix the two unseen.
    """
    if not pinned() or environment.get("reproducible"):
        return
    with _once_guard:
        if root in _unpinned_noted:
            return
        _unpinned_noted.add(root)
    warnings.warn(f"reproducible mode: store entry {stage}/{key} in {root} was computed without it (ATen kernels "
                  f"{environment.get('aten_capability', 'unknown')}); it is served as is, and so is every such "
                  f"entry there: for pinned numbers throughout, use a store of their own (--store, or ${ENV_VAR})",
                  StoreWarning, stacklevel=5)


def read_record(folder: Path, stage: str, key: str) -> dict[str, Any]:
    """The record (meta.json) of the entry (stage, key) in `folder`, after checking the integrity of the whole entry.

    Raises `OldFormat` for a complete entry of an older store format, `NewerFormat` for one of a newer format,
    `Unusable` (naming what is wrong: the missing files of an incomplete entry, the files whose checksum differs,
    ...) for any other unusable entry, or whatever reading raises. meta.json is read and parsed once.
    """
    meta_bytes = bytes_or_none(folder / META)
    record = json_object(meta_bytes)
    found_format = record.get("format") if record is not None else None
    if not isinstance(found_format, int) or isinstance(found_format, bool):
        found_format = None
    if found_format is not None and found_format > FORMAT:  # first: a newer format may lay out its files otherwise
        raise NewerFormat(f"store format {found_format}, written by a newer version (this code writes {FORMAT})")
    missing = [name for name in ENTRY_FILES if not (folder / name).is_file()]
    # format 2 had no "format" field (its arrays' digest was inside meta.json) and no SHA256SUMS
    older = record is not None and ("arrays_sha256" in record if found_format is None else found_format < FORMAT)
    if SUMS in missing and META not in missing and older:
        raise OldFormat(f"no {SUMS}: written by an older store format")
    if missing or meta_bytes is None:
        raise Unusable(f"incomplete entry: {', '.join(missing) or META} missing")
    sums = (folder / SUMS).read_bytes()
    meta_digest, arrays_digest = hashlib.sha256(meta_bytes).hexdigest(), hexdigests(folder / ARRAYS, "sha256")[0]
    if sums != _sums(meta_digest, arrays_digest):
        bad = [name for name, digest in ((META, meta_digest), (ARRAYS, arrays_digest))
               if f"{digest}  {name}\n".encode() not in sums]
        raise Unusable(f"checksum mismatch: {', '.join(bad) or SUMS}")
    if record is None:
        raise Unusable(f"{META} is not a JSON object")
    found = (record.get("stage"), record.get("key"), record.get("format"))
    if found != (stage, key, FORMAT):
        raise Unusable(f"record is for stage/key/format {found}, expected {(stage, key, FORMAT)}")
    if not isinstance(record.get("meta"), dict):
        raise Unusable("record has no metadata object")
    return record


def discard_folder(folder: Path, inode: int | None = None) -> None:
    """Move an entry out of the way (atomically) and delete it; skip it if `folder` is no longer `inode`."""
    with contextlib.suppress(OSError):
        if inode is not None and folder.stat().st_ino != inode:
            return  # someone replaced it with a fresh entry meanwhile
        trash = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex}"
        os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)


def _acquire(path: Path, *, blocking: bool, create: bool = True) -> Any:
    """Open and flock `path`; retry until the locked file is still the one at `path` (it may have been removed).

    Returns the open file (closing it releases the lock), or None when not `blocking` and it is held (or
    absent and not `create`).
    """
    while True:
        try:
            if create:
                path.parent.mkdir(parents=True, exist_ok=True)  # (again: gc may remove an empty stage folder)
            fh = open(path, "a" if create else "r")  # noqa: SIM115 - the caller closes it to release the lock
        except FileNotFoundError:
            if create:
                continue
            return None
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
        except OSError as err:
            fh.close()
            if err.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                return None
            raise
        try:
            same = os.stat(path).st_ino == os.fstat(fh.fileno()).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fh
        fh.close()
        if not create:
            return None


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in store metadata")
