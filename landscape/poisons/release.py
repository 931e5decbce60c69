"""The poisoned training set as files to publish: an ``.npz`` data set, or a folder of PNG images per class.

What a data owner releases after crafting a UE on their own images (`write`, ``craft --out``, the app's Poison
page): the training split with the poison applied, ``clamp(x + delta, 0, 1)`` (`Crafted.apply`), in the
training split's order.

- ``.npz`` (`npz_arrays`, `npz_bytes`): ``x`` (the poisoned training images), ``y``, the CLEAN test split as
  ``x_test``/``y_test`` and ``class_names``, written with `landscape.data.npz.encode` (no pickles: read with
  ``np.load(allow_pickle=False)``). The file is a data set, ``--dataset npz:FILE`` (train a victim on it to check
  the protection: its test split is clean), and a poisoned-images file of `landscape.poisons.provided`
  (``--method provided --option images=FILE``, on the data set it was crafted on: same split, same order).
- a folder (`write` with a path without suffix): ``PATH/<class>/<index>.png``, the layout ``--dataset folder:PATH``
  reads (`landscape.data.folder`), 8-bit grey or RGB PNGs, named by their position in the training split (zero
  padded, so a class folder's sorted order is the split's order). Only the training images are written: a folder
  has no test split, so ``folder:PATH`` splits the poisoned images 80/20 and tests on poisoned images; check the
  protection with the ``.npz``. Class folders are the class names where those are plain file names already in
  sorted order (the loader labels classes by sorted folder name); otherwise ``<k>-<name>`` (``k`` zero padded), so
  every label survives the trip. A folder that is not empty is refused; the folder appears whole or not at all.

Quantisation (`DTYPES`): "uint8" rounds every value to the 1/255 grid (``round(255 x)``, ties to even), as every
published image is; "float32" keeps the images exactly (it re-imports bit for bit, and the ``provided`` poison's
delta is the crafted one to float32 rounding). The default is uint8 (`DEFAULT_DTYPE`): it is what a release is
(PNG, JPEG and every image pipeline are 8-bit), a quarter of the size, and checking the protection on it checks
what is published, rounding included; take float32 to study the crafted poison itself. Both splits get the
file's dtype. Rounding moves every value by at most 0.5/255, so the budget figures of what is published
(`Release.budget`, `budget_figures` on the exported against the clean images) can differ from the crafted
ones: on images born 8-bit (CIFAR, MNIST, a folder of PNGs) with an L∞ budget of k/255 the rounded change stays
within k/255, but where the clean images are off the grid (scikit-learn's digits are v/16) L∞ may grow by up
to 0.5/255, a change below 0.5/255 vanishes (L0 falls), and images left unpoisoned change too
(`Release.unpoisoned`).
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from landscape.data.imageset import ImageSet, Splits
from landscape.errors import PathError, SpecError
from landscape.files import atomic_write
from landscape.paths import making_folder, reporting
from landscape.poisons.base import Crafted, budget_figures

DTYPES = ("uint8", "float32")
DEFAULT_DTYPE = "uint8"
NPZ, FOLDER = "npz", "folder"
_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9 _.+-]*")  # a class name usable as a folder name as it is


@dataclass(frozen=True)
class Release:
    """What `write` wrote.

    Attributes:
        path: the ``.npz`` file or the folder.
        kind: "npz" or "folder".
        dtype: "uint8" or "float32" (a folder: uint8).
        n_images: training images written.
        budget: `budget_figures` of the exported poisoned images against the clean ones (what is published).
        unpoisoned: the same for the images left unpoisoned (``ratio`` < 1): what rounding alone changed.
    """

    path: Path
    kind: str
    dtype: str
    n_images: int
    budget: dict[str, Any]
    unpoisoned: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {"path": str(self.path), "kind": self.kind, "dtype": self.dtype, "n_images": self.n_images,
                "budget": self.budget, "unpoisoned": self.unpoisoned}


def _check_dtype(dtype: str) -> None:
    if dtype not in DTYPES:
        raise SpecError(f"image dtype {dtype!r} is not one of {', '.join(DTYPES)} (uint8: what you publish, "
                        f"float32: exact)")


def target_kind(path: Path, dtype: str = DEFAULT_DTYPE, what: str = "the output") -> str:
    """"npz" or "folder": what `path` names, refused (before any work) unless it can take the release.

    An existing folder, or a path without suffix, is a folder of PNGs (it must be empty or absent, and `dtype`
    uint8); a path ending ``.npz`` is the file (an existing one is replaced atomically). `what` names the path
    in errors (e.g. "--out").
    """
    _check_dtype(dtype)
    if path.suffix.lower() == ".npz" and not path.is_dir():
        return NPZ
    if not (path.is_dir() or path.suffix == ""):
        raise SpecError(f"{what} {str(path)!r}: the suffix {path.suffix!r} is neither .npz nor a folder; give an "
                        f".npz file (e.g. poisoned.npz) or a folder for PNG images (no suffix, new or empty)")
    if path.exists() and not path.is_dir():
        raise PathError(f"{what} {path} is a file; give an .npz file name or a new or empty folder for PNG images")
    if path.is_dir() and any(path.iterdir()):
        raise PathError(f"{what} {path} is a folder that is not empty; give a new or empty folder (nothing in a "
                        f"folder is overwritten) or an .npz file name")
    if dtype != "uint8":
        raise SpecError(f"{what} {path} is a folder of PNG images, which are 8-bit; dtype {dtype!r} needs an .npz "
                        f"file (e.g. {path.name or 'poisoned'}.npz)")
    return FOLDER


def quantise(x: torch.Tensor, dtype: str) -> torch.Tensor:
    """Images in [0, 1] as stored: uint8 ``round(255 x)`` (ties to even) or float32 unchanged."""
    _check_dtype(dtype)
    return (x * 255).round().clamp(0, 255).to(torch.uint8) if dtype == "uint8" else x.to(torch.float32)


def as_unit(images: torch.Tensor) -> torch.Tensor:
    """Stored images back in [0, 1] as float32, as `landscape.data.npz` reads them (uint8 divided by 255)."""
    return images.to(torch.float32) / 255.0 if images.dtype == torch.uint8 else images


def measure(train: ImageSet, crafted: Crafted, images: torch.Tensor) -> tuple[dict[str, Any], dict[str, Any]]:
    """(budget, unpoisoned): `budget_figures` of the stored `images` against the clean training images.

    `budget` over the poisoned images (the mask, as the crafted figures are), `unpoisoned` over the others.
    """
    exported, mask = as_unit(images), crafted.mask
    return budget_figures(train.x[mask], exported[mask]), budget_figures(train.x[~mask], exported[~mask])


def npz_arrays(images: torch.Tensor, splits: Splits, dtype: str) -> dict[str, np.ndarray]:
    """The arrays of the ``.npz`` release: the stored poisoned `images`, y, the clean test split, class_names."""
    return {"x": images.numpy(), "y": splits.train.y.numpy(), "x_test": quantise(splits.test.x, dtype).numpy(),
            "y_test": splits.test.y.numpy(), "class_names": np.asarray(splits.train.class_names, dtype=str)}


def npz_bytes(crafted: Crafted, splits: Splits, dtype: str = DEFAULT_DTYPE) -> bytes:
    """The ``.npz`` release of `crafted` on `splits` as bytes (the app's download)."""
    return _encode(quantise(crafted.apply(splits.train).x, dtype), splits, dtype)


def _encode(images: torch.Tensor, splits: Splits, dtype: str) -> bytes:
    from landscape.data.npz import encode

    return encode(npz_arrays(images, splits, dtype))


def class_folders(names: tuple[str, ...]) -> list[str]:
    """One folder name per class, which the folder loader sorts in label order (see the module docstring)."""
    if all(_PLAIN_NAME.fullmatch(n) for n in names) and len(set(names)) == len(names) and sorted(names) == list(names):
        return list(names)
    width = len(str(len(names) - 1))
    return [f"{k:0{width}d}" + (f"-{s}" if (s := re.sub(r"[^A-Za-z0-9_.+-]+", "_", n).strip("._")) else "")
            for k, n in enumerate(names)]


def _write_folder(path: Path, images: torch.Tensor, train: ImageSet) -> None:
    """PNGs of the uint8 `images` (N, C, H, W) under ``path/<class>/``, moved into place in one rename."""
    from PIL import Image

    folders = class_folders(train.class_names)
    width = len(str(max(len(images) - 1, 0)))
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    with making_folder(path.parent, "the folder of the export"):  # a failure leaves no folder it made
        try:
            tmp.mkdir()
            for name in folders:
                (tmp / name).mkdir()
            pixels = images.permute(0, 2, 3, 1).numpy()  # (N, H, W, C)
            for i, (image, label) in enumerate(zip(pixels, train.y.tolist(), strict=True)):
                picture = Image.fromarray(image[..., 0], "L") if image.shape[2] == 1 else Image.fromarray(image, "RGB")
                picture.save(tmp / folders[label] / f"{i:0{width}d}.png", format="PNG")
            os.replace(tmp, path)  # onto an absent or empty folder: atomic
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def write(path: str | os.PathLike[str], crafted: Crafted, splits: Splits, dtype: str = DEFAULT_DTYPE) -> Release:
    """Write the poisoned training set of `crafted` on `splits` to `path` (``.npz`` file or folder; see the module).

    Args:
        path: an ``.npz`` file (replaced atomically if it exists) or a new or empty folder (PNGs, uint8 only).
        crafted: the poison, crafted on ``splits.train`` (its delta and mask, the poison stage's result).
        splits: the data set's training and (clean) test split.
        dtype: "uint8" (default: what is published) or "float32" (exact).

    Returns:
        The `Release`, with the budget figures of what was written.
    """
    target = Path(path)
    kind = target_kind(target, dtype)
    images = quantise(crafted.apply(splits.train).x, dtype)
    budget, unpoisoned = measure(splits.train, crafted, images)
    with reporting(f"cannot write the poisoned images to {target}"):
        if kind == NPZ:
            atomic_write(target, _encode(images, splits, dtype))
        else:
            _write_folder(target, images, splits.train)
    return Release(target, kind, dtype, len(images), budget, unpoisoned)
