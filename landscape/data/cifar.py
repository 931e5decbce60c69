"""CIFAR-10 and CIFAR-100 from the official "python version" files in a local folder.

The loader reads the standard layouts, offline:

* CIFAR-10: ``cifar-10-batches-py/`` with ``data_batch_1`` .. ``data_batch_5``, ``test_batch`` and
  ``batches.meta`` (class names under ``b'label_names'``, labels under ``b'labels'``).
* CIFAR-100: ``cifar-100-python/`` with ``train``, ``test`` and ``meta`` (class names under
  ``b'fine_label_names'``, labels under ``b'fine_labels'``).

The files are pickles, so they are read only through `_RestrictedUnpickler`, which resolves nothing but
the handful of NumPy globals that array reconstruction needs; any other global (``os.system``,
``builtins.eval``, ...) is refused with a `DataError` before anything runs. Before that, a file nesting deeper
than `landscape.pickles.MAX_DEPTH` is refused (unpickling it could crash the interpreter), and a batch's arrays
must fit in its file: an array whose shape claims more bytes than the file holds (a forged shape, or a view
with zero strides) is refused before anything that size is allocated.

`download` fetches and verifies the official archive and extracts it safely, through `landscape.data.fetch`.
"""

from __future__ import annotations

import io
import os
import pickle
import reprlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape.data.fetch import DEFAULT_LIMITS, GIVE_ROOT, Limits, extract_tar, fetch, md5_digest, verified
from landscape.data.imageset import ImageSet, Splits
from landscape.errors import DataError, SpecError, UnknownNameError
from landscape.paths import making_folder, user_path
from landscape.pickles import check_nesting

_SIDE = 32
_PIXELS = 3 * _SIDE * _SIDE  # 3072 bytes per image: 1024 R, then 1024 G, then 1024 B, each row-major


@dataclass(frozen=True)
class _Layout:
    """Where one CIFAR variant keeps what, and where to get it."""

    name: str  # "cifar10" / "cifar100"
    title: str  # "CIFAR-10" / "CIFAR-100"
    num_classes: int
    folder: str  # folder inside the archive
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    names_key: bytes
    labels_key: bytes
    archive: str
    url: str
    md5: str

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)


_LAYOUTS: dict[str, _Layout] = {
    "cifar10": _Layout(
        name="cifar10",
        title="CIFAR-10",
        num_classes=10,
        folder="cifar-10-batches-py",
        train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
        test_file="test_batch",
        meta_file="batches.meta",
        names_key=b"label_names",
        labels_key=b"labels",
        archive="cifar-10-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        md5="c58f30108f718f92721af3b95e74349a",
    ),
    "cifar100": _Layout(
        name="cifar100",
        title="CIFAR-100",
        num_classes=100,
        folder="cifar-100-python",
        train_files=("train",),
        test_file="test",
        meta_file="meta",
        names_key=b"fine_label_names",
        labels_key=b"fine_labels",
        archive="cifar-100-python.tar.gz",
        url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        md5="eb9058c3a382ffc7106e4002c42a8d85",
    ),
}


def _layout_for_classes(num_classes: int) -> _Layout:
    for layout in _LAYOUTS.values():
        if layout.num_classes == num_classes:
            return layout
    raise SpecError(f"CIFAR num_classes = {num_classes!r} must be 10 (CIFAR-10) or 100 (CIFAR-100)")


def _how_to_get(layout: _Layout) -> str:
    """The user-facing hint on obtaining the files of `layout`."""
    return (
        f"Get them with `python -m landscape download --dataset {layout.name} --root DIR`, or download the "
        f'official "{layout.title} python version" archive ({layout.url}, from '
        f"https://www.cs.toronto.edu/~kriz/cifar.html) and extract it under DIR, " + GIVE_ROOT
    )


def _expected(layout: _Layout) -> str:
    return f"{layout.folder}/ holding {', '.join(layout.files)}"


# --------------------------------------------------------------------------------------------------
# Restricted unpickling
# --------------------------------------------------------------------------------------------------


def _encode(text: Any, encoding: str = "utf-8", errors: str = "strict") -> bytes:
    """Stand-in for ``_codecs.encode``: Python 3 protocol-2 pickles store bytes as ``encode(str, 'latin1')``."""
    if not isinstance(text, str) or encoding.lower().replace("_", "-") not in {"latin1", "latin-1", "utf-8", "ascii"}:
        raise pickle.UnpicklingError(f"refused _codecs.encode call with {type(text).__name__} / {encoding!r}")
    return text.encode(encoding, errors)


def _bytes(*args: Any) -> bytes:
    """Stand-in for ``builtins.bytes``: Python 3 protocol-2 pickles store ``b''`` as ``bytes()``."""
    if args and not isinstance(args[0], (bytes, bytearray)):
        raise pickle.UnpicklingError(f"refused bytes() call with a {type(args[0]).__name__}")
    return bytes(*args)


def _allowed_globals() -> dict[tuple[str, str], Callable[..., Any]]:
    """The only globals a CIFAR pickle may name, resolved here (never by importing what the file names)."""
    try:  # NumPy >= 2 (and the 1.26 compatibility alias)
        from numpy._core import multiarray
    except ImportError:  # pragma: no cover - older NumPy
        from numpy.core import multiarray  # type: ignore[no-redef]

    allowed: dict[tuple[str, str], Callable[..., Any]] = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("_codecs", "encode"): _encode,
        ("builtins", "bytes"): _bytes,
        ("__builtin__", "bytes"): _bytes,  # the Python 2 name that Python 3 writes at protocol 2
    }
    for module in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(module, "_reconstruct")] = multiarray._reconstruct
        allowed[(module, "scalar")] = multiarray.scalar
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """An unpickler that resolves only NumPy array reconstruction globals.

    Args:
        file: binary file to read from.
        source: path shown in error messages.
    """

    def __init__(self, file: io.BufferedIOBase, source: Path) -> None:
        super().__init__(file, encoding="bytes")
        self._source = source
        self._allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        """Return an allowed global, or raise `DataError` naming the file and the refused global."""
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise DataError(
                f"{self._source}: refused to load the global {module}.{name} from this pickle; a CIFAR "
                f"batch needs only NumPy arrays, so the file is not a genuine CIFAR file (nothing was run)"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        """Refuse persistent ids (CIFAR files have none)."""
        raise DataError(f"{self._source}: refused a persistent id in this pickle; it is not a genuine CIFAR file")


def _read_pickle(path: Path, layout: _Layout) -> dict[bytes, Any]:
    """Unpickle `path` safely; any failure becomes a `DataError` naming the file."""
    try:
        data = path.read_bytes()  # read once: the nesting checked is the nesting unpickled
        check_nesting(io.BytesIO(data), path)
        obj = _RestrictedUnpickler(io.BytesIO(data), path).load()
    except DataError:
        raise
    except OSError as err:
        raise DataError(f"cannot read {path}: {err}. {_how_to_get(layout)}") from err
    except Exception as err:  # EOFError, UnpicklingError, ValueError, TypeError, ... from a damaged file
        raise DataError(
            f"{path} is truncated or corrupt ({type(err).__name__}: {err}); expected a {layout.title} "
            f"python-version pickle. Delete it and fetch the data again. {_how_to_get(layout)}"
        ) from err
    if not isinstance(obj, dict):
        raise DataError(f"{path} holds a {type(obj).__name__}, expected a dict as in the {layout.title} files")
    return obj


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _find_folder(root: str | os.PathLike[str] | None, layout: _Layout) -> Path:
    """The folder holding the files: `root` itself or ``root/<folder>``."""
    if root is None:
        raise DataError(
            f"{layout.title} needs a data folder (none was given); expected {_expected(layout)}. "
            + _how_to_get(layout)
        )
    base = user_path(root, "the data root")
    if (base / layout.folder).is_dir():
        return base / layout.folder
    if base.is_dir() and (base.name == layout.folder or (base / layout.meta_file).is_file()):
        return base
    where = "does not exist" if not base.exists() else f"does not contain {layout.folder}/"
    raise DataError(f"{base} {where}; expected {_expected(layout)}. " + _how_to_get(layout))


def _check_files(folder: Path, layout: _Layout) -> None:
    missing = [name for name in layout.files if not (folder / name).is_file()]
    if missing:
        raise DataError(
            f"{folder} lacks {', '.join(missing)}; expected all of {', '.join(layout.files)}. " + _how_to_get(layout)
        )


def _read_batch(path: Path, layout: _Layout) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 3072) uint8 and labels (N,) int64 of one batch file, validated."""
    batch = _read_pickle(path, layout)
    keys = (b"data", layout.labels_key)
    if any(key not in batch for key in keys):
        raise DataError(
            f"{path} lacks the keys {[k for k in keys if k not in batch]}; a {layout.title} batch has "
            f"{list(keys)} (found {sorted(map(repr, batch))})"
        )
    data = batch[b"data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _PIXELS:
        got = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise DataError(f"{path}: b'data' must be a uint8 array of shape (N, {_PIXELS}), got {got}")
    if len(data) == 0:
        raise DataError(f"{path} holds no images; a {layout.title} batch holds {layout.title} images as "
                        f"b'data' (N, {_PIXELS}) uint8 with N > 0")
    size = path.stat().st_size
    if data.size > size:  # a forged shape or a zero-stride view: the pixels are not in the file
        raise DataError(f"{path}: b'data' claims {len(data):,} images ({data.size:,} bytes) but the file holds "
                        f"{size:,} bytes; a {layout.title} batch stores every pixel, so it is not a genuine file")
    raw = batch[layout.labels_key]
    if isinstance(raw, np.ndarray) and raw.shape != (len(data),):  # before any copy of it
        raise DataError(f"{path}: {len(data)} images but labels of shape {raw.shape}; they must match")
    labels = _integer_labels(raw, path, layout)
    if labels.shape != (len(data),):
        raise DataError(f"{path}: {len(data)} images but labels of shape {labels.shape}; they must match")
    if len(labels) and (labels.min() < 0 or labels.max() >= layout.num_classes):
        raise DataError(
            f"{path}: labels span [{labels.min()}, {labels.max()}], outside [0, {layout.num_classes}) of {layout.title}"
        )
    return data, labels


def _integer_labels(raw: Any, path: Path, layout: _Layout) -> np.ndarray:
    """The labels as int64, refused unless every one is an integer (1.7, "3", True are not: no silent coercion)."""
    array = raw if isinstance(raw, np.ndarray) else None
    if array is None and isinstance(raw, (list, tuple)):
        bad = next((v for v in raw if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer))), None)
        if bad is None:
            try:
                array = np.asarray(raw, dtype=np.int64)
            except OverflowError:
                bad = max(raw, key=abs)
        if bad is not None:
            raise DataError(f"{path}: {layout.labels_key!r} must hold integer class indices; found "
                            f"{reprlib.repr(bad)} ({type(bad).__name__})")
    if array is None or array.dtype.kind not in "iu":
        got = f"an array of {array.dtype}" if array is not None else type(raw).__name__
        raise DataError(f"{path}: {layout.labels_key!r} must be a list or array of integers, got {got}")
    return array.astype(np.int64)


def _read_names(path: Path, layout: _Layout) -> tuple[str, ...]:
    meta = _read_pickle(path, layout)
    names = meta.get(layout.names_key)
    if not isinstance(names, (list, tuple)) or len(names) != layout.num_classes:
        got = f"{len(names)} entries" if isinstance(names, (list, tuple)) else type(names).__name__
        raise DataError(f"{path}: {layout.names_key!r} must list {layout.num_classes} class names, got {got}")
    bad = next((n for n in names if not isinstance(n, (bytes, bytearray, str))), None)
    if bad is not None:  # (str() of anything else could recurse without end: a list nested a million deep)
        raise DataError(f"{path}: {layout.names_key!r} must list class names as strings, found a "
                        f"{type(bad).__name__}")
    try:
        return tuple(n.decode("utf-8") if isinstance(n, (bytes, bytearray)) else n for n in names)
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: class names are not valid UTF-8 ({err})") from err


def _to_imageset(parts: list[tuple[np.ndarray, np.ndarray]], names: tuple[str, ...]) -> ImageSet:
    data = np.concatenate([d for d, _ in parts]) if len(parts) > 1 else parts[0][0]
    labels = np.concatenate([y for _, y in parts]) if len(parts) > 1 else parts[0][1]
    x = torch.from_numpy(np.ascontiguousarray(data).reshape(-1, 3, _SIDE, _SIDE)).to(torch.float32).div_(255.0)
    return ImageSet(x, torch.from_numpy(np.ascontiguousarray(labels)), names)


def load(root: str | os.PathLike[str] | None, num_classes: int) -> Splits:
    """Load CIFAR-10 or CIFAR-100 from the official python-version files.

    Args:
        root: the extracted folder (``cifar-10-batches-py`` / ``cifar-100-python``) or the folder holding it.
        num_classes: 10 for CIFAR-10, 100 for CIFAR-100 (fine labels).

    Returns:
        `Splits` named "cifar10" / "cifar100": float32 images (N, 3, 32, 32) in [0, 1], int64 labels,
        class names as str.

    Raises:
        DataError: the folder or a file is missing, a file is truncated, corrupt or has the wrong
            keys or shapes, or a pickle names a global other than NumPy array reconstruction.
        SpecError: `num_classes` is neither 10 nor 100.
    """
    layout = _layout_for_classes(num_classes)
    folder = _find_folder(root, layout)
    _check_files(folder, layout)
    names = _read_names(folder / layout.meta_file, layout)
    train = _to_imageset([_read_batch(folder / f, layout) for f in layout.train_files], names)
    test = _to_imageset([_read_batch(folder / layout.test_file, layout)], names)
    return Splits(layout.name, train, test)


def data_files(root: str | os.PathLike[str] | None, num_classes: int) -> list[Path]:
    """The files `load(root, num_classes)` reads (their content identifies the data in cache keys)."""
    layout = _layout_for_classes(num_classes)
    folder = _find_folder(root, layout)
    return [folder / name for name in layout.files]


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------


def _is_complete(folder: Path, layout: _Layout) -> bool:
    return folder.is_dir() and all((folder / name).is_file() for name in layout.files)


def download(name: str, root: str | os.PathLike[str], url: str | None = None, md5: str | None = None,
             limits: Limits = DEFAULT_LIMITS) -> Path:
    """Fetch, verify and extract the official CIFAR python-version archive into `root`.

    Nothing happens when ``root/<folder>`` already holds every expected file. Otherwise the archive is
    downloaded (unless a copy with the right MD5 is already in `root`) to a temporary file that is
    renamed into place only after its MD5 matches, then extracted with every member checked and the
    extraction capped (`landscape.data.fetch`).

    Args:
        name: "cifar10" or "cifar100".
        root: folder that receives the archive and the extracted data folder (created if needed).
        url: where to fetch the archive (http(s) or file://); defaults to the official URL.
        md5: expected MD5 hex digest of the archive (32 hex digits, any case); defaults to that of the official
            archive.
        limits: caps on the download's size and the extracted bytes and members.

    Returns:
        The extracted folder (``root/cifar-10-batches-py`` or ``root/cifar-100-python``).

    Raises:
        UnknownNameError: `name` is not a CIFAR variant.
        SpecError: `md5` is not an MD5 hex digest (before anything is fetched or created).
        DataError: the download failed, the MD5 does not match (the file is removed), or the archive is
            unreadable, incomplete, over a cap or has a member that would escape `root`.
    """
    layout = _LAYOUTS.get(name)
    if layout is None:
        raise UnknownNameError(f"unknown CIFAR data set {name!r}; valid choices: {', '.join(_LAYOUTS)}")
    expected_md5 = layout.md5 if md5 is None else md5_digest(md5)
    base = user_path(root, "the data root")
    final = base / layout.folder
    if _is_complete(final, layout):
        return final
    archive = base / layout.archive
    what = f'the official "{layout.title} python version" archive'
    with making_folder(base, "the data folder"):  # a failed download leaves no empty folder it made
        if not verified(archive, expected_md5):
            fetch(url or layout.url, archive, md5=expected_md5, what=what, limits=limits)
        return extract_tar(archive, base, layout.folder, complete=lambda folder: _is_complete(folder, layout),
                           what=what, limits=limits)
