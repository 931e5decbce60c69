"""Files: atomic writes (a reader sees the old file or the whole new one, never half of it) and content digests."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

_BLOCK = 1 << 20  # bytes read at a time while hashing: a file of any size hashes in constant memory


def hexdigests(path: str | os.PathLike[str], *algorithms: str) -> tuple[str, ...]:
    """Hex digests of one file's bytes, one per hashlib algorithm name ("sha256", "md5", ...), in one read.

    Uncached (`landscape.data.fingerprint.file_sha256` caches by size and mtime; the store must not, or a file
    corrupted in place would pass its check); OSError propagates.
    """
    digests = [hashlib.new(name, usedforsecurity=False) for name in algorithms]
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            for digest in digests:
                digest.update(block)
    return tuple(d.hexdigest() for d in digests)


def atomic_write(path: str | os.PathLike[str], data: bytes | str) -> Path:
    """Write `data` to a temporary name beside `path`, then rename it over `path` (created folders included)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
