"""The user data set "npz": labelled images in one NumPy ``.npz`` file (``--dataset npz:PATH``).

Arrays (read with ``np.load(allow_pickle=False)``: an object array is refused, nothing is ever unpickled):

- ``x``: the images, required; ``y``: their labels, required;
- ``x_test``, ``y_test``: a test split, optional (both or neither); without them a seeded, stratified 80/20
  split of ``x``/``y`` is made (`DataSpec.split_seed`, `landscape.data.user`);
- ``class_names``: optional 1-D string array, one name per class.

No other array is accepted (a misspelt name would otherwise be ignored silently). Layouts and values:

- images: ``(N, H, W)`` (one channel), ``(N, C, H, W)`` or ``(N, H, W, C)`` with C = 1 or 3; a shape that
  reads both ways (e.g. ``(N, 3, 5, 3)``) or neither is refused, naming it;
- pixel values: ``uint8`` 0..255 (divided by 255), or float (16/32/64 bit) already in [0, 1]; other integer
  types, booleans, values outside [0, 1] and NaN/inf are refused, naming the value and what was expected;
- labels: integers 0..K-1 of shape (N,), every class present in the training split, K >= 2 (K is the number
  of class names when given, else the largest label + 1).

Each array's header is read before its data (from the first 64 KiB of its member), so an object array is
refused without reading it and an array claiming more than `MAX_ARRAY_BYTES` (`array_bytes`) is refused without
allocating it (the limit a compressed file cannot exceed when decoded); an array named twice, a negative size
and data shorter than its header are refused too, naming the file.
"""

from __future__ import annotations

import functools
import hashlib
import io
import math
import os
import zipfile
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from landscape.data.fingerprint import file_sha256
from landscape.data.imageset import Splits
from landscape.data.user import check_labels, given_path, labelled_splits
from landscape.errors import DataError
from landscape.files import atomic_write
from landscape.paths import user_path

if TYPE_CHECKING:
    from landscape.config import DataSpec

REQUIRED = ("x", "y")
OPTIONAL = ("x_test", "y_test", "class_names")
MAX_ARRAY_BYTES = 8 << 30  # 8 GiB decoded per array
_HEADER_BYTES = 1 << 16  # what is read of each member for its header (NumPy refuses headers over 10,000 bytes)
_FORMAT = ("an .npz file (np.savez) holding x (images) and y (labels), optionally x_test, y_test and class_names; "
           "see landscape.data.npz")


def data_file(spec: DataSpec) -> Path:
    """The ``.npz`` file of `spec` (its root), which must exist."""
    return given_path(spec, folder=False, usage="npz:PATH", what="the npz file", expected=_FORMAT)


def _headers(path: Path) -> dict[str, tuple[tuple[int, ...], np.dtype]]:
    """(shape, dtype) of every array in the file, read from the headers only."""
    try:
        with zipfile.ZipFile(path) as archive:
            out = {}
            for member in archive.namelist():
                name = member[:-4] if member.endswith(".npy") else member
                if name in out:  # np.load would read one of the two, the headers were read from another
                    raise DataError(f"{path} holds the array {name!r} twice; expected each array once")
                with archive.open(member) as fh:
                    # NumPy reads a header's claimed length (up to 4 GiB) before refusing it as too long
                    head = io.BytesIO(fh.read(_HEADER_BYTES))
                version = np.lib.format.read_magic(head)
                read = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                    np.lib.format.read_array_header_2_0
                shape, _, dtype = read(head)
                out[name] = (tuple(shape), np.dtype(dtype))
            return out
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:
        raise DataError(f"{path} is not a readable .npz archive ({err}); expected {_FORMAT}") from None


def _check_headers(path: Path, headers: dict[str, tuple[tuple[int, ...], np.dtype]]) -> None:
    unknown = sorted(set(headers) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise DataError(f"{path} holds array(s) {', '.join(unknown)}; accepted: {', '.join(REQUIRED + OPTIONAL)}")
    missing = [k for k in REQUIRED if k not in headers]
    if missing:
        raise DataError(f"{path} lacks {', '.join(missing)}; expected {_FORMAT}")
    if ("x_test" in headers) != ("y_test" in headers):
        raise DataError(f"{path} holds only one of x_test and y_test; give both or neither")
    for name, (shape, dtype) in headers.items():
        if dtype.hasobject:
            raise DataError(f"{path}: array {name!r} is an object array (dtype {dtype}); object arrays are refused "
                            f"because reading them would unpickle; store numbers (or strings for class_names)")
        if any(n < 0 for n in shape):
            raise DataError(f"{path}: array {name!r} has shape {shape}; a size cannot be negative")
        size = array_bytes(shape, dtype)
        if size > MAX_ARRAY_BYTES:
            raise DataError(f"{path}: array {name!r} of shape {shape} would take {size / 2**30:.1f} GiB, over the "
                            f"{MAX_ARRAY_BYTES / 2**30:.0f} GiB limit of one array")


def array_bytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes an array of `shape` and `dtype` takes once read (as float32 at least: images are converted)."""
    return math.prod(shape) * max(dtype.itemsize, 4)  # Python integers: no overflow


def decoded_bytes(path: str | os.PathLike[str]) -> int:
    """Bytes all arrays of the ``.npz`` file take once read (`array_bytes`), from their headers only."""
    source = Path(path)
    headers = _headers(source)
    _check_headers(source, headers)
    return sum(array_bytes(shape, dtype) for shape, dtype in headers.values())


def _arrays(source: Path, names: Iterable[str]) -> dict[str, np.ndarray]:
    """The arrays `names` of the file (whose headers were checked); a damaged one is a `DataError`."""
    try:
        with np.load(source, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in names}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, zlib.error) as err:  # e.g. data shorter than its header
        raise DataError(f"{source} is not a readable .npz archive ({err}); expected {_FORMAT}") from None


def _channels_last(shape: tuple[int, ...], what: str, source: str) -> bool:
    """Whether images of `shape` are (N, H, W, C) (else (N, H, W) or (N, C, H, W)); a shape of no layout is refused."""
    if len(shape) == 3:
        return False
    if len(shape) == 4:
        first, last = shape[1] in (1, 3), shape[3] in (1, 3)
        if first and last:
            raise DataError(f"{source}: {what} has shape {shape}, which reads as NCHW and as NHWC; store it with "
                            f"a size other than 1 or 3 on one of the two axes")
        if not (first or last):
            raise DataError(f"{source}: {what} has shape {shape}; expected (N, H, W), (N, C, H, W) or "
                            f"(N, H, W, C) with C = 1 or 3")
        return last
    raise DataError(f"{source}: {what} has shape {shape}; expected (N, H, W), (N, C, H, W) or (N, H, W, C)")


def to_nchw(x: np.ndarray, what: str, source: str) -> np.ndarray:
    """Images of any accepted layout and dtype as float32 (N, C, H, W) in [0, 1] (see the module docstring)."""
    if _channels_last(x.shape, what, source):
        x = x.transpose(0, 3, 1, 2)
    elif x.ndim == 3:
        x = x[:, None]
    if x.dtype == np.uint8:
        return (x.astype(np.float32) / 255.0)
    if not np.issubdtype(x.dtype, np.floating):
        raise DataError(f"{source}: {what} has dtype {x.dtype}; expected uint8 (0..255) or float in [0, 1]")
    if x.size and not np.isfinite(x).all():
        raise DataError(f"{source}: {what} holds NaN or infinite values; expected float values in [0, 1]")
    if x.size and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        hint = "; values on the 0..255 scale must be stored as uint8 or divided by 255" if x.max() > 1 else ""
        raise DataError(f"{source}: {what} values span [{float(x.min()):.4g}, {float(x.max()):.4g}]; float images "
                        f"must lie in [0, 1]{hint}")
    return x.astype(np.float32)


@functools.lru_cache(maxsize=4)
def _read(path: str, sha256: str, split_seed: int) -> Splits:
    source = Path(path)
    headers = _headers(source)
    _check_headers(source, headers)
    raw = _arrays(source, headers)
    x = to_nchw(raw["x"], "x", path)
    y = check_labels(raw["y"], "y", path)
    if len(x) != len(y):
        raise DataError(f"{path}: x holds {len(x)} images but y {len(y)} labels; they must match one to one")
    x_test = y_test = None
    if "x_test" in raw:
        x_test, y_test = to_nchw(raw["x_test"], "x_test", path), check_labels(raw["y_test"], "y_test", path)
        if len(x_test) != len(y_test):
            raise DataError(f"{path}: x_test holds {len(x_test)} images but y_test {len(y_test)} labels")
        if x_test.shape[1:] != x.shape[1:]:
            raise DataError(f"{path}: x_test images are {x_test.shape[1:]} (C, H, W) but x images {x.shape[1:]}")
    names = None
    if "class_names" in raw:
        c = raw["class_names"]
        if c.ndim != 1 or c.dtype.kind not in "US":
            raise DataError(f"{path}: class_names has dtype {c.dtype} and shape {c.shape}; expected a 1-D string "
                            f"array, one name per class")
        names = tuple(str(n.decode() if isinstance(n, bytes) else n) for n in c)
    return labelled_splits(f"npz:{source.name}", path, x, y, x_test, y_test, names, split_seed)


def _images_header(source: Path) -> tuple[int, ...]:
    """The header shape of ``x`` in an images file (``x`` alone, or a data set of this format), checked."""
    headers = _headers(source)
    if "x" not in headers or (set(headers) != {"x"} and "y" not in headers):
        raise DataError(f"{source} holds {', '.join(sorted(headers)) or 'nothing'}; expected x (images) alone, or "
                        f"a data set: {_FORMAT}")
    _check_headers(source, {"y": ((0,), np.dtype(np.int64)), **headers})
    return headers["x"][0]


def images_shape(path: str | os.PathLike[str]) -> tuple[int, ...]:
    """The (N, C, H, W) shape `read_images` gives for the file, from its headers only (no array is read)."""
    source = Path(path)
    shape = _images_header(source)
    if _channels_last(shape, "x", str(source)):
        return (shape[0], shape[3], shape[1], shape[2])
    return (shape[0], 1, *shape[1:]) if len(shape) == 3 else tuple(shape)


def read_images(path: str | os.PathLike[str]) -> np.ndarray:
    """The images ``x`` of an ``.npz`` file as float32 (N, C, H, W) in [0, 1] (same rules).

    The file holds ``x`` alone, or is a data set of this format (``x``, ``y``, ...; e.g. a poisoned training set
    `landscape.poisons.release` wrote), of which only ``x`` is read.
    """
    source = Path(path)
    _images_header(source)
    return to_nchw(_arrays(source, ["x"])["x"], "x", str(source))


def load(spec: DataSpec) -> Splits:
    """The training and test split of the ``.npz`` file `spec.root` (cached per file content and split seed)."""
    path = data_file(spec)
    return _read(os.path.abspath(path), file_sha256(path), spec.split_seed)


def encode(arrays: dict[str, np.ndarray]) -> bytes:
    """The ``.npz`` bytes of `arrays` (uncompressed), the same bytes for the same arrays (fixed zip timestamps)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0)), "w") as fh:
                np.lib.format.write_array(fh, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def keep(data: bytes, folder: str | os.PathLike[str]) -> Path:
    """Save ``.npz`` bytes under `folder` as ``<sha256>.npz`` (atomically, once) and return the path.

    Named by content, so the same data is one file, and its keys are reused, whoever hands it in again.
    """
    path = user_path(folder, "the upload folder") / f"{hashlib.sha256(data).hexdigest()[:32]}.npz"
    if not path.is_file():
        atomic_write(path, data)
    return path
