"""Training-time defenses against unlearnable examples: the `DEFENSES` registry and `prepare_defense`.

Two kinds, following APBench (Qin et al., TMLR 2024, arXiv:2308.03258), which applies its image
filters before augmentation:

* preprocessing defenses (`jpeg`, `grayscale`, `bdr`, `blur`) transform the *training* images once,
  before training and before the trainer's crop/flip augmentation; they are deterministic;
* batch defenses (`cutout`, `mixup`, `at`) act on every augmented mini-batch through the trainer's
  `batch_transform(model, x, y, generator) -> (x', target)` hook, drawing their randomness from the
  trainer's seeded generator.

The clean test set is never touched. `none` is the identity. Options are plain values stored in a
`DefenseSpec` (see `landscape.config`), completed with each defense's documented defaults by
`resolve_defense` (which the stage layer applies) so that equal settings always give equal cache keys.
All transforms are pure torch, run on the tensors' device and never modify their inputs in place.

Not here: UEraser and AVATAR (need heavy augmentation search or a pretrained diffusion model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landscape.config import DefenseSpec, format_value, freeze_options
from landscape.errors import SpecError
from landscape.registry import Registry

BatchTransform = Callable[[nn.Module, torch.Tensor, torch.Tensor, torch.Generator], tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class Range:
    """The values a numeric option may take: [lo, hi], or (lo, hi] with `lo_open`; whole numbers if `integer`."""

    lo: float
    hi: float
    integer: bool = False
    lo_open: bool = False

    def check(self, defense: str, option: str, value: Any) -> None:
        """Raise `SpecError` naming the defense, the option, `value` and the range unless `value` is in it."""
        if self.integer and (not isinstance(value, int) or isinstance(value, bool)):
            raise SpecError(f"defense {defense!r} option {option} = {value!r} must be an integer")
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"defense {defense!r} option {option} = {value!r} must be a number")
        ok = (value > self.lo if self.lo_open else value >= self.lo) and value <= self.hi and math.isfinite(value)
        if not ok:
            raise SpecError(f"defense {defense!r} option {option} = {value!r} is out of range; expected "
                            f"{'(' if self.lo_open else '['}{self.lo}, {self.hi}]")


class Defense:
    """A training-time defense; subclasses override `preprocess` (kind "preprocess") or `transform` ("batch").

    Class data:
        kind: "preprocess" (applied once to the training images) or "batch" (applied to each mini-batch).
        defaults: every option with its default value; a `DefenseSpec` is completed with these.
        ranges: the range of each numeric option, checked when the defense is built (an option whose default
            is None may also be None, its "derived" value); `check` adds any other rule.
    """

    kind: ClassVar[Literal["none", "preprocess", "batch"]] = "none"
    defaults: ClassVar[dict[str, Any]] = {}
    ranges: ClassVar[dict[str, Range]] = {}

    def __init__(self, **options: Any) -> None:
        unknown = set(options) - set(self.defaults)
        if unknown:
            valid = ", ".join(sorted(self.defaults)) or "none"
            raise SpecError(f"defense {self.name!r} has no option(s) {sorted(unknown)}; valid options: {valid}")
        merged = {**self.defaults, **options}
        for k, v in merged.items():  # 1 and 1.0 must give the same cache key when the option is a float
            is_float = isinstance(self.defaults[k], float) or (k in self.ranges and not self.ranges[k].integer)
            if is_float and isinstance(v, int) and not isinstance(v, bool):
                merged[k] = float(v)
        for k, allowed in self.ranges.items():
            if not (merged[k] is None and self.defaults[k] is None):
                allowed.check(self.name, k, merged[k])
        self.options = merged
        self.check(self.options)

    @property
    def name(self) -> str:
        return getattr(type(self), "registry_name", type(self).__name__)

    @classmethod
    def check(cls, options: dict[str, Any]) -> None:
        """Raise `SpecError` if the options break a rule beyond their `ranges` (the message names the option)."""

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Transformed copy of training images `x` (N, C, H, W) in [0, 1]; identity unless overridden."""
        return x

    def transform(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        """(x', target) for one augmented batch; identity unless overridden."""
        return x, y


DEFENSES: Registry[type[Defense]] = Registry("defense")


def _register(name: str) -> Callable[[type[Defense]], type[Defense]]:
    def decorate(cls: type[Defense]) -> type[Defense]:
        cls.registry_name = name  # type: ignore[attr-defined]
        return DEFENSES.register(name)(cls)

    return decorate


def _seed_from(generator: torch.Generator) -> int:
    return int(torch.randint(2**62, (1,), generator=generator))


@_register("none")
class NoDefense(Defense):
    """Standard training: no defense (the identity)."""


# ---------------------------------------------------------------------------------------------- preprocessing

# ITU T.81 Annex K tables (the IJG/libjpeg and PIL defaults).
_Q_LUMA = torch.tensor([
    [16, 11, 10, 16, 24, 40, 51, 61], [12, 12, 14, 19, 26, 58, 60, 55], [14, 13, 16, 24, 40, 57, 69, 56],
    [14, 17, 22, 29, 51, 87, 80, 62], [18, 22, 37, 56, 68, 109, 103, 77], [24, 35, 55, 64, 81, 104, 113, 92],
    [49, 64, 78, 87, 103, 121, 120, 101], [72, 92, 95, 98, 112, 100, 103, 99]], dtype=torch.float64)
_Q_CHROMA = torch.tensor([
    [17, 18, 24, 47, 99, 99, 99, 99], [18, 21, 26, 66, 99, 99, 99, 99], [24, 26, 56, 99, 99, 99, 99, 99],
    [47, 66, 99, 99, 99, 99, 99, 99]] + [[99] * 8] * 4, dtype=torch.float64)


def jpeg_quant_table(quality: int, chroma: bool = False) -> torch.Tensor:
    """The 8x8 quantisation table of `quality` (1..100), scaled as libjpeg does (`jpeg_quality_scaling`)."""
    base = _Q_CHROMA if chroma else _Q_LUMA
    scale = 5000 / quality if quality < 50 else 200 - 2 * quality
    return torch.clamp(torch.floor((base * scale + 50) / 100), 1, 255)


def _dct_matrix() -> torch.Tensor:
    k = torch.arange(8, dtype=torch.float64)[:, None]
    n = torch.arange(8, dtype=torch.float64)[None, :]
    c = torch.cos((2 * n + 1) * k * math.pi / 16) * math.sqrt(2 / 8)
    c[0] /= math.sqrt(2)
    return c  # (8, 8) orthonormal DCT-II: coefficients = C @ block @ C.T


def _jpeg_plane(plane: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """Encode/decode one channel (N, H, W) of values in [0, 255]: 8x8 DCT, quantise, dequantise, inverse DCT."""
    n, h, w = plane.shape
    ph, pw = -h % 8, -w % 8
    if ph or pw:  # libjpeg pads partial blocks by replicating the edge
        plane = F.pad(plane[:, None], (0, pw, 0, ph), mode="replicate")[:, 0]
    hh, ww = plane.shape[1:]
    c = _dct_matrix().to(plane)
    q = table.to(plane)
    blocks = (plane - 128).reshape(n, hh // 8, 8, ww // 8, 8).permute(0, 1, 3, 2, 4)  # (N, bh, bw, 8, 8)
    coef = c @ blocks @ c.T
    coef = torch.round(coef / q) * q
    out = (c.T @ coef @ c + 128).permute(0, 1, 3, 2, 4).reshape(n, hh, ww)
    return out[:, :h, :w]


def jpeg_compress(x: torch.Tensor, quality: int = 10) -> torch.Tensor:
    """JPEG-compress and decompress images `x` (N, C, H, W) in [0, 1], in pure torch (no PIL needed).

    Baseline JPEG as libjpeg/PIL does it with default settings: 8-bit input, level shift, 8x8 DCT,
    quantisation by the standard tables scaled by `quality`, rounding, 8-bit decoded samples; 3-channel
    images go through JFIF YCbCr with 4:2:0 chroma subsampling (2x2 averaging) and libjpeg's "fancy"
    (triangular = bilinear) chroma upsampling. Entropy coding is lossless and therefore skipped. The one
    deliberate difference from libjpeg is a float64 DCT instead of its integer DCT, so a coefficient that
    lies on a rounding boundary may round the other way; on the digits 96% of the pixels equal PIL's output
    at quality 10 (`tests/test_defenses.py` checks the agreement against PIL when it is installed).
    """
    if x.shape[1] not in (1, 3):
        raise SpecError(f"jpeg needs 1 or 3 channels, got {x.shape[1]}")

    def to8(t: torch.Tensor) -> torch.Tensor:
        return torch.round(t).clamp(0, 255)

    v = to8(x.to(torch.float64) * 255)  # the 8-bit image the encoder gets
    luma_q, chroma_q = jpeg_quant_table(quality), jpeg_quant_table(quality, chroma=True)
    if x.shape[1] == 1:
        out = to8(_jpeg_plane(v[:, 0], luma_q))[:, None]
    else:
        r, g, b = v.unbind(1)
        y = to8(0.299 * r + 0.587 * g + 0.114 * b)
        cb = to8(-0.168735892 * r - 0.331264108 * g + 0.5 * b + 128)
        cr = to8(0.5 * r - 0.418687589 * g - 0.081312411 * b + 128)
        y = to8(_jpeg_plane(y, luma_q))
        h, w = x.shape[2:]
        chans = []
        for plane in (cb, cr):
            p = F.pad(plane[:, None], (0, w % 2, 0, h % 2), mode="replicate")
            small = torch.floor(F.avg_pool2d(p, 2)[:, 0] + 0.5)
            dec = to8(_jpeg_plane(small, chroma_q))
            # h2v2 fancy upsampling: weights 3/4 and 1/4 in each direction, edges replicated
            up = F.interpolate(dec[:, None], scale_factor=2, mode="bilinear", align_corners=False)[:, 0]
            chans.append(to8(up[:, :h, :w]))
        cb, cr = chans
        out = torch.stack([y + 1.402 * (cr - 128),
                           y - 0.344136286 * (cb - 128) - 0.714136286 * (cr - 128),
                           y + 1.772 * (cb - 128)], 1)
    return (torch.round(out).clamp(0, 255) / 255).to(x.dtype)


@_register("jpeg")
class JPEG(Defense):
    """JPEG compression of the training images, the ISS defense (Liu, Zhao, Larson, ICML 2023, arXiv:2301.13838).

    Removes the high-frequency structure many poisons live in; APBench uses PIL at quality 10. Pure-torch
    implementation (`jpeg_compress`), so it runs on any device and needs no PIL. On 8x8 digits the image
    is a single block.

    Options:
        quality: 1..100 (lower = stronger compression); default 10.
    """

    kind = "preprocess"
    defaults: ClassVar[dict[str, Any]] = {"quality": 10}
    ranges: ClassVar[dict[str, Range]] = {"quality": Range(1, 100, integer=True)}

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        return jpeg_compress(x, self.options["quality"])


@_register("grayscale")
class Grayscale(Defense):
    """Grayscale conversion, the other ISS filter (Liu et al., ICML 2023); APBench's `Grayscale(3)`.

    RGB images become L = 0.299 R + 0.587 G + 0.114 B (ITU-R 601-2, as PIL) copied to all 3 channels,
    which removes colour shortcuts. On one-channel data (digits) it is a documented no-op: the image is
    already grey, so the training images are returned unchanged.
    """

    kind = "preprocess"

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            return x
        if x.shape[1] != 3:
            raise SpecError(f"grayscale needs 1 or 3 channels, got {x.shape[1]}")
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device)
        luma = (x * w[None, :, None, None]).sum(1, keepdim=True).clamp(0, 1)
        return luma.expand_as(x).clone()


@_register("bdr")
class BitDepthReduction(Defense):
    """Bit-depth reduction (Xu et al., NDSS 2018, "Feature Squeezing"); APBench posterizes to 2 bits.

    Keeps the `bits` most significant bits of each 8-bit value, as PIL/torchvision `posterize` do:
    v' = v & ~(2^(8 - bits) - 1) on v = round(255 x), APBench's `RandomPosterize(bits=2, p=1)`. Small
    perturbations vanish inside a level. Xu et al.'s own squeezer rounds instead, x' = round(x (2^bits - 1)) /
    (2^bits - 1), whose levels span [0, 1] (0, 85, 170, 255 of 255 at 2 bits); posterize floors, so its top level is
    192 and each value drops by up to 63/255 at 2 bits. This follows APBench, the benchmark the defaults come from.

    Options:
        bits: 1..8 bits kept; default 2 (4 levels: 0, 64, 128, 192 of 255).
    """

    kind = "preprocess"
    defaults: ClassVar[dict[str, Any]] = {"bits": 2}
    ranges: ClassVar[dict[str, Range]] = {"bits": Range(1, 8, integer=True)}

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        step = 2 ** (8 - self.options["bits"])
        v = torch.round(x * 255)
        return (torch.floor(v / step) * step / 255).to(x.dtype)


def gaussian_kernel(size: int, sigma: float, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Normalised 1D Gaussian kernel of odd `size` (torchvision's `_get_gaussian_kernel1d`)."""
    half = (size - 1) / 2
    t = torch.linspace(-half, half, size, dtype=torch.float64)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return (k / k.sum()).to(dtype)


@_register("blur")
class GaussianBlur(Defense):
    """Gaussian blur of the training images (APBench's "Gaussian": 3x3, sigma 0.1).

    Separable kernel with reflect padding, as torchvision's `GaussianBlur`. Note that APBench's default
    sigma = 0.1 px is almost the identity (the off-centre weight is e^-50); its leaderboard column is
    accordingly close to standard training. Use a larger `sigma` (e.g. 1.0) for a real low-pass filter.

    Options:
        kernel: odd kernel size in pixels, 1..31 and below twice the image's shorter side (reflect padding;
            at most 15 on 8x8 digits, checked when the images are seen); default 3.
        sigma: standard deviation in pixels; default 0.1.
    """

    kind = "preprocess"
    defaults: ClassVar[dict[str, Any]] = {"kernel": 3, "sigma": 0.1}
    ranges: ClassVar[dict[str, Range]] = {"kernel": Range(1, 31, integer=True),
                                          "sigma": Range(0.0, 100.0, lo_open=True)}

    @classmethod
    def check(cls, options: dict[str, Any]) -> None:
        if options["kernel"] % 2 == 0:
            raise SpecError(f"defense 'blur' option kernel = {options['kernel']} must be odd")

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        size = self.options["kernel"]
        h, w = x.shape[2:]
        if size // 2 >= min(h, w):  # reflect padding needs a half-width below the image side
            raise SpecError(f"defense 'blur' option kernel = {size} is too large for {h}x{w} images (reflect "
                            f"padding needs kernel // 2 < {min(h, w)}); the largest valid kernel is "
                            f"{min(31, 2 * min(h, w) - 1)}")
        k = gaussian_kernel(size, self.options["sigma"], x.dtype).to(x.device)
        c = x.shape[1]
        pad = size // 2
        out = F.pad(x, (pad, pad, 0, 0), mode="reflect") if pad else x
        out = F.conv2d(out, k.view(1, 1, 1, size).expand(c, 1, 1, size), groups=c)
        out = F.pad(out, (0, 0, pad, pad), mode="reflect") if pad else out
        out = F.conv2d(out, k.view(1, 1, size, 1).expand(c, 1, size, 1), groups=c)
        return out.clamp(0, 1)


# ---------------------------------------------------------------------------------------------- batch defenses


@_register("cutout")
class Cutout(Defense):
    """Cutout (DeVries & Taylor, 2017, arXiv:1708.04552), as in APBench: one zeroed square per image.

    The square's centre is uniform over the image and the square is clipped at the borders, as in the
    authors' code. Labels are unchanged.

    Options:
        size: side of the square as a fraction of the image side; default 0.5 (16 px on 32x32 CIFAR, as
            APBench; 4 px on 8x8 digits).
    """

    kind = "batch"
    defaults: ClassVar[dict[str, Any]] = {"size": 0.5}
    ranges: ClassVar[dict[str, Range]] = {"size": Range(0.0, 1.0, lo_open=True)}

    def square_side(self, h: int, w: int) -> int:
        return max(1, round(self.options["size"] * min(h, w)))

    def transform(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n, _, h, w = x.shape
        side = self.square_side(h, w)
        cy = torch.randint(0, h, (n,), generator=generator).to(x.device)
        cx = torch.randint(0, w, (n,), generator=generator).to(x.device)
        rows = torch.arange(h, device=x.device)[None, :]
        cols = torch.arange(w, device=x.device)[None, :]
        top, left = cy - side // 2, cx - side // 2
        in_r = (rows >= top[:, None]) & (rows < top[:, None] + side)  # (N, H)
        in_c = (cols >= left[:, None]) & (cols < left[:, None] + side)  # (N, W)
        hole = (in_r[:, :, None] & in_c[:, None, :])[:, None]  # (N, 1, H, W)
        return x.masked_fill(hole, 0.0), y


@_register("mixup")
class Mixup(Defense):
    """Mixup (Zhang et al., ICLR 2018, arXiv:1710.09412): convex combinations of image pairs and their labels.

    Each image is mixed with a random partner from the same batch, x' = lam x + (1 - lam) x[perm], with
    a per-sample lam ~ Beta(alpha, alpha) (kornia's `RandomMixUpV2`, which APBench uses, draws per
    sample; alpha = 1 is its uniform default). The target becomes the matching mixture of one-hot labels
    (N, K); the trainer's cross-entropy accepts such probabilities.

    Options:
        alpha: Beta parameter (> 0); default 1.0.
    """

    kind = "batch"
    defaults: ClassVar[dict[str, Any]] = {"alpha": 1.0}
    ranges: ClassVar[dict[str, Range]] = {"alpha": Range(0.0, 1000.0, lo_open=True)}

    def __init__(self, num_classes: int | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.num_classes = num_classes

    def transform(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(y)
        if self.num_classes is None:
            raise SpecError("mixup needs the number of classes; build it with prepare_defense(spec, num_classes)")
        perm = torch.randperm(n, generator=generator).to(x.device)
        rng = np.random.default_rng(_seed_from(generator))
        lam = torch.from_numpy(rng.beta(self.options["alpha"], self.options["alpha"], size=n)).to(x)
        mixed = lam[:, None, None, None] * x + (1 - lam[:, None, None, None]) * x[perm]
        onehot = F.one_hot(y, self.num_classes).to(x.dtype)
        target = lam[:, None] * onehot + (1 - lam[:, None]) * onehot[perm]
        return mixed, target


def pgd_linf(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, eps: float, steps: int, step: float,
             random_start: bool, generator: torch.Generator) -> torch.Tensor:
    """Untargeted L-inf PGD (Madry et al., ICLR 2018): images in [0, 1] within `eps` of `x` that raise the loss.

    The model is run in eval mode (BatchNorm statistics are not updated by the attack) and restored to
    its previous mode; gradients are taken with respect to the input only, so parameter `.grad` is left
    as it was.
    """
    was_training = model.training
    model.eval()
    try:
        if random_start:
            noise = (torch.rand(x.shape, generator=generator, dtype=x.dtype) * 2 - 1).to(x.device) * eps
            adv = (x + noise).clamp(0, 1)
        else:
            adv = x.clone()
        for _ in range(steps):
            adv = adv.detach().requires_grad_(True)
            loss = F.cross_entropy(model(adv), y)
            (grad,) = torch.autograd.grad(loss, adv)
            adv = adv.detach() + step * grad.sign()
            adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0, 1)
        return adv.detach()
    finally:
        model.train(was_training)


@_register("at")
class AdversarialTraining(Defense):
    """Adversarial training (Madry et al., ICLR 2018, arXiv:1706.06083) with L-inf PGD, after APBench's `mardrys.py`.

    Each batch is replaced by its PGD adversarial examples (`steps` signed-gradient steps of size `step`,
    projection onto the eps-ball and [0, 1]); labels are unchanged. Costs about (steps + 1)x standard
    training. The 10 steps and eps 8/255 are APBench's (`MadrysLoss(epsilon=at_eps)`, also in the EM repo's
    `madrys.py`); two details differ. The step: APBench keeps `MadrysLoss`'s default 0.007 (about 1.8/255), this
    one takes eps / 4 = 2/255, Madry et al.'s CIFAR step. The start: APBench's is a small Gaussian,
    x + 0.007 N(0, 1) (the step size times a normal draw), this one a uniform point of the eps-ball (Madry et
    al.'s random start). Kept so, as shipped benchmark numbers use them.

    To help against a poison, eps must be at least the poison's L-inf radius: the default 8/255 is below
    every L-inf poison's digits and MNIST budget (64/255), so there it cannot help by construction (a run
    that sets `at` below an L-inf poison's eps warns, naming both). It cannot help against L0 poisons such
    as OPS.

    Options:
        eps: L-inf radius on the [0, 1] scale; default 8/255.
        steps: PGD steps; default 10.
        step: step size; None = eps / 4 (2/255 at the default eps; APBench: 0.007).
        random_start: start from a uniform point of the ball (APBench: 0.007 N(0, 1)); default True.
    """

    kind = "batch"
    defaults: ClassVar[dict[str, Any]] = {"eps": 8 / 255, "steps": 10, "step": None, "random_start": True}
    ranges: ClassVar[dict[str, Range]] = {"eps": Range(0.0, 1.0, lo_open=True), "steps": Range(1, 1000, integer=True),
                                          "step": Range(0.0, 1.0, lo_open=True)}

    @classmethod
    def check(cls, options: dict[str, Any]) -> None:
        if not isinstance(options["random_start"], bool):
            raise SpecError(f"defense 'at' option random_start = {options['random_start']!r} must be true or false")

    def transform(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor,
                  generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        o = self.options
        step = o["step"] if o["step"] is not None else o["eps"] / 4
        adv = pgd_linf(model, x, y, eps=o["eps"], steps=o["steps"], step=step, random_start=o["random_start"],
                       generator=generator)
        return adv, y


# ---------------------------------------------------------------------------------------------- entry points


def build_defense(name: str, options: dict[str, Any] | None = None, *, num_classes: int | None = None) -> Defense:
    """An instance of the registered defense `name` with `options` completed by its defaults."""
    cls = DEFENSES.get(name)
    if cls is Mixup:
        return Mixup(num_classes=num_classes, **(options or {}))
    return cls(**(options or {}))


def complete_options(name: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """`options` completed with the defaults of defense `name`, validated (unknown names/options raise)."""
    return dict(build_defense(name, options).options)


def resolve_defense(spec: DefenseSpec) -> DefenseSpec:
    """`spec` with its options completed by the defense's defaults and validated (the form keys are taken of).

    Equal settings then give equal specs and keys: `jpeg` equals `jpeg:quality=10`, `cutout:size=1` equals
    `cutout:size=1.0`. An unknown name or option raises with the valid choices.
    """
    return spec.replace(options=freeze_options(complete_options(spec.name, spec.options_dict())))


def defense_label(spec: DefenseSpec) -> str:
    """Short display name, e.g. "jpeg" or "jpeg(quality=30)" when an option differs from its default."""
    defaults = complete_options(spec.name, None)
    changed = [f"{k}={format_value(v)}" for k, v in resolve_defense(spec).options if defaults.get(k) != v]
    return f"{spec.name}({', '.join(changed)})" if changed else spec.name


Preprocess = Callable[[torch.Tensor], torch.Tensor]


def prepare_defense(spec: DefenseSpec, num_classes: int) -> tuple[Preprocess, BatchTransform | None]:
    """(preprocess, batch_transform) for a `DefenseSpec`.

    Apply `preprocess` to the training images once, before training; pass `batch_transform` to
    `landscape.train.train` (it is None for preprocessing defenses and for `none`).
    """
    defense = build_defense(spec.name, dict(spec.options), num_classes=num_classes)
    batch = defense.transform if defense.kind == "batch" else None
    return defense.preprocess, batch


__all__ = [
    "DEFENSES", "AdversarialTraining", "BitDepthReduction", "Cutout", "Defense", "GaussianBlur", "Grayscale", "JPEG",
    "Mixup", "NoDefense", "Range", "build_defense", "complete_options", "defense_label", "gaussian_kernel",
    "jpeg_compress", "jpeg_quant_table", "pgd_linf", "prepare_defense", "resolve_defense",
]
