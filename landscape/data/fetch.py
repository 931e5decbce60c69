"""Downloads of the file-backed data sets (CIFAR, MNIST, Fashion-MNIST): fetch, verify, extract under caps.

The only module of the engine that touches the network. Everything it writes goes to a temporary name in the
target folder first and is renamed into place only once complete and checked, so a failure (unreachable URL,
checksum mismatch, hostile or oversized archive) leaves nothing behind but what was already there:

* `fetch` streams a URL (http(s), or file:// for mirrors and tests) to a temporary file, computes its MD5 (as the
  data sets publish it) and SHA-256 (where known) and compares them before the file is used; a download larger
  than `Limits.max_bytes` is cut off and refused.
* `extract_tar` checks every member before anything is extracted: no absolute path, no ``..``, no link, device or
  sparse member, at most `Limits.max_members` members and `Limits.max_bytes` bytes in all (the sizes a tar header
  declares are exactly what extraction writes, so a tar bomb is refused before it is written); an extended (pax,
  long-name) header over `MAX_EXTENDED_BYTES`, or too many of them, is refused before `tarfile` reads it.
* `gunzip` decompresses one ``.gz`` file, refusing it as soon as the output passes `Limits.max_bytes` (a gzip bomb
  expands 1000-fold, so the compressed size says nothing).
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, BinaryIO

from landscape.errors import DataError, SpecError
from landscape.files import hexdigests

_CHUNK = 1 << 20
# Extended tar headers (pax, GNU long names: `_CappedTarInfo`): bytes of one, how many in a row, bytes in all.
MAX_EXTENDED_BYTES, MAX_EXTENDED_RUN, MAX_EXTENDED_TOTAL = 4096, 8, 1 << 20
_EXTENDED = (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME,
             tarfile.GNUTYPE_LONGLINK)


@dataclass(frozen=True)
class Limits:
    """Caps on what one download may write.

    Args:
        max_bytes: most bytes one download, or one archive's extracted contents, may hold (default 1 GiB:
            CIFAR-10 extracts to 178 MB, CIFAR-100 to 161 MB, the MNIST training images to 47 MB).
        max_members: most members a tar archive may have (the CIFAR archives have 8 and 5 files).
    """

    max_bytes: int = 1 << 30
    max_members: int = 1000

    def __post_init__(self) -> None:
        for name in ("max_bytes", "max_members"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise DataError(f"download limit {name} = {value!r} must be a positive integer")


DEFAULT_LIMITS = Limits()

# How a user names a folder of downloaded files, in each front end (the end of every "how to get them" hint).
GIVE_ROOT = ("then give DIR as the data folder: --data-root DIR on the command line, the sidebar's Data folder in "
             "the app, DataSpec(root=DIR) in Python.")


def file_digests(path: Path) -> tuple[str, str]:
    """(MD5, SHA-256) hex digests of a file's bytes."""
    md5, sha = hexdigests(path, "md5", "sha256")
    return md5, sha


def _mismatch(md5: str | None, sha256: str | None, got: tuple[str, str]) -> str | None:
    """None if the digests match every given checksum, else what differs."""
    if md5 and got[0] != md5.lower():
        return f"MD5 mismatch, expected {md5.lower()} but got {got[0]}"
    if sha256 and got[1] != sha256.lower():
        return f"SHA-256 mismatch, expected {sha256.lower()} but got {got[1]}"
    return None


def md5_digest(value: object) -> str:
    """`value` as an MD5 hex digest (32 hex digits, any case), lower-cased; anything else is a `SpecError`.

    Anything else could never match a download, so it is refused before the (possibly large) archive is fetched.
    """
    if not (isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{32}", value)):
        raise SpecError(f"{value!r} is not an MD5 digest; give the 32 hex digits that `md5sum ARCHIVE` prints")
    return value.lower()


def verified(path: Path, md5: str | None, sha256: str | None = None) -> bool:
    """True if `path` is a file whose contents match the given checksums."""
    return path.is_file() and _mismatch(md5, sha256, file_digests(path)) is None


def _copy_capped(read: Callable[[int], bytes], out: BinaryIO, cap: int, digests: Sequence[Any] = (), *,
                 refusal: str) -> None:
    """Copy `read`'s chunks to `out` (and into each hash of `digests`) until it is exhausted.

    Raises:
        DataError: with the message `refusal`, as soon as more than `cap` bytes have come (the chunk that
            passes the cap is not written).
    """
    size = 0
    for chunk in iter(lambda: read(_CHUNK), b""):
        size += len(chunk)
        if size > cap:
            raise DataError(refusal)
        for digest in digests:
            digest.update(chunk)
        out.write(chunk)


@contextmanager
def _temporary(folder: Path, name: str, suffix: str) -> Iterator[Path]:
    """A temporary file path in `folder` (same file system, so `os.replace` is atomic), removed on exit."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(tmp)
    finally:
        Path(tmp).unlink(missing_ok=True)


def by_hand(what: str, folder: Path) -> str:
    """The last sentence of a failed download's message: where to put the file downloaded by hand."""
    return f"Download {what} by hand and put it in {folder}."


def fetch(url: str, target: Path, *, md5: str | None, sha256: str | None = None, what: str,
          limits: Limits = DEFAULT_LIMITS, advise: bool = True) -> Path:
    """Download `url` to `target`, renamed into place only after its checksums match.

    Args:
        url: http(s) or file:// URL.
        target: final path of the file (its folder must exist).
        md5: expected MD5 hex digest (as the data set publishes it), or None.
        sha256: expected SHA-256 hex digest, or None where none is published.
        what: what the file is, for messages ("the CIFAR-10 python-version archive").
        limits: `max_bytes` caps the download's size.
        advise: end the message of a download that cannot be read with where to put the file by hand (`target`'s
            folder); False for a caller that tries several sources and says it once (`by_hand`).

    Raises:
        DataError: the URL cannot be read, the download exceeds the cap, or a checksum differs (nothing is left).
    """
    if not (md5 or sha256):
        raise DataError(f"refusing to download {url} without a checksum to verify it against")
    with _temporary(target.parent, target.name, ".part") as tmp:
        md5_hash, sha_hash = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        try:
            # http(s), or file:// for mirrors and tests, by design
            with urllib.request.urlopen(url, timeout=60) as response, tmp.open("wb") as out:
                _copy_capped(response.read, out, limits.max_bytes, (md5_hash, sha_hash),
                             refusal=f"{url}: the download passed the cap of {limits.max_bytes:,} bytes and was "
                                     f"removed; {what} is smaller (raise the cap with --max-bytes if needed)")
        except (urllib.error.URLError, OSError, ValueError) as err:
            advice = f". {by_hand(what, target.parent)}" if advise else ""
            raise DataError(f"could not download {url}: {err}{advice}") from err
        problem = _mismatch(md5, sha256, (md5_hash.hexdigest(), sha_hash.hexdigest()))
        if problem:
            raise DataError(f"{url}: {problem}; the download is damaged or not {what} and was removed")
        os.replace(tmp, target)
    return target


class _CappedTarInfo(tarfile.TarInfo):
    """A tar header that refuses oversized or endless extended headers (pax, GNU long names) before they are read.

    `tarfile` reads such a header's whole data into memory, runs a regular expression over it that is quadratic in
    its length on this Python (a 290 KB archive with a 300 MB pax header of digits ran for over 11 minutes) and
    recurses once per header of a chain (5,000 chained headers: `RecursionError`). Genuine ones are a few hundred
    bytes, at most a few before each member.
    """

    def _proc_member(self, tar: tarfile.TarFile) -> tarfile.TarInfo:
        if self.type in _EXTENDED:
            run, total = getattr(tar, "_ue_extended", (0, 0))
            run, total = run + 1, total + self.size
            if self.size > MAX_EXTENDED_BYTES or run > MAX_EXTENDED_RUN or total > MAX_EXTENDED_TOTAL:
                raise DataError(f"{tar.name}: refused, its extended (pax or long-name) headers run to one of "
                                f"{self.size:,} bytes, {run} in a row, {total:,} bytes in all; a genuine archive has "
                                f"at most {MAX_EXTENDED_RUN} in a row, of {MAX_EXTENDED_BYTES:,} bytes each, "
                                f"{MAX_EXTENDED_TOTAL:,} in all")
            tar._ue_extended = (run, total)  # type: ignore[attr-defined]
        else:
            tar._ue_extended = (0, getattr(tar, "_ue_extended", (0, 0))[1])  # type: ignore[attr-defined]
        return super()._proc_member(tar)  # type: ignore[misc]


def _checked_members(archive: Path, tar: tarfile.TarFile, limits: Limits) -> list[tarfile.TarInfo]:
    """Every member, after refusing unsafe paths, links, special or sparse files and archives over the caps.

    The members are read one header at a time, so an archive over a cap is refused at the first member past it.
    """
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        name = member.name
        parts = PurePosixPath(name.replace("\\", "/")).parts
        if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or ".." in parts:
            raise DataError(f"{archive}: refused the member {name!r}, whose path leaves the target folder")
        if not (member.isfile() or member.isdir()) or member.issparse():
            raise DataError(f"{archive}: refused the member {name!r}, which is a link or special file")
        members.append(member)
        total += member.size if member.isfile() else 0
        if len(members) > limits.max_members:
            raise DataError(f"{archive}: refused, it has more than {limits.max_members:,} members (the cap; "
                            f"raise it with --max-members if the archive is genuine)")
        if total > limits.max_bytes:
            raise DataError(f"{archive}: refused, its members would extract to more than {limits.max_bytes:,} "
                            f"bytes (the cap; raise it with --max-bytes if the archive is genuine)")
    return members


def extract_tar(archive: Path, root: Path, folder: str, *, complete: Callable[[Path], bool], what: str,
                limits: Limits = DEFAULT_LIMITS) -> Path:
    """Extract the data folder `folder` of a tar archive into ``root/folder``, checked and under caps.

    The archive is extracted into a scratch folder under `root`; `complete(scratch/folder)` must then hold (every
    expected file is there) before the folder is moved into place, replacing an incomplete earlier extraction.

    Raises:
        DataError: the archive is unreadable, has an unsafe member, passes a cap, or lacks the data folder.
    """
    final = root / folder
    scratch = Path(tempfile.mkdtemp(prefix=".extract-", dir=root))
    try:
        try:
            with tarfile.open(archive, "r:*", tarinfo=_CappedTarInfo) as tar:
                members = _checked_members(archive, tar, limits)
                if hasattr(tarfile, "data_filter"):
                    tar.extractall(scratch, members=members, filter="data")
                else:  # pragma: no cover - Python without extraction filters; members were checked above
                    tar.extractall(scratch, members=members)
        except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
            reason = " ".join(str(err).split())  # one line: tarfile puts each method it tried on a line of its own
            raise DataError(f"{archive} is not a readable tar archive ({reason}); delete it and download "
                            f"again") from err
        extracted = scratch / folder
        if not complete(extracted):
            raise DataError(f"{archive} does not contain {folder}/ with every expected file; it is not {what}")
        if final.exists():  # an incomplete earlier extraction
            shutil.rmtree(final)
        os.replace(extracted, final)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return final


def gunzip(source: Path, target: Path, *, limits: Limits = DEFAULT_LIMITS) -> Path:
    """Decompress the gzip file `source` to `target` (via a temporary file), refusing output over the cap.

    Raises:
        DataError: `source` is not gzip data or decompresses to more than `limits.max_bytes` (nothing is left).
    """
    with _temporary(target.parent, target.name, ".part") as tmp:
        try:
            with gzip.open(source, "rb") as f, tmp.open("wb") as out:
                _copy_capped(f.read, out, limits.max_bytes,
                             refusal=f"{source}: refused, it decompresses to more than {limits.max_bytes:,} bytes "
                                     f"(the cap; raise it with --max-bytes if the file is genuine)")
        except (OSError, EOFError, zlib.error) as err:
            raise DataError(f"{source} is not a readable gzip file ({err}); delete it and download again") from err
        os.replace(tmp, target)
    return target
