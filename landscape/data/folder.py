"""The user data set "folder": one sub-folder of PNG/JPEG images per class (``--dataset folder:PATH[?size=N]``).

Layout: ``PATH/<class>/<image>.png|.jpg|.jpeg`` (extensions in any case). Classes are the sub-folders in sorted
order (their names are the class names, the label is the position); hidden entries (starting with ".") are
skipped, files directly in PATH are ignored (a README may sit there), and anything else inside a class folder
(another file type, a sub-folder) is refused, naming it. Every file is decoded with Pillow and must really be
a PNG or JPEG.

Images: if every image is greyscale (Pillow modes "1", "L", "LA"), the set has one channel; otherwise every
image is converted to RGB (grey images replicated, palettes expanded, CMYK converted); alpha is dropped. 16-bit
and floating-point images are refused. Pixel values 0..255 become [0, 1]. All images must have one size unless
the spec asks to resize (``?size=N``, `DataSpec.resize`): each image is then resized to N x N with Pillow's
bilinear filter (antialiased when shrinking; the aspect ratio is not kept).

Limits, checked before any image is decoded: at most `landscape.data.npz.MAX_ARRAY_BYTES` of float32 pixels in
all (read from the headers: a PNG of one colour compresses 1000-fold), Pillow's own limit on one image
(`PIL.Image.DecompressionBombError`, above twice `PIL.Image.MAX_IMAGE_PIXELS` pixels), and regular files only (a
FIFO or a link to a device is refused: reading it would never end).

There is no test folder: a seeded, stratified 80/20 split is made (`DataSpec.split_seed`,
`landscape.data.user`). The content and relative path of every image enter the cache keys (`image_files`).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from landscape.data.fingerprint import files_fingerprint
from landscape.data.imageset import Splits
from landscape.data.npz import MAX_ARRAY_BYTES
from landscape.data.user import given_path, labelled_splits
from landscape.errors import DataError

if TYPE_CHECKING:
    from landscape.config import DataSpec

EXTENSIONS = (".png", ".jpg", ".jpeg")
FORMATS = ("PNG", "JPEG")
GREY_MODES = ("1", "L", "LA")
COLOUR_MODES = ("RGB", "RGBA", "P", "PA", "CMYK", "YCbCr")
_LAYOUT = "a folder with one sub-folder of PNG/JPEG images per class (see landscape.data.folder)"


def _root(spec: DataSpec) -> Path:
    return given_path(spec, folder=True, usage="folder:PATH[?size=N]", what="the image folder", expected=_LAYOUT)


def image_files(spec: DataSpec) -> list[Path]:
    """Every image of the set, class by class in sorted order (refusing anything else in a class folder)."""
    root = _root(spec)
    classes = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if len(classes) < 2:
        raise DataError(f"{root} has {len(classes)} class folder(s); expected {_LAYOUT}, with at least 2 classes")
    files = []
    for folder in classes:
        entries = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        for p in entries:
            if p.is_dir() or p.suffix.lower() not in EXTENSIONS:
                what = "a folder" if p.is_dir() else "not a PNG/JPEG file name"
                raise DataError(f"{p} is {what}; a class folder may hold only images ({', '.join(EXTENSIONS)})")
            if not p.is_file():  # a FIFO, a device (a link to /dev/zero) or a broken link: reading it never ends
                raise DataError(f"{p} is not a regular file; a class folder may hold only image files")
        if not entries:
            raise DataError(f"class folder {folder} holds no image; every class needs images")
        files.extend(entries)
    return files


def _decode(path: Path, resize: int | None) -> np.ndarray:
    """One image as uint8 (H, W) or (H, W, 3)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format not in FORMATS:
                raise DataError(f"{path} is a {image.format} image; expected PNG or JPEG")
            if image.mode not in GREY_MODES + COLOUR_MODES:
                raise DataError(f"{path} has Pillow mode {image.mode!r} (16-bit or floating point); expected an 8-bit "
                                f"greyscale or colour image")
            image = image.convert("L" if image.mode in GREY_MODES else "RGB")
            if resize is not None:
                image = image.resize((resize, resize), Image.Resampling.BILINEAR)
            return np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
        raise DataError(f"{path} cannot be read as a PNG or JPEG image: {err}") from None


def _check_size(files: tuple[str, ...], resize: int | None) -> None:
    """Refuse images whose float32 array would pass `MAX_ARRAY_BYTES`, from their headers (before any is decoded).

    A PNG of one colour compresses about 1000-fold, so the files' size says nothing about their pixels.
    """
    from PIL import Image, UnidentifiedImageError

    pixels, colour = 0, False
    for f in files:
        try:
            with Image.open(f) as image:
                width, height = (resize, resize) if resize is not None else image.size
                colour = colour or image.mode not in GREY_MODES
        except (UnidentifiedImageError, OSError, Image.DecompressionBombError) as err:
            raise DataError(f"{f} cannot be read as a PNG or JPEG image: {err}") from None
        pixels += width * height
        size = pixels * (3 if colour else 1) * 4
        if size > MAX_ARRAY_BYTES:
            raise DataError(f"the images of {Path(f).parent.parent} would take over {size / 2**20:,.0f} MiB as "
                            f"float32 (at {f}, {image.size[0]}x{image.size[1]}), over the {MAX_ARRAY_BYTES >> 20:,} "
                            f"MiB limit of a data set; shrink them with folder:PATH?size=N (e.g. ?size=32)")


@functools.lru_cache(maxsize=2)
def _read(root: str, fingerprint: str, resize: int | None, split_seed: int, files: tuple[str, ...]) -> Splits:
    names = sorted({Path(f).parent.name for f in files})
    _check_size(files, resize)
    images = [_decode(Path(f), resize) for f in files]
    sizes = {im.shape[:2] for im in images}
    if len(sizes) > 1:
        first = images[0].shape[:2]
        other = next(i for i, im in enumerate(images) if im.shape[:2] != first)
        raise DataError(f"images differ in size: {files[0]} is {first[1]}x{first[0]}, {files[other]} is "
                        f"{images[other].shape[1]}x{images[other].shape[0]} (width x height; {len(sizes)} sizes in "
                        f"all); ask for one size with folder:PATH?size=N (e.g. ?size={max(first)})")
    colour = any(im.ndim == 3 for im in images)
    stacked = np.stack([np.repeat(im[..., None], 3, axis=2) if colour and im.ndim == 2 else
                        (im if colour else im[..., None]) for im in images])  # (N, H, W, C) uint8
    x = np.ascontiguousarray(stacked.transpose(0, 3, 1, 2), dtype=np.float32) / 255.0
    y = np.array([names.index(Path(f).parent.name) for f in files], dtype=np.int64)
    return labelled_splits(f"folder:{Path(root).name}", root, x, y, None, None, tuple(names), split_seed)


def load(spec: DataSpec) -> Splits:
    """The training and test split of the image folder `spec.root` (cached per content, size and split seed)."""
    files = image_files(spec)
    return _read(os.path.abspath(_root(spec)), files_fingerprint(files), spec.resize, spec.split_seed,
                 tuple(str(f) for f in files))
