"""Content-addressed on-disk store: one entry per (stage, spec key), JSON metadata + safetensors arrays.

Layout: `<root>/<stage>/<key>/{meta.json, arrays.safetensors}`. An entry is written in a temporary
folder and renamed into place in one step, so readers never see half an entry; `meta.json` records the
SHA-256 of the array file, so a truncated or corrupt entry is detected on load, removed and recomputed,
never served. `get_or_compute` holds a per-key file lock while computing, so two processes (or two app
sessions) asking for the same entry compute it once and both get the same valid entry. Arrays are
stored with safetensors: nothing is ever unpickled.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file, save_file

from landscape.errors import StoreError

ENV_VAR = "UE_LANDSCAPE_STORE"
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


def default_root() -> Path:
    """`$UE_LANDSCAPE_STORE`, else `$XDG_CACHE_HOME/ue-landscape`, else `~/.cache/ue-landscape`."""
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "ue-landscape"


@dataclass(frozen=True)
class Entry:
    """A loaded store entry: the caller's metadata dict and its named numpy arrays."""

    meta: dict[str, Any]
    arrays: dict[str, np.ndarray]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "sklearn": sklearn.__version__}


class Store:
    """A folder of cached results, keyed by stage name and spec hash.

    Args:
        root: the store folder (created on first write); default `default_root()`.
    """

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()

    def path(self, stage: str, key: str) -> Path:
        """Folder of the entry (stage, key); both must be plain names."""
        for part in (stage, key):
            if not _NAME.match(part):
                raise StoreError(f"store names may use letters, digits, '_', '-', '.' only; got {part!r}")
        return self.root / stage / key

    def exists(self, stage: str, key: str) -> bool:
        """True if a complete, valid entry is stored."""
        return self.load(stage, key) is not None

    def load(self, stage: str, key: str) -> Entry | None:
        """The entry, or None if absent; a corrupt entry is removed and None returned."""
        folder = self.path(stage, key)
        if not folder.exists():
            return None
        try:
            record = json.loads((folder / "meta.json").read_text())
            arrays_path = folder / "arrays.safetensors"
            if _sha256(arrays_path) != record["arrays_sha256"]:
                raise StoreError("checksum mismatch")
            arrays = load_file(str(arrays_path))
            return Entry(record["meta"], arrays)
        except Exception:  # noqa: BLE001 - any failure to read means the entry is not usable
            self._discard(folder)
            return None

    def save(self, stage: str, key: str, meta: dict[str, Any], arrays: dict[str, np.ndarray] | None = None,
             *, spec: dict[str, Any] | None = None, seconds: float | None = None) -> Entry:
        """Write an entry atomically; if a valid one appeared meanwhile, keep that one and return it."""
        arrays = {k: np.ascontiguousarray(v) for k, v in (arrays or {}).items()}
        final = self.path(stage, key)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".tmp-{key}-{uuid.uuid4().hex}"
        tmp.mkdir()
        try:
            save_file(arrays, str(tmp / "arrays.safetensors"))
            record = {
                "stage": stage, "key": key, "spec": spec, "meta": meta, "seconds": seconds,
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": _versions(),
                "arrays_sha256": _sha256(tmp / "arrays.safetensors"),
            }
            text = json.dumps(record, indent=1, default=_json_default)
            with open(tmp / "meta.json", "w") as fh:
                fh.write(text)
                fh.flush()
                os.fsync(fh.fileno())
            try:
                os.rename(tmp, final)
            except OSError:
                existing = self.load(stage, key)
                if existing is not None:
                    return existing
                os.rename(tmp, final)  # the old entry was corrupt and has been discarded
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
        loaded = self.load(stage, key)
        if loaded is None:
            raise StoreError(f"store entry {final} could not be read back after writing")
        return loaded

    def get_or_compute(self, stage: str, key: str,
                       compute: Callable[[], tuple[dict[str, Any], dict[str, np.ndarray]]],
                       *, spec: dict[str, Any] | None = None) -> Entry:
        """Load (stage, key), or compute it under a per-key lock, store it and return it."""
        entry = self.load(stage, key)
        if entry is not None:
            return entry
        with self._lock(stage, key):
            entry = self.load(stage, key)  # another process may have finished it while we waited
            if entry is not None:
                return entry
            started = time.perf_counter()
            meta, arrays = compute()
            return self.save(stage, key, meta, arrays, spec=spec, seconds=time.perf_counter() - started)

    def keys(self, stage: str) -> list[str]:
        """Keys of the complete entries of a stage (not validated)."""
        folder = self.root / stage
        if not folder.exists():
            return []
        return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))

    @contextlib.contextmanager
    def _lock(self, stage: str, key: str) -> Iterator[None]:
        folder = self.path(stage, key).parent
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f".{key}.lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    @staticmethod
    def _discard(folder: Path) -> None:
        trash = folder.parent / f".trash-{folder.name}-{uuid.uuid4().hex}"
        with contextlib.suppress(OSError):
            os.rename(folder, trash)
            shutil.rmtree(trash, ignore_errors=True)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"cannot store {type(obj).__name__} in store metadata")
