"""MNIST and Fashion-MNIST from their standard IDX files in a local folder (plain or ``.gz``).

MNIST (LeCun et al., 1998) is the paper's simple-model setting (LeNet-5 on MNIST, Ye et al., ICLR 2025,
Fig. 2); Fashion-MNIST (Xiao et al., 2017, arXiv:1708.07747) has the same format, sizes and split. Each
ships four files:

* ``train-images-idx3-ubyte`` / ``t10k-images-idx3-ubyte``: magic 0x00000803 (unsigned bytes, 3 dimensions),
  then big-endian uint32 sizes N, 28, 28, then N·28·28 grey values 0..255, row-major;
* ``train-labels-idx1-ubyte`` / ``t10k-labels-idx1-ubyte``: magic 0x00000801, size N, then N labels 0..9.

Each may be plain or gzip-compressed (``<name>.gz``, as published). The folder is `root` itself, ``root/mnist``
(``root/fashion-mnist``), or torchvision's ``root/MNIST/raw`` (``root/FashionMNIST/raw``). Every file is read
in full against its header, never beyond it (a header's sizes are checked before anything is allocated), and a
bad file is refused with a `DataError` naming it and what was expected: wrong magic number, wrong image size,
truncated or over-long data, labels out of range, or image and label counts that differ.

`download` fetches the official ``.gz`` files, verifies their published MD5s and decompresses them with a cap on
the output (`landscape.data.fetch`); it is the only function here that touches the network.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tempfile
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from landscape.data.fetch import DEFAULT_LIMITS, GIVE_ROOT, Limits, by_hand, fetch, gunzip
from landscape.data.imageset import ImageSet, Splits
from landscape.errors import DataError, UnknownNameError
from landscape.paths import making_folder, user_path

SIDE = 28
N_CLASSES = 10
IMAGES_MAGIC = 0x00000803  # 0x08 = unsigned byte, 3 dimensions
LABELS_MAGIC = 0x00000801  # 0x08 = unsigned byte, 1 dimension
# A header claiming more images than this is not an MNIST-format file (MNIST and Fashion-MNIST have 60,000
# training images); checked before anything is read, so a forged header cannot make us allocate gigabytes.
MAX_IMAGES = 1_000_000
_GZIP_MAGIC = b"\x1f\x8b"
_SPLITS = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
           "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}
FILES = tuple(name for pair in _SPLITS.values() for name in pair)


@dataclass(frozen=True)
class _Layout:
    """Where one variant's files live and where to get them."""

    name: str  # registry name
    title: str
    folder: str  # our folder under root
    torchvision_folder: str  # torchvision's root/<folder>/raw
    class_names: tuple[str, ...]
    urls: tuple[str, ...]  # base URLs, official first, then mirrors
    md5: dict[str, str]  # of the published .gz files


_LAYOUTS: dict[str, _Layout] = {
    "mnist": _Layout(
        name="mnist", title="MNIST", folder="mnist", torchvision_folder="MNIST",
        class_names=tuple(str(c) for c in range(10)),
        urls=("https://yann.lecun.com/exdb/mnist/", "https://ossci-datasets.s3.amazonaws.com/mnist/"),
        md5={"train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c"},
    ),
    "fashion-mnist": _Layout(
        name="fashion-mnist", title="Fashion-MNIST", folder="fashion-mnist", torchvision_folder="FashionMNIST",
        class_names=("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag",
                     "Ankle boot"),
        urls=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
              "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/"),
        md5={"train-images-idx3-ubyte": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
             "train-labels-idx1-ubyte": "25c81989df183df01b3e8a0aad5dffbe",
             "t10k-images-idx3-ubyte": "bef4ecab320f06d8554ea6380940ec79",
             "t10k-labels-idx1-ubyte": "bb300cfdad3c16e7a12a480ee83cd310"},
    ),
}


def _layout(name: str) -> _Layout:
    layout = _LAYOUTS.get(name)
    if layout is None:
        raise UnknownNameError(f"unknown IDX data set {name!r}; valid choices: {', '.join(_LAYOUTS)}")
    return layout


def _how_to_get(layout: _Layout) -> str:
    return (f"Get them with `python -m landscape download --dataset {layout.name} --root DIR` or download the four "
            f"{layout.title} files ({layout.urls[0]}) into DIR, plain or .gz, " + GIVE_ROOT)


# --------------------------------------------------------------------------------------------------
# IDX reading
# --------------------------------------------------------------------------------------------------


def _open(path: Path) -> BinaryIO:
    """`path` opened for reading, through gzip when its first bytes are the gzip magic."""
    with path.open("rb") as f:
        head = f.read(2)
    return gzip.open(path, "rb") if head == _GZIP_MAGIC else path.open("rb")  # type: ignore[return-value]


def _read_exact(f: BinaryIO, n: int, path: Path, what: str) -> bytes:
    data = f.read(n)
    if len(data) < n:
        raise DataError(f"{path} is truncated: {what} needs {n:,} bytes but only {len(data):,} are there")
    return data


def read_idx(path: str | os.PathLike[str], *, magic: int) -> np.ndarray:
    """The uint8 array of one IDX file (plain or gzip) whose magic number must be `magic`.

    Images files must be (N, 28, 28) with N <= `MAX_IMAGES`; labels files (N,). The data must be exactly as long
    as the header says.

    Raises:
        DataError: the file is missing or unreadable, has another magic number or shape, or is truncated or longer
            than its header says.
    """
    path = Path(path)
    kind = "images" if magic == IMAGES_MAGIC else "labels"
    ndim = magic & 0xFF
    try:
        with _open(path) as f:
            got = int.from_bytes(_read_exact(f, 4, path, "the magic number"), "big")
            if got != magic:
                raise DataError(f"{path}: magic number 0x{got:08X}, expected 0x{magic:08X} of an IDX {kind} file "
                                f"(unsigned bytes, {ndim} dimension{'s' if ndim > 1 else ''})")
            header = _read_exact(f, 4 * ndim, path, "the header")
            dims = tuple(int.from_bytes(header[4 * i:4 * i + 4], "big") for i in range(ndim))
            if dims[0] > MAX_IMAGES:
                raise DataError(f"{path}: the header claims {dims[0]:,} {kind}, more than the {MAX_IMAGES:,} an "
                                f"MNIST-format file can hold")
            if kind == "images" and dims[1:] != (SIDE, SIDE):
                raise DataError(f"{path}: images of {dims[1]}x{dims[2]} pixels, expected {SIDE}x{SIDE}")
            n_bytes = int(np.prod(dims))
            data = _read_exact(f, n_bytes, path, f"{dims[0]:,} {kind} of shape {dims[1:] or '()'}")
            if f.read(1):
                raise DataError(f"{path} is longer than its header says ({dims[0]:,} {kind}); it is not a "
                                f"genuine IDX file")
    except DataError:
        raise
    except FileNotFoundError as err:
        raise DataError(f"{path} does not exist") from err
    except (OSError, EOFError, zlib.error) as err:  # unreadable, or a damaged gzip stream
        raise DataError(f"{path} is unreadable or a damaged gzip file ({type(err).__name__}: {err})") from err
    return np.frombuffer(data, dtype=np.uint8).reshape(dims)


def _read_split(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_path, magic=IMAGES_MAGIC)
    labels = read_idx(labels_path, magic=LABELS_MAGIC).astype(np.int64)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images):,} images but {labels_path} holds {len(labels):,} "
                        f"labels; they must match one to one")
    if len(labels) and int(labels.max()) >= N_CLASSES:
        raise DataError(f"{labels_path}: labels span [{int(labels.min())}, {int(labels.max())}], outside the "
                        f"{N_CLASSES} classes 0..{N_CLASSES - 1}")
    return images, labels


# --------------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------------


def _candidates(base: Path, layout: _Layout) -> list[Path]:
    return [base, base / layout.folder, base / layout.torchvision_folder / "raw"]


def _file_in(folder: Path, name: str) -> Path | None:
    """The plain file `name` in `folder`, else its ``.gz``, else None."""
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def data_files(root: str | os.PathLike[str] | None, name: str = "mnist") -> list[Path]:
    """The four files `load(root, name)` reads, in `FILES` order (their content identifies the data in keys).

    Raises:
        DataError: `root` is None, or no candidate folder holds all four files (the message lists what is missing).
    """
    layout = _layout(name)
    if root is None:
        raise DataError(f"{layout.title} needs a data folder (none was given) holding {', '.join(FILES)} "
                        f"(plain or .gz). " + _how_to_get(layout))
    base = user_path(root, "the data root")
    best: tuple[Path, list[str]] | None = None
    for folder in _candidates(base, layout):
        found = {name: _file_in(folder, name) for name in FILES}
        missing = [n for n, p in found.items() if p is None]
        if not missing:
            return [found[n] for n in FILES]  # type: ignore[misc]
        if folder.is_dir() and (best is None or len(missing) < len(best[1])):
            best = (folder, missing)
    if best is None:
        raise DataError(f"{base} does not exist; expected a folder holding {', '.join(FILES)} (plain or .gz). "
                        + _how_to_get(layout))
    folder, missing = best
    raise DataError(f"{folder} lacks {', '.join(missing)} (plain or .gz); expected all of {', '.join(FILES)}. "
                    + _how_to_get(layout))


def _to_imageset(images: np.ndarray, labels: np.ndarray, names: tuple[str, ...]) -> ImageSet:
    x = torch.from_numpy(images.reshape(-1, 1, SIDE, SIDE).astype(np.float32) / 255.0)
    return ImageSet(x, torch.from_numpy(labels), names)


def load(root: str | os.PathLike[str] | None, name: str = "mnist") -> Splits:
    """Load MNIST or Fashion-MNIST from its four IDX files (the official split: 60,000 train, 10,000 test).

    Args:
        root: the folder holding the files, or one holding ``mnist/`` (``fashion-mnist/``) or torchvision's
            ``MNIST/raw`` (``FashionMNIST/raw``).
        name: "mnist" or "fashion-mnist".

    Returns:
        `Splits` named `name`: float32 images (N, 1, 28, 28) in [0, 1], int64 labels, the class names.

    Raises:
        DataError: a file is missing or refused (see the module docstring).
        UnknownNameError: `name` is not an IDX data set.
    """
    layout = _layout(name)
    paths = dict(zip(FILES, data_files(root, name), strict=True))
    train_images, train_labels = _SPLITS["train"]
    test_images, test_labels = _SPLITS["test"]
    train = _to_imageset(*_read_split(paths[train_images], paths[train_labels]), layout.class_names)
    test = _to_imageset(*_read_split(paths[test_images], paths[test_labels]), layout.class_names)
    return Splits(name, train, test)


# --------------------------------------------------------------------------------------------------
# Download
# --------------------------------------------------------------------------------------------------


def download(name: str, root: str | os.PathLike[str], url: str | None = None,
             limits: Limits = DEFAULT_LIMITS) -> Path:
    """Fetch the four official ``.gz`` files into ``root/<folder>``, verified by MD5 and decompressed under a cap.

    Nothing happens when the folder already holds all four files. Otherwise every file is downloaded to a scratch
    folder, checked against its published MD5 (no SHA-256 is published for these files), decompressed (refusing
    output over `limits.max_bytes`) and read back as IDX; only when all four pass are they moved into place, so a
    failure leaves nothing behind.

    Args:
        name: "mnist" or "fashion-mnist".
        root: the data folder (created if needed); the files go to ``root/mnist`` (``root/fashion-mnist``).
        url: base URL (http(s) or file://) holding the four ``<file>.gz``; default: the official site, then its
            mirror. The official MD5s are always checked.
        limits: caps on each download and each decompressed file.

    Returns:
        The folder holding the four plain IDX files.

    Raises:
        UnknownNameError: `name` is not an IDX data set.
        DataError: a download failed, a checksum differs, a file is over a cap or not a valid IDX file.
    """
    layout = _layout(name)
    base = user_path(root, "the data root")
    final = base / layout.folder
    if all(_file_in(final, n) for n in FILES):
        return final
    bases = (url,) if url else layout.urls
    with making_folder(final, "the data folder"):  # a failure leaves no folder it made (the scratch is removed)
        _fetch_all(layout, final, bases, limits)
    return final


def _fetch_all(layout: _Layout, final: Path, bases: Sequence[str], limits: Limits) -> None:
    """Fetch, check and decompress the four files into the folder `final` (`download`); all or nothing."""
    scratch = Path(tempfile.mkdtemp(prefix=".download-", dir=final))
    try:
        for file in FILES:
            what = f"the official {layout.title} file {file}.gz"
            errors: list[str] = []
            for prefix in bases:
                try:
                    fetch(f"{prefix.rstrip('/')}/{file}.gz", scratch / f"{file}.gz", md5=layout.md5[file],
                          what=what, limits=limits, advise=False)
                    break
                except DataError as err:
                    errors.append(str(err))
            else:  # every source failed: each reason, then once what to do by hand (in the final folder)
                raise DataError(f"{'; '.join(errors)}. {by_hand(what, final)}")
            gunzip(scratch / f"{file}.gz", scratch / file, limits=limits)
            (scratch / f"{file}.gz").unlink()
        for split in _SPLITS.values():
            _read_split(*(scratch / f for f in split))
        for file in FILES:
            os.replace(scratch / file, final / file)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
