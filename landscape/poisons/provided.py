"""`provided`: your own poisoned training images as the poisoned run's training set (nothing is crafted).

Not an unlearnable-example method and not in the `POISONS` registry: it is how poisoned images made elsewhere
(a published UE release, your own crafting code) enter the same study. ``PoisonSpec(method="provided",
options=(("images", PATH),))`` names an ``.npz`` file holding an array ``x``: one poisoned image per training
image of the data set, in the same order, under the layout and value rules of `landscape.data.npz` (read with
``allow_pickle=False``); ``x`` alone, or a data set of that format of which only ``x`` is read (e.g. the poisoned
training set ``craft --out`` writes, `landscape.poisons.release`). The stage layer resolves the spec by adding
the file's SHA-256 (option "sha256"), so every key follows the file's content, and stores
``delta = x_poisoned - x`` as the poison entry (`Crafted`, exact up to float32 rounding of the difference), so
every later stage (training, SAL, UD, surfaces) is the one a crafted poison goes through. The budget figures
are measured; the norm is "none" (no budget was set).

The file's images are used as they are: an eps or a ratio other than the default (``--eps``, ``--ratio``) is
refused (an image the file leaves unchanged is a clean one; the ratio is measured), and the crafting seed is set
to 0, as nothing is crafted: the key follows the file's content only, whatever ``--poison-seed`` (or the seed
shift of ``run --seeds N``, `landscape.seeds.seed_specs`) says.

Shape:
    images (N, C, H, W) in [0, 1], the training split's shape (checked from the file's header when the spec is
    resolved for the data set, before any work); delta (N, C, H, W).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from landscape.config import PoisonSpec, freeze_options, options_dict
from landscape.data.fingerprint import file_sha256
from landscape.data.imageset import ImageSet
from landscape.errors import DataError, SpecError
from landscape.paths import user_path
from landscape.poisons.base import Crafted, budget_figures

PROVIDED = "provided"


def resolve(spec: PoisonSpec, train_shape: tuple[int, ...], dataset: str) -> PoisonSpec:
    """`spec` with the content hash of its images file among its options and seed 0 (nothing is crafted).

    Refused: a missing file, images whose shape (read from the file's header, no array is loaded) is not
    `train_shape`, the (N, C, H, W) of the training split of `dataset`, and an eps or a ratio other than the
    default (the images are used as they are).
    """
    default, why = PoisonSpec(), {"eps": "no budget is applied to them", "ratio": "the images it changes are the "
                                  "poisoned ones, their fraction is measured"}
    for name, reason in why.items():
        given = getattr(spec, name)
        if given != getattr(default, name):
            raise SpecError(f"PoisonSpec.{name} = {given:g} (the CLI's --{name}) does not apply to poison "
                            f"{PROVIDED!r}: the file's images are used as they are ({reason}); leave it out (its "
                            f"default is {getattr(default, name)})")
    options = options_dict(spec.options)
    unknown = sorted(set(options) - {"images", "sha256"})
    if unknown or "images" not in options:
        raise SpecError(f"poison 'provided' takes one option, images=PATH (an .npz of the poisoned training "
                        f"images); got {sorted(options) or 'none'}")
    path = user_path(str(options["images"]), "option images")
    if not path.is_file():
        raise DataError(f"the poisoned images file {path} does not exist; expected an .npz holding x")
    from landscape.data import npz

    check_shape(path, npz.images_shape(path), train_shape, dataset)
    return spec.replace(seed=0, options=freeze_options({"images": str(path), "sha256": file_sha256(path)}))


def check_shape(path: str | Path, shape: tuple[int, ...], train_shape: tuple[int, ...], dataset: str) -> None:
    """Refuse poisoned images of `shape` for a training split of `train_shape` (both (N, C, H, W)) unless equal."""
    if tuple(shape) != tuple(train_shape):
        raise DataError(f"{path} holds images {tuple(shape)} (N, C, H, W) but the training split of {dataset!r} is "
                        f"{tuple(train_shape)}; give one poisoned image per training image, in order")


def crafted(train: ImageSet, spec: PoisonSpec, dataset: str) -> Crafted:
    """The poison entry of the user's poisoned images for the training split `train` (checked to match it)."""
    from landscape.data import npz

    started = time.perf_counter()
    path = str(options_dict(spec.options)["images"])
    poisoned = torch.from_numpy(npz.read_images(path))
    check_shape(path, tuple(poisoned.shape), tuple(train.x.shape), dataset)
    delta = poisoned - train.x
    mask = (delta != 0).flatten(1).any(dim=1)
    meta = {"method": PROVIDED, "dataset": dataset, "eps": None, "eps_is_default": False, "norm": "none",
            "granularity": "sample", "ratio": float(mask.float().mean()), "n_poisoned": int(mask.sum()),
            "seed": spec.seed, "options": options_dict(spec.options),
            "budget": budget_figures(train.x[mask], poisoned[mask]), "seconds": time.perf_counter() - started}
    return Crafted(delta, mask, meta)
