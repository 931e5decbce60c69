"""Frozen, validated specifications: everything that determines a result, and nothing else.

A spec is the unit of caching: `spec.key()` is a stable content hash of its fields (and its class
name), so the same spec always maps to the same store entry, across processes and machines. Specs
hold only plain values (str, int, float, bool, None, tuples of pairs), never tensors or paths that
change the meaning of a result; the device is deliberately not part of a spec.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import Any, Literal

from landscape.errors import SpecError
from landscape.spec import (  # noqa: F401  (machinery re-exported: the specs' import path stays landscape.config)
    SCHEMA_VERSION,
    Spec,
    added_field,
    bounded,
    check_choice,
    checked_options,
    choices,
    format_value,
    freeze_options,
    options_dict,
    parse_value,
)

# The training-time augmentations (the trainer's, and the surrogates' of the poison methods).
Augment = Literal["none", "crop", "crop_flip"]
# The learning-rate schedules over the epochs (`landscape.train.lr_at`; the trainer's, and the surrogates').
Schedule = Literal["constant", "cosine", "multistep"]

# Caps that keep a single request within minutes on a laptop; the error says what it would cost.
MAX_EPOCHS = 500
MAX_BATCH = 8192
# Seeds are non-negative 64-bit signed integers: what torch, NumPy and scikit-learn all accept.
MAX_SEED = 2**63 - 1


@dataclass(frozen=True)
class DataSpec(Spec):
    """Which data set, which subset.

    Written as text (`parse`, the CLI's ``--dataset`` and the Python API): ``NAME``, ``NAME:ROOT`` and, for a
    folder of images, ``folder:PATH?size=N``; e.g. ``digits``, ``cifar10:/data/cifar``, ``npz:/data/mine.npz``,
    ``folder:/data/photos?size=32`` (the user data sets "npz" and "folder": `landscape.data.user`).

    Args:
        name: a registered data set (`landscape.data.DATASETS`: "digits", "cifar10", ..., "npz", "folder").
        root: where the data files are (data sets registered with `needs_root`: a folder, or the ``.npz`` file
            of "npz"; digits ships with scikit-learn).
        n_train: stratified subset size of the training split (None = all).
        n_test: stratified subset size of the test split (None = all).
        split_seed: seed of the train/test split (digits, and user data without a test split) and of the subsets.
        resize: side in pixels every image is resized to (N x N), for data sets registered as `resizable`
            ("folder", whose images may differ in size); None = keep the size (mixed sizes are refused).
    """

    name: str = "digits"
    root: str | None = None
    n_train: int | None = bounded(None, 1)
    n_test: int | None = bounded(None, 1)
    split_seed: int = bounded(0, 0, MAX_SEED)
    resize: int | None = bounded(None, 1, 4096, omit_default=True)

    def check(self) -> None:
        if self.root is not None and not self.root.strip():
            raise SpecError("DataSpec.root is empty; give the data set's folder (or file), or leave it out")

    @classmethod
    def parse(cls, text: str, **fields: Any) -> DataSpec:
        """The spec of ``NAME[:ROOT][?size=N]`` (other fields as keywords; a ROOT in both places is refused)."""
        name, sep, rest = text.strip().partition(":")
        root, _, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
        if not name or (sep and not root):
            raise SpecError(f"data set {text!r} must look like NAME, NAME:ROOT or folder:PATH?size=N")
        if sep:
            if fields.get("root") not in (None, root):
                raise SpecError(f"data set {text!r} names its root, and another root {fields['root']!r} was "
                                f"given; give it once")
            fields["root"] = root
        for item in filter(None, query.split("&")):
            key, eq, value = item.partition("=")
            if key != "size" or not eq or not (value.isascii() and value.isdigit()):  # not "²" (int() refuses it)
                raise SpecError(f"data set option {item!r} in {text!r} is not valid; the one option is size=N "
                                f"(a side in pixels, e.g. folder:PATH?size=32)")
            lo, hi, _ = cls.__dataclass_fields__["resize"].metadata["range"]
            if len(value.lstrip("0")) > len(str(hi)) or not lo <= int(value) <= hi:  # int() refuses 4,301 digits
                raise SpecError(f"data set option {item!r} in {text!r} is out of range; size is a side in pixels "
                                f"from {lo} to {hi}")
            fields["resize"] = int(value)
        return cls(name=name, **fields)

    def text(self) -> str:
        """The spec's name, root and size as `parse` reads them (e.g. ``folder:/data/photos?size=32``)."""
        return self.name + (f":{self.root}" if self.root else "") + (f"?size={self.resize}" if self.resize else "")


@dataclass(frozen=True)
class ModelSpec(Spec):
    """Which architecture.

    Args:
        name: a registered model (`landscape.models.MODELS`: "linear", "mlp", "cnn", "lenet5", "resnet18", ...),
            or a user model `package.module:factory` imported from the Python environment
            (`landscape.models.user`).
        width: channel/hidden-width multiplier (1 = the documented default; registered models only).
        code: a user model's code-and-architecture fingerprint, filled in when the stage layer resolves the
            spec (`landscape.stages.base.resolve_model`), so a changed model gets a new key; None for
            registered models. Anything set by hand is replaced on resolving.
    """

    name: str = "cnn"
    width: int = bounded(1, 1, 16)
    code: str | None = added_field(None)


@dataclass(frozen=True)
class TrainSpec(Spec):
    """How to train (one trainer for every model and experiment).

    Args:
        epochs: number of passes over the training set.
        batch_size: mini-batch size.
        optimizer: "sgd" (with momentum) or "adam".
        lr: learning rate (> 0).
        momentum: SGD momentum in [0, 1).
        nesterov: Nesterov momentum for SGD (`torch.optim.SGD(nesterov=True)`; the TAP surrogate's recipe, from
            Witches' Brew); needs optimizer "sgd" and momentum > 0. Added later: left out of keys at False.
        weight_decay: L2 penalty coefficient (>= 0).
        schedule: learning-rate schedule over the epochs, set per epoch: "constant", "cosine" (to 0 at the end)
            or "multistep" (x0.1 at about 3/8, 5/8 and 7/8 of the epochs, Witches' Brew's; `landscape.train.lr_at`;
            on a few epochs the drops fall together, as torch's MultiStepLR: 1 epoch trains at lr x 1e-3).
        augment: "none", "crop" (random crop after zero padding) or "crop_flip" (plus horizontal flip).
        crop_padding: padding in pixels for the random crop.
        seed: seed of initialisation, shuffling and augmentation.
        checkpoint_every: keep a parameter checkpoint every this many epochs (the last epoch always).
        checkpoint_dtype: "float32" or "float16" storage of checkpoints (bounded memory for big models).
    """

    epochs: int = bounded(30, 1, MAX_EPOCHS)
    batch_size: int = bounded(64, 1, MAX_BATCH)
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = bounded(0.05, 0.0, 10.0, lo_open=True)
    momentum: float = bounded(0.9, 0.0, 0.999)
    nesterov: bool = added_field(False)
    weight_decay: float = bounded(5e-4, 0.0, 1.0)
    schedule: Schedule = "constant"
    augment: Augment = "none"
    crop_padding: int = bounded(1, 0, 16)
    seed: int = bounded(0, 0, MAX_SEED)
    checkpoint_every: int = bounded(1, 1, MAX_EPOCHS)
    checkpoint_dtype: Literal["float32", "float16"] = "float32"

    def check(self) -> None:
        if self.nesterov and (self.optimizer != "sgd" or self.momentum == 0):
            raise SpecError(f"TrainSpec.nesterov = True needs optimizer 'sgd' with momentum > 0, got optimizer = "
                            f"{self.optimizer!r}, momentum = {self.momentum}; set nesterov False or use SGD with "
                            f"momentum")

    @property
    def kept_epochs(self) -> tuple[int, ...]:
        """The epochs whose checkpoints a run keeps: 0 (initialisation), every `checkpoint_every`-th, the last.

        Known from the spec alone, so an epoch a request names is checked before anything trains (a run that
        diverges keeps fewer: its finished epochs, `landscape.train.train`).
        """
        every, last = self.checkpoint_every, self.epochs
        return (0, *(e for e in range(1, last + 1) if e % every == 0 or e == last))

    def check_kept(self, epoch: int, name: str) -> int:
        """`epoch` if a run of this spec keeps its checkpoint, else `SpecError` naming `name` and the kept epochs."""
        kept = self.kept_epochs
        if epoch not in kept:
            shown = ", ".join(map(str, kept)) if len(kept) <= 12 else f"{kept[0]}, {kept[1]}, ..., {kept[-1]}"
            stride = f", a checkpoint every {self.checkpoint_every}" if self.checkpoint_every > 1 else ""
            given = f"{name} {epoch}" if name.startswith("-") else f"{name} = {epoch}"  # a CLI flag, or a field
            raise SpecError(f"{given} is not a stored epoch: training for {self.epochs} epochs{stride} "
                            f"keeps epochs {shown}")
        return epoch


CLEAN = "clean"  # the poison method that is no poison: the clean training set


@dataclass(frozen=True)
class PoisonSpec(Spec):
    """Which unlearnable-example method, at which budget, on which fraction of the training set.

    Args:
        method: a registered poison method (`landscape.poisons.POISONS`), or "clean" for no poison.
        eps: budget under the method's norm (None = the method's documented default for the data set).
        ratio: fraction of the training images perturbed, in (0, 1] (any for "clean", which perturbs none). A
            method at ratio 0 would poison no image, i.e. train the clean run again under the method's name:
            refused.
        seed: seed of the crafting procedure and of the choice of poisoned images.
        options: method-specific settings as sorted (name, value) pairs; see each method's docstring and
            its options dataclass.
        revision: how many fixes have changed what the method crafts on the data set's family; set when the
            spec is resolved (`PoisonMethod.revisions`), so a result stored before a fix has another key and is
            never served for it. Left out of keys at 0.
    """

    method: str = CLEAN
    eps: float | None = bounded(None, 0.0, 1e6, lo_open=True)
    ratio: float = bounded(1.0, 0.0, 1.0)
    seed: int = bounded(0, 0, MAX_SEED)
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)
    revision: int = bounded(0, 0, omit_default=True)

    def check(self) -> None:
        object.__setattr__(self, "options", checked_options("PoisonSpec", self.options))
        if self.ratio == 0 and not self.is_clean:
            raise SpecError(f"PoisonSpec.ratio = 0 poisons no image: the {self.method!r} run would be the clean run "
                            f"again; give a ratio in (0, 1] (the fraction of training images perturbed), or, for "
                            f"a clean run, method {CLEAN!r} (the CLI's --method {CLEAN})")

    @property
    def is_clean(self) -> bool:
        return self.method == CLEAN


@dataclass(frozen=True)
class DefenseSpec(Spec):
    """Which training-time defense (see `landscape.defenses`); "none" is standard training.

    Resolving the spec (`landscape.defenses.resolve_defense`, done by the stage layer) completes the options
    with the defense's documented defaults, so equal settings always give the same cache key.

    Args:
        name: a registered defense ("none", "cutout", "mixup", "jpeg", "grayscale", "bdr", "blur", "at").
        options: defense-specific settings as (name, value) pairs; see each defense's docstring.
    """

    name: str = "none"
    options: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def check(self) -> None:
        object.__setattr__(self, "options", checked_options("DefenseSpec", self.options))

    @property
    def is_none(self) -> bool:
        return self.name == "none"

    def options_dict(self) -> dict[str, Any]:
        """The options as a dict."""
        return dict(self.options)

    @classmethod
    def parse(cls, text: str) -> DefenseSpec:
        """`"jpeg"`, `"jpeg:quality=30"` or `"at:eps=0.125,steps=5"` -> spec (values parsed as int/float/bool)."""
        name, _, rest = text.strip().partition(":")
        options: dict[str, Any] = {}
        for item in filter(None, (s.strip() for s in rest.split(","))):
            k, sep, v = item.partition("=")
            if not sep:
                raise SpecError(f"defense option {item!r} in {text!r} must look like name=value")
            options[k.strip()] = parse_value(v.strip())
        return cls(name=name.strip(), options=freeze_options(options))


def combined_key(*specs: Spec | None) -> str:
    """Stable hash of several specs together (e.g. data + poison), the key of a stage that depends on all."""
    parts = [s.key() if s is not None else "none" for s in specs]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


SAL_PRESETS = ("fast", "paper")


@dataclass(frozen=True)
class SALSpec(Spec):
    """How SAL (Sharpness-Aware Learnability, Ye et al., ICLR 2025) is measured; see `landscape.sal`.

    Use `SALSpec.preset("paper")` for the authors' procedure and `SALSpec()` (= `preset("fast")`) for the
    fast default that is checked against it (`bench/sal_speed.py`). The paper preset is K = 10 rounds of one
    full SGD pass (lr 0.1, the trainer's batch size and augmentation) over the whole training set, running-loss
    baseline. The fast default keeps the authors' SGD dynamics and running baseline but runs K = 2 rounds on a
    fixed 1024-image subset with lr 0.2 (lr x steps ~ 6.4, the SGD "time" of about 3 of the authors' rounds on
    digits, where most of their 10 rounds' gain is made) in the batched engine. On digits (cnn, clean and EM,
    30 epochs; `bench/sal_speed.py --floor`) it is 12x cheaper, its per-epoch layer ranking agrees with the
    paper preset's (mean Spearman 0.74) as well as the paper preset with another seed agrees with itself
    (0.72), 0.88 on the epochs whose ranking the paper preset reproduces, and UD differs by 0.07 (TAP, not used
    to choose the settings: 0.80 vs the paper preset's 0.83 with itself, 0.88, |dUD| 0.11). `rounds=4`
    raises that 0.88 to 0.93 at twice the cost; a smaller subset is cheaper but agrees less
    (`bench/sal_variants.py`). On data sets much larger than the subset a fast round covers far fewer steps than
    the authors' pass; that regime has not been checked against the paper preset. Issue #14's rule, on the
    first 10 epochs (`bench/sal_fidelity.py`, EM): on the checkpoints where the paper preset reproduces its own
    ranking (seed-to-seed Spearman >= 0.95), the cnn's fast default agrees at 0.967 with a floor of 1.00
    (14 of 20 checkpoints; 11.9x cheaper; misses floor - 0.03 by 0.003, on EM epochs; AMD EPYC), the 21-layer
    `resnet18s` at 0.992 with a floor of 0.997 (epoch 1 of clean and EM only; 17.8x cheaper), and in a rerun over
    epochs 1-4 at 0.986 with a floor of 0.993 (the 4 checkpoints of epochs 1-2; from epoch 3 the preset no longer
    reproduces itself there, 0.92-0.94; 17.9x cheaper; with training seed 1, 0.991 against 0.995;
    `results/sal_fidelity_r18s.jsonl`). On an Intel Xeon
    (other trained checkpoints) the cnn's fast default agrees at 0.943 (9 checkpoints) and, with training seed 1,
    0.893 (16), while the batched engine with the paper's settings agrees at 1.000: the gap is the two rounds' SGD
    time, and the settings that close it (rounds=4: 0.987) cost more than 10x less allows
    (`bench/results/sal_fidelity_intel.md`).

    Args:
        eps: relative radius of the ball, ||delta||_F <= eps * ||theta_l||_F.
        rounds: K, the rounds of each inner problem (min and max); the best value after each round is kept.
            A round is one pass of plain mini-batch SGD (`lr`, no momentum, last partial batch dropped) over the
            SAL data, then projection onto the ball, then an evaluation of the loss over the SAL data.
        lr: learning rate of the SGD steps (the authors' 0.1).
        batch_size: mini-batch size of a pass; None = the trainer's batch size (the authors reuse their loader).
        engine: "reference" = the authors' loop: whole-model forward passes, one copy at a time, over the
            model's own training set with the trainer's augmentation (if `augment`), evaluation pass over the
            same loader; "batched" = the same rounds with the min and max copies stacked in one pass, the
            input of the layer's block computed once per epoch and reused (no augmentation), on the fixed
            evaluation subset (`eval_size`).
        augment: "reference" engine: apply the trainer's augmentation in the SAL passes (the authors' loader does).
        eval_size: "batched" engine: size of the fixed, seeded subset of the training set that the SAL passes
            use (None = all).
        baseline: "running" = the epoch's running training loss/accuracy (the authors' code); "fresh" = the
            loss/accuracy of the model at theta on the SAL data, evaluated in eval mode.
        every: measure SAL every this many epochs (and always at the last epoch).
        seed: seed of the SAL shuffles and of the evaluation subset.
    """

    eps: float = bounded(0.05, 0.0, 10.0, lo_open=True)
    rounds: int = bounded(2, 1, 1000)
    lr: float = bounded(0.2, 0.0, 100.0, lo_open=True)
    batch_size: int | None = bounded(None, 1, MAX_BATCH)
    engine: Literal["reference", "batched"] = "batched"
    augment: bool = False
    eval_size: int | None = bounded(1024, 1, 10_000_000)
    baseline: Literal["running", "fresh"] = "running"
    every: int = bounded(1, 1, MAX_EPOCHS)
    seed: int = bounded(0, 0, MAX_SEED)

    @classmethod
    def preset(cls, name: str) -> SALSpec:
        """The named preset: "paper" (the authors' procedure) or "fast" (the default, checked against it)."""
        check_choice("SALSpec", "preset", name, SAL_PRESETS)
        if name == "paper":
            return cls(rounds=10, lr=0.1, batch_size=None, engine="reference", augment=True, eval_size=None,
                       baseline="running")
        return cls()

    @property
    def preset_name(self) -> str:
        """"paper" or "fast" if this spec equals that preset, else "custom"."""
        for name in SAL_PRESETS:
            if self == SALSpec.preset(name):
                return name
        return "custom"


# The grid cap of one surface: 101 x 101 points (or 10201 points on a line). On the digits default (cnn,
# 360 test images) that is about 3.7 million image forward passes, about a minute on a laptop CPU; a
# CIFAR ResNet-18 on 10k test images at the cap is about 100 million passes, hours even on a GPU.
MAX_GRID_POINTS = 101 * 101


@dataclass(frozen=True)
class SurfaceSpec(Spec):
    """Which loss-landscape slice to compute (see `landscape.surface` and `landscape.directions`).

    Args:
        kind: "pca" (plane of the top two principal components of the training trajectories, paths
            projected on it), "random" (filter-normalised random plane around each model, after Li et al.
            2018), or "interp" (the line clean -> poisoned; in 2D the plane through clean, poisoned and a
            third model: a second poisoned model if given, else the shared initialisation).
        dims: 1 for a line slice, 2 for a plane.
        resolution: grid points per axis (the grid has resolution**dims points, at most `MAX_GRID_POINTS`).
        alpha_range: (lo, hi) of the first coordinate; None = automatic (pca: fit the paths with a 20%
            border; random: (-1, 1); interp: (-0.5, 1.5) or wider to hold the third model).
        beta_range: (lo, hi) of the second coordinate (2D only); None = automatic as above.
        plane: "pca" only: "shared" = one plane from the PCA of all trajectories pooled, centred on the clean
            final model, with every path projected on it; "own" = each model in the PCA plane of its own
            trajectory, centred on its own final model (one surface per model).
        norm: normalisation of random directions: "filter", "layer" or "none".
        bias_bn: random directions on biases and BatchNorm parameters: "zero", "random" or "weight".
        split: evaluation data: the clean "test" split or the clean "train" split.
        n_eval: size of the fixed, seeded evaluation subset of the split (None = the whole split).
        batch_size: images per evaluation batch (per-batch values are kept for error bars).
        seed: seed of the random directions and of the evaluation subset.
    """

    kind: Literal["pca", "random", "interp"] = "pca"
    dims: Literal[1, 2] = 2
    resolution: int = bounded(31, 2)
    alpha_range: tuple[float, float] | None = None
    beta_range: tuple[float, float] | None = None
    plane: Literal["shared", "own"] = "shared"
    norm: Literal["filter", "layer", "none"] = "filter"
    bias_bn: Literal["zero", "random", "weight"] = "zero"
    split: Literal["test", "train"] = "test"
    n_eval: int | None = bounded(None, 1)
    batch_size: int = bounded(128, 1, MAX_BATCH)
    seed: int = bounded(0, 0, MAX_SEED)

    def check(self) -> None:
        if self.points > MAX_GRID_POINTS:
            side = int(math.isqrt(MAX_GRID_POINTS))
            images = f"{self.n_eval:,} images" if self.n_eval else f"every image of the {self.split} split"
            raise SpecError(
                f"SurfaceSpec.resolution = {self.resolution} gives {self.points:,} grid points, over the cap of "
                f"{MAX_GRID_POINTS:,} ({side}x{side}); it would cost {self.points:,} x {images} forward passes. "
                f"Use resolution <= {side if self.dims == 2 else MAX_GRID_POINTS} or a 1D slice."
            )
        for name in ("alpha_range", "beta_range"):
            value = getattr(self, name)
            if value is None:
                continue
            try:
                lo, hi = (float(v) for v in value)
            except (TypeError, ValueError):
                raise SpecError(f"SurfaceSpec.{name} = {value!r} must be a pair (lo, hi) of numbers") from None
            if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
                raise SpecError(f"SurfaceSpec.{name} = {value!r} must be finite with lo < hi")
            object.__setattr__(self, name, (lo, hi))
        if self.dims == 1 and self.beta_range is not None:
            raise SpecError("SurfaceSpec.beta_range is only meaningful for dims = 2")

    @property
    def points(self) -> int:
        """Number of grid points (resolution ** dims)."""
        return self.resolution ** self.dims


# The Hessian batch keeps the double-backward graph of every image in memory (like PyHessian's single-batch
# mode), so its size is capped; Lanczos keeps one block-sized vector per step, so its steps are capped too.
MAX_CURVATURE_DATA = 8192
MAX_LANCZOS_STEPS = 1000


@dataclass(frozen=True)
class CurvatureSpec(Spec):
    """How the curvature of the loss is measured per layer (see `landscape.curvature`).

    Every weight layer's Hessian block (and, with `whole_model`, the Hessian over all parameters) is probed
    with exact Hessian-vector products on a fixed, seeded subset of images, the model in eval mode. One
    Lanczos run per block gives the top-k eigenvalues and the spectral density (stochastic Lanczos
    quadrature, as PyHessian's ESD); the trace is Hutchinson's estimator with Rademacher probes, deflated by
    that run's Krylov basis (Hutch++-style), with its standard error.

    Args:
        split: the images the loss is taken over: "train" = the model's own (possibly poisoned) training set,
            the loss SAL measures; "test" = the clean test set.
        n_data: size of the fixed, seeded subset of the split (None = all, at most `MAX_CURVATURE_DATA`).
        top_k: how many of the largest eigenvalues to report (the first is lambda_max).
        tol: a Ritz value counts as converged when its residual ||H y - theta y|| is at most tol * |theta|;
            Lanczos stops when the top_k have converged (and `min_steps` are done).
        min_steps: Lanczos steps every run makes at least: the nodes of its spectral density and the size of
            the Krylov basis that deflates the trace estimate (more = finer density, smaller trace error).
        max_steps: cap on the Lanczos steps of one run (PyHessian's maxIter); a block of smaller dimension
            stops at its dimension.
        probes: Rademacher probes of the deflated Hutchinson estimate (at least 2, for the standard error).
        esd_runs: Lanczos runs (start vectors) per block averaged in the spectral density; the first also gives
            the eigenvalues and the deflation basis.
        whole_model: also measure the Hessian over all parameters (PyHessian's whole-model numbers).
        every: measure every this many epochs (and always at the last).
        seed: seed of the data subset, the start vectors and the probes (the same at every epoch).
    """

    split: Literal["train", "test"] = "train"
    n_data: int | None = bounded(512, 1, MAX_CURVATURE_DATA)
    top_k: int = bounded(3, 1, 100)
    tol: float = bounded(1e-3, 0.0, 1.0, lo_open=True)
    min_steps: int = bounded(20, 1, MAX_LANCZOS_STEPS)
    max_steps: int = bounded(100, 1, MAX_LANCZOS_STEPS)
    probes: int = bounded(8, 2, 100_000)
    esd_runs: int = bounded(1, 1, 256)
    whole_model: bool = True
    every: int = bounded(1, 1, MAX_EPOCHS)
    seed: int = bounded(0, 0, MAX_SEED)

    def check(self) -> None:
        if self.max_steps < max(self.min_steps, self.top_k):
            raise SpecError(f"CurvatureSpec.max_steps = {self.max_steps} must be at least min_steps "
                            f"({self.min_steps}) and top_k ({self.top_k})")


@dataclass(frozen=True)
class LayerSliceSpec(Spec):
    """A slice of the loss along directions that move one weight tensor (or a group) only (`landscape.layer_slices`).

    The directions are Gaussian on the chosen tensors, normalised against them (Li et al. 2018's filter
    normalisation, restricted to the layer) and drawn from `seed`, so the clean and the poisoned model get the
    same raw directions, each scaled to its own weights, and the same normalised coordinates. SAL's ball
    ||delta||_F <= eps ||theta_l||_F (Ye et al., ICLR 2025) is marked in those coordinates (radius eps with
    filter normalisation).

    Args:
        layers: the state-dict entries to move (one weight, e.g. "2.weight" of the cnn, or a group); at least one.
        epoch: the stored epoch sliced (None = the last one the run stored).
        dims: 1 for a line, 2 for a plane.
        resolution: grid points per axis (at most `MAX_GRID_POINTS` in all).
        alpha_range: (lo, hi) of the first coordinate; None = ten SAL radii either side, (-10 r, 10 r).
        beta_range: (lo, hi) of the second coordinate (2D only); None = as alpha.
        norm: normalisation of the directions: "filter", "layer" or "none".
        eps: SAL's relative ball radius, marked on the slice (SALSpec's default 0.05).
        split: "train" = the model's own (possibly poisoned) training set, the loss SAL measures; "test" = the
            clean test set.
        n_eval: size of the fixed, seeded evaluation subset of the split (None = all of it).
        batch_size: images per evaluation batch.
        seed: seed of the directions and of the evaluation subset.
    """

    layers: tuple[str, ...]
    epoch: int | None = bounded(None, 0, MAX_EPOCHS)
    dims: Literal[1, 2] = 1
    resolution: int = bounded(21, 2)
    alpha_range: tuple[float, float] | None = None
    beta_range: tuple[float, float] | None = None
    norm: Literal["filter", "layer", "none"] = "filter"
    eps: float = bounded(0.05, 0.0, 10.0, lo_open=True)
    split: Literal["train", "test"] = "train"
    n_eval: int | None = bounded(1024, 1)
    batch_size: int = bounded(256, 1, MAX_BATCH)
    seed: int = 0

    def check(self) -> None:
        if not self.layers or not all(isinstance(n, str) and n for n in self.layers):
            raise SpecError(f"LayerSliceSpec.layers = {self.layers!r} must name at least one tensor (e.g. a weight "
                            f"of `landscape.models.weight_layers(model)`)")
        try:  # the grid cap and the range rules of every surface
            SurfaceSpec(kind="random", dims=self.dims, resolution=self.resolution, alpha_range=self.alpha_range,
                        beta_range=self.beta_range, n_eval=self.n_eval)
        except SpecError as why:
            raise SpecError(str(why).replace("SurfaceSpec.", "LayerSliceSpec.")) from None
        for name in ("alpha_range", "beta_range"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, tuple(float(v) for v in value))


def _default_ue() -> PoisonSpec:
    return PoisonSpec(method="em")


@dataclass(frozen=True)
class ExperimentSpec(Spec):
    """One clean-vs-poisoned experiment: data, model, training, the poison, and how SAL is measured.

    `landscape.experiment.run_experiment` trains the clean and the poisoned model with the same `train`
    spec and seed, measures SAL per layer and epoch with `sal`, and computes UD.

    Args:
        data: the data set.
        model: the architecture (both runs start from the same initial weights).
        train: the training recipe (both runs).
        poison: the unlearnable-example method ("clean" makes the poisoned run the clean run: UD = 1).
        sal: the SAL settings (`SALSpec()` = the fast default; `SALSpec.preset("paper")` = the authors').
        defense: a training-time defense applied to both runs (the clean reference is trained on clean data
            under the same defense, so UD isolates the poison); "none" (the default) leaves `key()` as it was
            before the field existed (an `added_field`).
    """

    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=ModelSpec)
    train: TrainSpec = field(default_factory=TrainSpec)
    poison: PoisonSpec = field(default_factory=_default_ue)
    sal: SALSpec = field(default_factory=SALSpec)
    defense: DefenseSpec = added_field(default_factory=DefenseSpec)
