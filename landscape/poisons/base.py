"""The poison template: `PoisonMethod` owns everything but the algorithm; `Crafted` is its replayable result.

A method subclass declares its typed options (a frozen `MethodOptions` dataclass), its budget per data-set
family, and implements only `perturb(x, y, ...) -> Perturbation`. The base class validates the images,
labels and budget (with errors that name the scale), resolves the per-family defaults and options,
moves tensors to the device, seeds every random draw from `PoisonSpec.seed` through `torch.Generator`s
(never the global RNG), projects `delta` onto the budget under the method's norm, clamps the poisoned
images to [0, 1], keeps only the `ratio` of images chosen to be poisoned, and measures the budget
figures. Crafting (stateful, random, possibly training a surrogate) is separate from applying
(`Crafted.apply`, pure), so a stored perturbation is re-applied exactly.

What the surrogate-based methods share is in `landscape.poisons.surrogate`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
import torch

from landscape.config import CLEAN, DataSpec, PoisonSpec, options_dict
from landscape.data.imageset import ImageSet, check_images
from landscape.device import reproducible_threads
from landscape.display import number
from landscape.errors import BudgetError, ShapeError, SpecError
from landscape.registry import Registry
from landscape.spec import Spec, choices, field_hints, format_value

POISONS: Registry[type[PoisonMethod]] = Registry("poison method", also_valid=(CLEAN,))

Norm = Literal["linf", "l2", "l0", "none"]
Progress = Callable[[int, int], None]

# Tolerance of the budget check: `clamp(x + d) - x` is exact up to float32 rounding of the sum.
BUDGET_TOL = 1e-5

# Rough CPU throughput of a surrogate in image-gradient evaluations per second, times the thousands of input
# values per image (one thread). Measured from the recorded crafting rows (the IGE they ran over their seconds):
# the digits `cnn` 23-31 k IGE/s on 64-value images (EM, REM, TAP, HYPO; bench/results/ue_effect.jsonl and
# ue_budget.jsonl), i.e. about 1700; `lenet5` 2.5-4.2 k IGE/s on 784-value MNIST-5k images (one loaded row 1.3 k;
# ue_budget_mnist5k_{a,b}.jsonl), about 2800. ResNet-18 on 32x32x3 (and any other surrogate) is an unmeasured
# guess of ~33 IGE/s. Only used for the seconds of the cost estimate (tests/test_claims.py checks the two).
_IGE_PER_S_PER_KVALUE = {"cnn": 1700.0, "lenet5": 2800.0, "resnet18": 100.0}


def child_generator(generator: torch.Generator) -> torch.Generator:
    """An independent CPU generator seeded from `generator` (so each stage's draws do not shift the others')."""
    return torch.Generator().manual_seed(int(torch.randint(2**62, (1,), generator=generator)))


def dataset_family(dataset: str | DataSpec) -> str:
    """The poison-defaults family of a data set (its registry metadata); unknown names raise `SpecError`.

    A data set whose family depends on its images (the user data sets "npz" and "folder", whose `family`
    metadata is a function of the spec) must be given as its `DataSpec`.
    """
    from landscape.data import DATASETS

    name = dataset if isinstance(dataset, str) else dataset.name
    if name not in DATASETS:
        raise SpecError(f"no poison defaults for data set {name!r}; valid choices: {', '.join(DATASETS.names())}")
    family = DATASETS.meta(name)["family"]
    if not callable(family):
        return family
    if isinstance(dataset, str):
        raise SpecError(f"the poison defaults of data set {name!r} depend on its images; give its DataSpec")
    return family(dataset)


def budget_figures(x_clean: torch.Tensor, x_poisoned: torch.Tensor) -> dict[str, Any]:
    """Size of the perturbation `x_poisoned - x_clean` under every norm, over all images.

    Args:
        x_clean: clean images (N, C, H, W) in [0, 1].
        x_poisoned: poisoned images, same shape.

    Returns:
        `linf` (largest absolute change), `l2_mean`/`l2_max` (per-image L2 norm, mean and max), `l0_mean`
        (mean number of changed pixel positions per image; a position counts once whatever its channels),
        `psnr` (dB, mean over the changed images of 10·log10(1/MSE); None if no image changed) and
        `n_changed` (images with any change). Values are on the [0, 1] pixel scale.
    """
    if x_clean.shape != x_poisoned.shape:
        raise ShapeError(f"clean {tuple(x_clean.shape)} and poisoned {tuple(x_poisoned.shape)} shapes differ")
    n = len(x_clean)
    if n == 0:
        return {"linf": 0.0, "l2_mean": 0.0, "l2_max": 0.0, "l0_mean": 0.0, "psnr": None, "n_changed": 0}
    d = (x_poisoned.double() - x_clean.double()).flatten(1)  # (N, C*H*W)
    l2 = d.norm(dim=1)
    changed_pos = (x_poisoned != x_clean).any(dim=1).flatten(1).sum(1)  # (N,) pixel positions
    mse = (d**2).mean(1)
    changed = mse > 0
    psnr = float((10 * torch.log10(1.0 / mse[changed])).mean()) if bool(changed.any()) else None
    return {
        "linf": float(d.abs().max()),
        "l2_mean": float(l2.mean()),
        "l2_max": float(l2.max()),
        "l0_mean": float(changed_pos.double().mean()),
        "psnr": psnr,
        "n_changed": int(changed.sum()),
    }


def check_labels(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> None:
    """Raise `ShapeError` unless `y` is int64 (N,) with one label per image of `x`, each in [0, num_classes)."""
    if not isinstance(y, torch.Tensor) or y.dtype != torch.int64 or y.ndim != 1:
        got = f"{y.dtype} {tuple(y.shape)}" if isinstance(y, torch.Tensor) else type(y).__name__
        raise ShapeError(f"labels must be an int64 tensor of shape (N,), got {got}")
    if len(y) != len(x):
        raise ShapeError(f"{len(x)} images but {len(y)} labels; they must match one to one")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        raise ShapeError(f"labels span [{int(y.min())}, {int(y.max())}] but num_classes = {num_classes}")


def project(delta: torch.Tensor, eps: float, norm: Norm) -> torch.Tensor:
    """Project each image's perturbation onto the budget ball of radius `eps` under `norm` (a new tensor).

    Args:
        delta: perturbations (N, C, H, W).
        eps: L∞/L2 radius on the [0, 1] scale, or the L0 number of pixel positions; ignored for "none".
        norm: "linf" (clip each value), "l2" (rescale images whose norm exceeds eps), "l0" (keep the eps
            pixel positions with the largest change, all channels of a position together) or "none".
    """
    if norm == "linf":
        return delta.clamp(-eps, eps)
    if norm == "l2":
        norms = delta.flatten(1).norm(dim=1).clamp_min(1e-12)  # (N,)
        return delta * (eps / norms).clamp(max=1.0)[:, None, None, None]
    if norm == "l0":
        k = int(eps)
        magnitude = delta.abs().amax(dim=1).flatten(1)  # (N, H*W)
        if len(delta) == 0 or int((magnitude > 0).sum(1).max()) <= k:
            return delta.clone()
        keep = torch.zeros_like(magnitude, dtype=torch.bool)
        keep.scatter_(1, magnitude.topk(k, dim=1).indices, True)
        keep &= magnitude > 0
        return delta * keep.view(len(delta), 1, *delta.shape[2:])
    if norm == "none":
        return delta.clone()
    raise SpecError(f"unknown norm {norm!r}; valid choices: linf, l2, l0, none")


def within_budget(delta: torch.Tensor, eps: float, norm: Norm, tol: float = BUDGET_TOL) -> bool:
    """True if every image's perturbation is inside the budget (float tolerance `tol`)."""
    if norm == "none" or len(delta) == 0:
        return True
    if norm == "linf":
        return float(delta.abs().max()) <= eps + tol
    if norm == "l2":
        return float(delta.flatten(1).norm(dim=1).max()) <= eps * (1 + tol) + tol
    if norm == "l0":
        return int((delta != 0).any(dim=1).flatten(1).sum(1).max()) <= int(eps)
    raise SpecError(f"unknown norm {norm!r}; valid choices: linf, l2, l0, none")


@dataclass(repr=False)
class Crafted:
    """A crafted poison, replayable exactly: `poisoned = clamp(x + delta, 0, 1)` on the masked images.

    Attributes:
        delta: float32 (N, C, H, W) on the CPU; zero on unpoisoned images; already keeps x + delta in [0, 1].
        mask: bool (N,), which training images are poisoned (`PoisonSpec.ratio` of them).
        meta: method, eps, norm, granularity, options, budget figures, crafting seconds, surrogate history...
    """

    delta: torch.Tensor
    mask: torch.Tensor
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.delta.dtype != torch.float32 or self.delta.ndim != 4:
            raise ShapeError(f"delta must be float32 (N, C, H, W), got {self.delta.dtype} {tuple(self.delta.shape)}")
        if self.mask.dtype != torch.bool or self.mask.shape != self.delta.shape[:1]:
            raise ShapeError(f"mask must be bool of shape ({len(self.delta)},), got {self.mask.dtype} "
                             f"{tuple(self.mask.shape)}")

    def __repr__(self) -> str:
        m = self.meta
        eps = f", {m.get('norm')} eps {format_value(m['eps'])}" if m.get("eps") is not None else ""
        linf = (m.get("budget") or {}).get("linf")
        seconds = f", {number(m['seconds'])} s" if m.get("seconds") is not None else ""
        return (f"Crafted({m.get('method', 'a poison')} on {m.get('dataset', 'images')}: {int(self.mask.sum())} of "
                f"{len(self.mask)} images {tuple(self.delta.shape[1:])} perturbed{eps}"
                f"{'' if linf is None else f', largest change {number(linf)}'}{seconds})")

    def apply(self, train: ImageSet) -> ImageSet:
        """The poisoned copy of `train` (which is not modified); its images must be the ones crafted on."""
        if tuple(train.x.shape) != tuple(self.delta.shape):
            raise ShapeError(f"this poison was crafted for images {tuple(self.delta.shape)}, "
                             f"got {tuple(train.x.shape)}")
        return train.with_images((train.x + self.delta).clamp(0.0, 1.0))

    def to_store(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata, arrays) for `Store.save`; `from_store` inverts it exactly."""
        return dict(self.meta), {"delta": self.delta.numpy(), "mask": self.mask.numpy().astype(np.uint8)}

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Crafted:
        delta = torch.from_numpy(np.array(arrays["delta"], dtype=np.float32, copy=True))
        mask = torch.from_numpy(np.array(arrays["mask"], copy=True).astype(bool))
        return cls(delta, mask, dict(meta))


@dataclass(frozen=True)
class MethodOptions(Spec):
    """Base of a method's typed options: a frozen dataclass whose fields are checked like a spec's.

    A method declares a subclass; its field defaults are the method's settings for the digits family
    (`PoisonMethod.family_options` overrides them for the others). Types and `Literal` choices are checked
    on construction; an integer given for a float field is stored as a float, so equal settings give equal keys.
    """

    def check(self) -> None:
        hints = field_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if hints[f.name] is float and isinstance(value, int) and not isinstance(value, bool):
                try:
                    object.__setattr__(self, f.name, float(value))
                except OverflowError:
                    raise SpecError(f"{type(self).__name__}.{f.name} is an integer of {value.bit_length()} bits, "
                                    f"beyond the float range (about ±1.8e308)") from None


@dataclass(frozen=True)
class Perturbation:
    """What `perturb` returns: the raw perturbation and what the method reports about crafting it.

    Attributes:
        delta: (N, C, H, W) raw perturbation (projected onto the budget by the base class afterwards).
        extras: JSON-plain facts for `Crafted.meta` (surrogate histories, chosen pixels or filters, ...).
    """

    delta: torch.Tensor
    extras: dict[str, Any] = field(default_factory=dict)


class PoisonMethod(ABC):
    """Template for one unlearnable-example method; subclasses implement `perturb` only.

    Class data a subclass declares:
        norm: the threat model, "linf", "l2", "l0" or "none" (not norm-bounded; `eps` is then the
            method's own strength parameter, documented by the method).
        budgets: the default eps per data-set family ("digits", "mnist", "cifar"); its keys are the families
            the method supports.
        Options: its typed options (a `MethodOptions` dataclass, defaults = the digits family's); an option
            "mode" ("sample" = one perturbation per image, "class" = one per class) picks the granularity.
        family_options: the options of the families whose defaults differ from `Options()`.
        granularity_without_mode: the granularity of a method that has no "mode" option.
        additive: True if the method adds a pattern (so class-wise means the same pattern per class);
            False if it transforms the image (OPS sets a pixel, CUDA convolves).
        quick_options: cheap settings (few steps) for tests and smoke runs; not a faithful setting.
        revisions: per family, how many fixes have changed what the method crafts there for the same spec. A fix
            bumps its families' count (with a dated comment), which enters the resolved `PoisonSpec.revision`
            and so every key that depends on the poison: results stored before the fix are recomputed, not
            served. A family a fix did not change keeps its count, so its stored results stay valid.

    Args:
        spec: the method name, eps (None = the default for the data set), ratio, seed and options.
        dataset: data set name, selects the defaults ("digits", "cifar10", "cifar100"), or its `DataSpec` (needed
            for the user data sets, whose defaults depend on their images).
        device: where the crafting computation runs; results are returned on the CPU.
    """

    norm: ClassVar[Norm] = "linf"
    budgets: ClassVar[dict[str, float]] = {}
    Options: ClassVar[type[MethodOptions]] = MethodOptions
    family_options: ClassVar[dict[str, MethodOptions]] = {}
    granularity_without_mode: ClassVar[str] = "sample"
    additive: ClassVar[bool] = True
    quick_options: ClassVar[dict[str, Any]] = {}
    revisions: ClassVar[dict[str, int]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """A method of this package gets the notes its docstring's footnote marks cite (`landscape.poisons.sweeps`)."""
        super().__init_subclass__(**kwargs)
        if cls.__module__.startswith("landscape.poisons.") and "__doc__" in vars(cls):
            from landscape.poisons.sweeps import with_notes

            cls.__doc__ = with_notes(cls.__doc__)

    def __init__(self, spec: PoisonSpec, *, dataset: str | DataSpec, device: torch.device | str = "cpu") -> None:
        self.spec = spec
        self.dataset = dataset if isinstance(dataset, str) else dataset.name
        self.device = torch.device(device)
        self.family = dataset_family(dataset)
        if self.family not in self.budgets:
            raise SpecError(f"{type(self).__name__} has no defaults for {self.dataset!r} (family {self.family!r}); "
                            f"valid: {', '.join(self.budgets)}")
        self.eps = float(spec.eps if spec.eps is not None else self.budgets[self.family])
        self.options = self._resolve_options(options_dict(spec.options))
        self._check_eps_scale()
        self._progress: Progress | None = None
        self._last_progress: tuple[int, int] | None = None

    @classmethod
    def granularities(cls) -> tuple[str, ...]:
        """The granularities the method supports, its default first: the choices of its "mode" option, if any."""
        if "mode" in field_hints(cls.Options):
            return choices(cls.Options, "mode")
        return (cls.granularity_without_mode,)

    @property
    def revision(self) -> int:
        """The method's revision on this data set's family (`revisions`; 0 = never changed by a fix)."""
        return self.revisions.get(self.family, 0)

    def default_options(self, family: str) -> MethodOptions:
        """The method's options for a data-set family before any is given: `family_options`, else `Options()`."""
        return self.family_options.get(family) or self.Options()

    # ----------------------------------------------------------------------------------------- validation
    def _resolve_options(self, given: dict[str, Any]) -> MethodOptions:
        """The family's default options with the given ones replaced (each checked by the options dataclass)."""
        base = self.default_options(self.family)
        names = [f.name for f in dataclasses.fields(base)]
        unknown = sorted(set(given) - set(names))
        if unknown:
            raise SpecError(f"poison method {self.spec.method!r} has no option(s) {unknown}; valid options: "
                            f"{', '.join(sorted(names)) or 'none'}")
        return dataclasses.replace(base, **given)

    def _check_eps_scale(self) -> None:
        eps, name = self.eps, self.spec.method
        if not math.isfinite(eps) or eps <= 0:
            raise BudgetError(f"eps={eps!r} for {name!r} must be a positive finite number")
        if self.norm == "linf" and eps > 1.0:
            # a whole number of grey levels (8) was likely meant as 8/255; anything else (300/255) is just too big
            hint = (f"did you mean eps={eps:g}/255 = {eps / 255:.4f}?" if eps.is_integer() and eps <= 255 else
                    "the largest is 1 (= 255/255, the whole range)")
            raise BudgetError(
                f"eps={eps:g} for {name!r} is not on the [0, 1] pixel scale: L∞ budgets are fractions of the "
                f"pixel range, e.g. 8/255 = {8 / 255:.4f}; {hint}"
            )
        if self.norm == "l0" and (eps != int(eps) or eps < 1):
            raise BudgetError(f"eps={eps:g} for {name!r} is an L0 budget: a whole number of pixels (>= 1)")

    def _check_eps_for_images(self, image_shape: tuple[int, ...]) -> None:
        c, h, w = image_shape
        name = self.spec.method
        if self.norm == "l2":
            largest = math.sqrt(c * h * w)
            if self.eps >= largest:
                raise BudgetError(
                    f"eps={self.eps:g} for {name!r} is an L2 radius on the [0, 1] pixel scale and must be below "
                    f"sqrt(C*H*W) = {largest:.3g}, the largest distance between two {c}x{h}x{w} images (CIFAR "
                    f"uses about 1.0); a value on the 0..255 scale must be divided by 255"
                )
        if self.norm == "l0" and self.eps > h * w:
            raise BudgetError(f"eps={self.eps:g} for {name!r} counts pixels but an image has only {h * w}")

    # ------------------------------------------------------------------------------------------- crafting
    @property
    def granularity(self) -> str:
        """"sample" or "class"."""
        return str(getattr(self.options, "mode", self.granularity_without_mode))

    def report(self, done: int, total: int) -> None:
        """Forward progress to the caller's callback (subclasses call it as they go)."""
        self._last_progress = (int(done), int(total))
        if self._progress is not None:
            self._progress(int(done), int(total))

    def estimate_cost(self, n: int, image_shape: tuple[int, int, int]) -> dict[str, Any]:
        """Rough crafting cost: image-gradient evaluations (forward+backward of one image) and CPU seconds.

        The seconds are an order-of-magnitude guide (one CPU thread), not a promise. A budget the images cannot
        hold (`BudgetError`) is refused here already, so a front end says so before it offers to craft.
        """
        self._check_eps_for_images(tuple(image_shape))
        ige = int(self.gradient_evals(n))
        surrogate = str(getattr(self.options, "surrogate", "cnn"))
        values = max(1, int(np.prod(image_shape)))
        rate = _IGE_PER_S_PER_KVALUE.get(surrogate, 100.0) * 1000.0 / values
        return {"gradient_evals": ige, "cpu_seconds": ige / rate if ige else 0.1}

    def poisoned_count(self, n: int) -> int:
        """How many of `n` training images the poison perturbs (`PoisonSpec.ratio` of them, rounded).

        `perturb` crafts all `n` images and the mask keeps these. A ratio too small for `n` (it rounds to no
        image) is refused with `SpecError`, as `PoisonSpec` refuses ratio 0: the method's run would be the clean
        run again under its name.
        """
        count = int(round(self.spec.ratio * n))
        if n and not count:
            raise SpecError(f"PoisonSpec.ratio = {self.spec.ratio:g} poisons none of the {n:,} training images (it "
                            f"rounds to 0): the {self.spec.method!r} run would be the clean run again; give a ratio "
                            f"of at least {1 / n:.3g} (one image), or, for a clean run, method 'clean'")
        return count

    def gradient_evals(self, n: int) -> int:
        """Image-gradient evaluations to craft `n` images (0 for model-free methods; upper bound if early stop)."""
        return 0

    @abstractmethod
    def perturb(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int,
                generator: torch.Generator) -> Perturbation:
        """The raw perturbation `delta` (N, C, H, W) for clean images `x` in [0, 1] and labels `y`, and its extras.

        `x` and `y` are on `self.device` and may not be modified. The base class then projects `delta` onto
        the budget, clamps `x + delta` to [0, 1] and masks it to the poison ratio; the subclass may already
        do so (e.g. inside PGD), the projection is then a no-op. Random draws must come from `generator`.
        """

    def craft(self, x: torch.Tensor, y: torch.Tensor, *, num_classes: int | None = None,
              progress: Progress | None = None) -> Crafted:
        """Craft the poison for images `x` (N, C, H, W) in [0, 1] and labels `y` (N,); inputs are not modified.

        Args:
            x: clean training images, float32.
            y: int64 labels.
            num_classes: number of classes (default: max label + 1).
            progress: called as `progress(done, total)` while crafting.

        Returns:
            A `Crafted` on the CPU, with `meta["budget"]` measured on the poisoned images only.
        """
        check_images(x)
        num_classes = int(num_classes if num_classes is not None else (int(y.max()) + 1 if len(y) else 1))
        check_labels(x, y, num_classes)
        self._check_eps_for_images(tuple(x.shape[1:]))
        self._progress, self._last_progress = progress, None
        started = time.perf_counter()
        generator = torch.Generator().manual_seed(int(self.spec.seed))
        mask_gen, craft_gen = child_generator(generator), child_generator(generator)
        n = len(x)
        n_poison = self.poisoned_count(n)
        mask = torch.zeros(n, dtype=torch.bool)
        mask[torch.randperm(n, generator=mask_gen)[:n_poison]] = True
        extras: dict[str, Any] = {}
        x_dev = x.detach().to(self.device).clone()
        y_dev = y.detach().to(self.device).clone()
        if n_poison:
            with reproducible_threads(self.device):  # surrogate training: see landscape.device.CPU_THREADS
                perturbation = self.perturb(x_dev, y_dev, num_classes=num_classes, generator=craft_gen)
            raw, extras = perturbation.delta, perturbation.extras
            if tuple(raw.shape) != tuple(x.shape):
                raise ShapeError(f"{self.spec.method} returned delta {tuple(raw.shape)} for images {tuple(x.shape)}")
            raw = raw.detach().to(torch.float32)
            if not bool(torch.isfinite(raw).all()):
                raise BudgetError(f"{self.spec.method} produced a non-finite perturbation; lower eps or steps")
            delta = (x_dev + project(raw, self.eps, self.norm)).clamp(0.0, 1.0) - x_dev
            delta = delta.cpu()
            delta[~mask] = 0.0
        else:
            delta = torch.zeros_like(x, dtype=torch.float32)
        if not within_budget(delta, self.eps, self.norm):
            raise BudgetError(f"internal error: {self.spec.method} exceeded its {self.norm} budget eps={self.eps}")
        seconds = time.perf_counter() - started
        poisoned = (x + delta).clamp(0.0, 1.0)
        meta = {
            "method": self.spec.method,
            "dataset": self.dataset,
            "eps": self.eps,
            "eps_is_default": self.spec.eps is None,
            "norm": self.norm,
            "granularity": self.granularity,
            "ratio": self.spec.ratio,
            "n_poisoned": n_poison,
            "seed": self.spec.seed,
            "options": self.options.to_dict(),
            "budget": budget_figures(x[mask], poisoned[mask]),
            "seconds": seconds,
            "device": str(self.device),
            **extras,
        }
        total = self._last_progress[1] if self._last_progress else 1
        self.report(total, total)  # a stop before the step cap still completes the bar
        self._progress = None
        return Crafted(delta.contiguous(), mask, meta)
