"""SAL, Sharpness-Aware Learnability (Ye, Su, Qian, ICLR 2025, arXiv:2509.08058), per layer and per epoch.

For a conv/linear weight tensor theta_l, all other parameters frozen and the model in eval mode:

    B_l   = { delta : ||delta||_F <= eps * ||theta_l||_F }          (relative ball, eps = 0.05)
    L_min = min over B_l of L(theta_l + delta),  L_max = max over B_l of L(theta_l + delta)
    S_max = L_max - L_0,  S_min = L_0 - L_min,   SAL_l = S_max if |S_max| > |S_min| else S_min

Both inner problems are solved as in the authors' code (`layer_sharpness` in `poison_train_sharp.py`): K
rounds, a round being one pass of plain mini-batch SGD (lr 0.1, no momentum) over the data, then projection
onto the ball (rescale delta if it left), then an evaluation; the best value after each round is kept,
starting from L_0 (so S_min, S_max >= 0). L_0 is, by default, the epoch's running training loss (train
mode, weights changing), as in their code; `baseline="fresh"` evaluates it at theta instead. Two engines
(`SALSpec.engine`):

- "reference" (`SALSpec.preset("paper")`, K = 10): the authors' loop, whole-model passes one copy at a time
  over the model's own training set (shuffled, the trainer's batch size and augmentation, last partial
  batch dropped as in their loader), evaluation over the same loader.
- "batched" (the fast default: K = 2 rounds, lr 0.2, a fixed 1024-image subset): the same SGD rounds with
  the min and max copies stacked and run in one pass (concatenated along the layer's output channels and
  moved into the batch, or `torch.func.vmap` where that layout does not apply), on a fixed seeded subset of
  the training set kept on the device; for any architecture torch.fx can trace, what the rest of the network
  needs from the layers before the layer is computed once per epoch and reused, and the backward stops at the
  layer (`landscape.copies`). `bench/sal_fidelity.py` measures its agreement with the reference and the
  reference's own seed-to-seed floor, `bench/sal_engine.py` its speed against the previous engine.

What the running baseline means in practice (measured on digits, see the bench): SAL is then dominated by
L_0 - L_min while the loss still falls fast within an epoch, and by L_max - L_0 later; once the model has
converged (loss ~1e-4) every layer's SAL is ~1e-5 and the ranking of layers is not reproducible even by the
paper preset with another seed.

The accuracy variant is reported too (accuracy drop at L_max / rise at L_min, in percentage points, the
larger in magnitude); only the loss SAL enters UD (`landscape.ud`). The model is never mutated: every
perturbed weight goes through `torch.func.functional_call`, gradients are taken with `torch.autograd.grad`
(the model's `.grad` fields are untouched) and the train/eval mode is restored.

Caveat (from the paper's code): with the running baseline, L_0 is not the loss at theta, so early epochs
(where the running loss is far above the end-of-epoch loss) get a large S_min for every layer. Under a batch
defense (cutout, mixup, adversarial training) L_0 is also the defended batches' loss while L_min and L_max are
evaluated on the untransformed training images, and likewise under a recipe that augments (`TrainSpec.augment`):
L_0 is the augmented batches' loss while the batched engine (and the reference one without `SALSpec.augment`)
evaluates the unaugmented images; UD then says so in its notes (`stages.ud.running_baseline_caveat`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from landscape.config import SALSpec, TrainSpec
from landscape.copies import Copies, Frozen
from landscape.display import span
from landscape.errors import ShapeError
from landscape.models import weight_layers
from landscape.train import EpochState, random_crop_flip

LayerProgress = Callable[[int, int], None]
# Rows of one chunk of the evaluation set in one forward pass (bounds memory on big data sets).
CHUNK = 2048
ARRAY_FIELDS = ("s_min", "s_max", "sal", "baseline", "acc_baseline", "acc_drop", "acc_rise", "acc_variant")


class SampleLoss(Protocol):
    """The loss SAL measures (e.g. `landscape.tasks.Task`).

    `sample_loss` is the per-sample loss (N,) of model outputs against targets; `sample_score` a per-sample
    score in [0, 1] (N,) for the accuracy variant (None: undefined, reported as NaN).
    """

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor: ...

    def sample_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor | None: ...


class CrossEntropy:
    """The default `SampleLoss`: cross-entropy and accuracy of logits (N, K) against labels (N,)."""

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(outputs, targets, reduction="none")

    def sample_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return (outputs.argmax(1) == targets).to(outputs.dtype)


CROSS_ENTROPY = CrossEntropy()


def _tile(t: torch.Tensor, copies: int) -> torch.Tensor:
    """Targets (B, ...) repeated for `copies` stacked copies, (copies * B, ...)."""
    return t.repeat(copies, *([1] * (t.ndim - 1)))


def _score(loss: SampleLoss, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    score = loss.sample_score(outputs, targets)
    return torch.full((len(outputs),), float("nan"), device=outputs.device) if score is None else score


def project_to_ball(delta: torch.Tensor, radius: float | torch.Tensor, *, stacked: bool = False) -> torch.Tensor:
    """Rescale `delta` onto the Frobenius ball of `radius` if it lies outside; inside, return it unchanged.

    With `stacked=True`, `delta` is a stack of copies (first dimension) and each copy is projected on its
    own; otherwise the whole tensor is one point (its Frobenius norm is used).
    """
    flat = delta.reshape(delta.shape[0], -1) if stacked else delta.reshape(1, -1)
    norms = flat.norm(dim=1)
    radius_t = torch.as_tensor(radius, dtype=delta.dtype, device=delta.device)
    scale = torch.where(norms > radius_t, radius_t / norms.clamp_min(torch.finfo(delta.dtype).tiny), 1.0)
    if stacked:
        return delta * scale.reshape(-1, *([1] * (delta.ndim - 1)))
    return delta * scale[0]


def _pick(s_max: float, s_min: float) -> float:
    """SAL's rule (authors' code): S_max if |S_max| > |S_min| else S_min."""
    return s_max if abs(s_max) > abs(s_min) else s_min


@dataclass
class LayerSAL:
    """SAL of one layer at one moment (losses are mean cross-entropy; accuracies are fractions)."""

    s_min: float
    s_max: float
    sal: float
    baseline: float
    acc_baseline: float
    acc_drop: float  # (acc_0 - acc at L_max) x 100
    acc_rise: float  # (acc at L_min - acc_0) x 100
    acc_variant: float


def _finish(l0: float, a0: float, l_min: float, a_min: float, l_max: float, a_max: float) -> LayerSAL:
    s_max, s_min = l_max - l0, l0 - l_min
    drop, rise = (a0 - a_max) * 100.0, (a_min - a0) * 100.0
    return LayerSAL(s_min, s_max, _pick(s_max, s_min), l0, a0, drop, rise, _pick(drop, rise))


@dataclass(repr=False)
class SALTrace:
    """SAL of every weight layer at every measured epoch of one run (plain numpy, stored with the run).

    Attributes:
        layers: names of the weight tensors, (L,).
        epochs: the measured epochs (1-based), (T,).
        s_min, s_max, sal: loss decrease, loss increase and SAL, (T, L).
        baseline: L_0 used for each layer, (T, L) (one value per epoch with the running baseline).
        acc_baseline: accuracy at L_0 (fraction), (T, L).
        acc_drop, acc_rise, acc_variant: accuracy drop at L_max, rise at L_min, and the larger in magnitude,
            in percentage points, (T, L).
        seconds: SAL time per measured epoch, (T,).
        spec: the `SALSpec` used.
    """

    layers: tuple[str, ...]
    epochs: np.ndarray
    s_min: np.ndarray
    s_max: np.ndarray
    sal: np.ndarray
    baseline: np.ndarray
    acc_baseline: np.ndarray
    acc_drop: np.ndarray
    acc_rise: np.ndarray
    acc_variant: np.ndarray
    seconds: np.ndarray
    spec: SALSpec = field(default_factory=SALSpec)

    def __post_init__(self) -> None:
        t, n = len(self.epochs), len(self.layers)
        for name in ARRAY_FIELDS:
            if np.shape(getattr(self, name)) != (t, n):
                raise ShapeError(f"SALTrace.{name} has shape {np.shape(getattr(self, name))}, expected {(t, n)}")

    def __repr__(self) -> str:
        return (f"SALTrace({len(self.layers)} layers x {len(self.epochs)} epochs, preset {self.spec.preset_name}, "
                f"baseline {self.spec.baseline}, SAL {span(self.sal)})")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats); `from_dict` inverts it exactly."""
        out: dict[str, Any] = {"layers": list(self.layers), "epochs": [int(e) for e in self.epochs],
                               "seconds": [float(s) for s in self.seconds], "spec": self.spec.to_dict()}
        for name in ARRAY_FIELDS:
            out[name] = np.asarray(getattr(self, name), dtype=np.float64).tolist()
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SALTrace:
        n = len(data["layers"])

        def arr(name: str) -> np.ndarray:
            return np.asarray(data[name], dtype=np.float64).reshape(-1, n)

        return cls(tuple(data["layers"]), np.asarray(data["epochs"], dtype=np.int64),
                   *(arr(name) for name in ARRAY_FIELDS), np.asarray(data["seconds"], dtype=np.float64),
                   SALSpec.from_dict(data["spec"]))

    def table(self, run: str) -> list[dict[str, Any]]:
        """Rows epoch x layer of SAL, its two sides, the baseline and the accuracy variant, labelled `run`."""
        return [{"run": run, "epoch": int(epoch), "layer": layer, "sal": float(self.sal[t, j]),
                 "s_max": float(self.s_max[t, j]), "s_min": float(self.s_min[t, j]),
                 "baseline_loss": float(self.baseline[t, j]), "acc_variant_pp": float(self.acc_variant[t, j])}
                for t, epoch in enumerate(self.epochs) for j, layer in enumerate(self.layers)]

    @classmethod
    def from_rows(cls, layers: Sequence[str], epochs: Sequence[int], rows: Sequence[Sequence[LayerSAL]],
                  seconds: Sequence[float], spec: SALSpec) -> SALTrace:
        """Build a trace from per-epoch lists of `LayerSAL` (one per layer)."""
        n = len(layers)
        arrays = {name: np.asarray([[getattr(r, name) for r in row] for row in rows], dtype=np.float64)
                  .reshape(-1, n) for name in ARRAY_FIELDS}
        return cls(tuple(layers), np.asarray(epochs, dtype=np.int64), **arrays,
                   seconds=np.asarray(seconds, dtype=np.float64), spec=spec)

    @classmethod
    def concat(cls, traces: Sequence[SALTrace], spec: SALSpec) -> SALTrace:
        """The traces of consecutive epoch ranges of one run as one trace (exactly what one tracker would give)."""
        measured = [t for t in traces if len(t.epochs)]
        if not measured:
            return cls.from_rows([], [], [], [], spec)
        return cls(measured[0].layers, np.concatenate([t.epochs for t in measured]),
                   *(np.concatenate([getattr(t, name) for t in measured]) for name in ARRAY_FIELDS),
                   np.concatenate([t.seconds for t in measured]), spec)


# ----------------------------------------------------------------------------------------------------------
# The batched engine: stacked copies of one layer's weight through `landscape.copies`


def _stats(copies: Copies, name: str, w: torch.Tensor, frozen: Frozen, y: torch.Tensor,
           objective: SampleLoss) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean loss (G,) and score (G,) of the G stacked copies `w` (G, ...) over the whole SAL set (no grad).

    The set is evaluated in chunks of about `CHUNK` rows (images x copies) to bound memory.
    """
    g, n = w.shape[0], len(y)
    step = max(1, CHUNK // g)
    loss_sum = torch.zeros(g, dtype=torch.float64, device=w.device)
    correct = torch.zeros(g, dtype=torch.float64, device=w.device)
    with torch.no_grad():
        for start in range(0, n, step):
            idx = torch.arange(start, min(start + step, n), device=y.device)
            logits = copies({name: w}, frozen.select(idx)).flatten(0, 1)  # (G*B, classes)
            targets = _tile(y[idx], g)
            loss_sum += objective.sample_loss(logits, targets).view(g, -1).sum(1).double()
            correct += _score(objective, logits, targets).view(g, -1).sum(1).double()
    return loss_sum / n, correct / n


def _sgd_rounds(copies: Copies, name: str, theta: torch.Tensor, frozen: Frozen, y: torch.Tensor, *,
                step: torch.Tensor, radius: torch.Tensor, mask: torch.Tensor | None, start: tuple[float, float],
                spec: SALSpec, batch_size: int, generator: torch.Generator, objective: SampleLoss
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """The authors' SGD rounds for G copies of `theta` at once; the best (loss, score) of each copy, (G,) each.

    Copy g takes steps `w_g -= step[g] * grad_g` (step > 0 descends: the min problem; < 0 ascends: the max
    problem), on the entries where `mask` (G, ...) is 1 (None: every entry), and after each round is projected
    onto the ball of `radius[g]` around theta. "Best" is the lowest loss for a descending copy and the highest
    for an ascending one, starting from `start` = (L_0, acc_0).
    """
    g = step.shape[0]
    descend = step > 0
    shape = (-1,) + (1,) * theta.ndim
    scaled = step.view(shape) if mask is None else step.view(shape) * mask
    best_loss = torch.full((g,), start[0], dtype=torch.float64)
    best_acc = torch.full((g,), start[1], dtype=torch.float64)
    w = theta.expand(g, *theta.shape).clone()
    for _ in range(spec.rounds):
        for idx in _loader(len(y), batch_size, generator, y.device):
            w = w.detach().requires_grad_(True)
            logits = copies({name: w}, frozen.select(idx))  # (G, B, classes)
            losses = objective.sample_loss(logits.flatten(0, 1), _tile(y[idx], g)).view(g, -1).mean(1)
            (grad,) = torch.autograd.grad(losses.sum(), w)
            w = w.detach() - scaled * grad
        w = theta + project_to_ball(w - theta, radius, stacked=True)
        loss, acc = (t.cpu() for t in _stats(copies, name, w, frozen, y, objective))
        better = torch.where(descend.cpu(), loss < best_loss, loss > best_loss)
        best_loss, best_acc = torch.where(better, loss, best_loss), torch.where(better, acc, best_acc)
    return best_loss, best_acc


def _baseline(copies: Copies, name: str, theta: torch.Tensor, frozen: Frozen, y: torch.Tensor,
              running: tuple[float, float] | None, objective: SampleLoss) -> tuple[float, float]:
    """(L_0, acc_0): the running values if given, else the model's own on the SAL set."""
    if running is not None:
        return running
    loss, acc = _stats(copies, name, theta[None], frozen, y, objective)
    return float(loss[0]), float(acc[0])


def _batched_layer(copies: Copies, name: str, theta: torch.Tensor, frozen: Frozen, y: torch.Tensor,
                   spec: SALSpec, batch_size: int, running: tuple[float, float] | None,
                   generator: torch.Generator, objective: SampleLoss = CROSS_ENTROPY) -> LayerSAL:
    """Fast engine: the authors' SGD rounds with the min copy (descent) and max copy (ascent) stacked."""
    l0, a0 = _baseline(copies, name, theta, frozen, y, running, objective)
    step = torch.tensor([spec.lr, -spec.lr], dtype=theta.dtype, device=theta.device)
    radius = torch.full((2,), spec.eps * float(theta.norm()), dtype=theta.dtype, device=theta.device)
    loss, acc = _sgd_rounds(copies, name, theta, frozen, y, step=step, radius=radius, mask=None, start=(l0, a0),
                            spec=spec, batch_size=batch_size, generator=generator, objective=objective)
    return _finish(l0, a0, float(loss[0]), float(acc[0]), float(loss[1]), float(acc[1]))


def _pass_batch_size(spec: SALSpec, train_spec: TrainSpec | None) -> int:
    return spec.batch_size or (train_spec.batch_size if train_spec is not None else 64)


def _loader(n: int, batch_size: int, generator: torch.Generator, device: torch.device) -> list[torch.Tensor]:
    """Index batches of one shuffled pass, last partial batch dropped (the authors' `drop_last=True`)."""
    order = torch.randperm(n, generator=generator).to(device)
    full = max(n // batch_size, 1)  # a set smaller than one batch still gives one (partial) batch
    return [order[i * batch_size:(i + 1) * batch_size] for i in range(full)]


def _reference_layer(model: nn.Module, name: str, x: torch.Tensor, y: torch.Tensor, spec: SALSpec,
                     train_spec: TrainSpec | None, running: tuple[float, float] | None,
                     generator: torch.Generator, objective: SampleLoss = CROSS_ENTROPY) -> LayerSAL:
    """Reference engine (the authors' loop): K rounds of {SGD pass, projection} per copy, then evaluation."""
    theta = dict(model.named_parameters())[name].detach()
    radius = spec.eps * float(theta.norm())
    batch_size = _pass_batch_size(spec, train_spec)
    aug = spec.augment and train_spec is not None and train_spec.augment != "none"

    def batch(idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xb = x[idx]
        if aug:
            xb = random_crop_flip(xb, train_spec.crop_padding, train_spec.augment == "crop_flip", generator)  # type: ignore[union-attr]
        return xb, y[idx]

    @torch.no_grad()
    def evaluate(w: torch.Tensor) -> tuple[float, float]:
        loss_sum, correct, count = 0.0, 0, 0
        for idx in _loader(len(y), batch_size, generator, x.device):
            xb, yb = batch(idx)
            logits = functional_call(model, {name: w}, (xb,))
            loss_sum += float(objective.sample_loss(logits, yb).sum())
            correct += float(_score(objective, logits, yb).sum())
            count += len(yb)
        return loss_sum / count, correct / count

    if running is not None:
        l0, a0 = running
    else:
        l0, a0 = evaluate(theta)
    best_min, best_max = (l0, a0), (l0, a0)
    copies = {"min": theta.clone(), "max": theta.clone()}
    for _ in range(spec.rounds):
        for which in ("min", "max"):
            w = copies[which]
            for idx in _loader(len(y), batch_size, generator, x.device):
                xb, yb = batch(idx)
                w = w.detach().requires_grad_(True)
                loss = objective.sample_loss(functional_call(model, {name: w}, (xb,)), yb).mean()
                (g,) = torch.autograd.grad(loss, w)
                w = (w - spec.lr * g) if which == "min" else (w + spec.lr * g)
            copies[which] = theta + project_to_ball(w.detach() - theta, radius)
        lo, acc_lo = evaluate(copies["min"])
        hi, acc_hi = evaluate(copies["max"])
        if lo < best_min[0]:
            best_min = (lo, acc_lo)
        if hi > best_max[0]:
            best_max = (hi, acc_hi)
    return _finish(l0, a0, *best_min, *best_max)


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0])


def eval_subset(n: int, spec: SALSpec) -> torch.Tensor | None:
    """Indices (sorted) of the fixed SAL subset of an n-example training set ("batched" engine), None for all."""
    if spec.eval_size is None or spec.eval_size >= n:
        return None
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(_seed(spec.seed, n)))
    return perm[: spec.eval_size].sort().values


def _start(spec: SALSpec, running: tuple[float, float] | None) -> tuple[float, float] | None:
    """The running (L_0, acc_0) if the spec's baseline uses it, else None (evaluated fresh)."""
    if spec.baseline == "running" and running is None:
        raise ValueError("SALSpec.baseline = 'running' needs the epoch's running (loss, accuracy); pass "
                         "running=... or use baseline='fresh'")
    return running if spec.baseline == "running" else None


def _sal_set(x: torch.Tensor, y: torch.Tensor, spec: SALSpec) -> tuple[torch.Tensor, torch.Tensor]:
    """The batched engine's SAL data: the fixed subset (`eval_subset`), images channels-last on the CPU."""
    subset = eval_subset(len(y), spec)
    xs, ys = (x, y) if subset is None else (x[subset.to(x.device)], y[subset.to(y.device)])
    if xs.ndim == 4 and xs.device.type == "cpu":
        # oneDNN convolutions run ~1.5x faster on channels-last tensors on the CPU (measured on digits)
        xs = xs.contiguous(memory_format=torch.channels_last)
    return xs, ys


Kept = dict[tuple[int, str], Copies]


def _copies(model: nn.Module, name: str, kept: Kept | None) -> Copies:
    """`Copies(model, [name])`, from `kept` if it holds one for this very network (the entry keeps it alive)."""
    if kept is None:
        return Copies(model, [name])
    if (id(model), name) not in kept:
        kept[id(model), name] = Copies(model, [name])
    return kept[id(model), name]


def model_sal(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: SALSpec, *,
              train_spec: TrainSpec | None = None, running: tuple[float, float] | None = None,
              layers: Sequence[str] | None = None, epoch: int = 0,
              progress: LayerProgress | None = None, loss: SampleLoss | None = None,
              kept: Kept | None = None) -> list[LayerSAL]:
    """SAL of each weight layer of `model` on its training data `x` (N, C, H, W), `y` (N,).

    Args:
        model: the network (left unchanged, mode restored); tensors must be on the model's device.
        x: the model's own training images (on its device).
        y: their labels.
        spec: the SAL settings.
        train_spec: the trainer's spec (batch size; augmentation of the "reference" engine).
        running: (loss, accuracy) of the epoch's training pass, required by `baseline="running"`.
        layers: weight tensor names (default: `weight_layers(model)`).
        epoch: the epoch being measured (seeds the SAL shuffles).
        progress: called as `progress(layers_done, layers_total)`.
        loss: the per-sample loss and score (default: cross-entropy and accuracy; `y` then holds labels). With
            another objective (e.g. a `landscape.tasks.Task`), `y` holds its targets.
        kept: the batched engine's per-layer `Copies` of `model`, kept by the caller across calls on the same
            network (its graphs follow the weights: every epoch of one run); None builds them for this call.

    Returns:
        One `LayerSAL` per layer, in the order of `layers`.
    """
    base = _start(spec, running)
    names = list(layers) if layers is not None else weight_layers(model)
    params = dict(model.named_parameters())
    missing = [n for n in names if n not in params]
    if missing:
        raise ShapeError(f"model has no weight tensor(s) {missing}; valid: {weight_layers(model)}")
    was_training = model.training
    model.eval()
    out: list[LayerSAL] = []
    try:
        batch_size = _pass_batch_size(spec, train_spec)
        if spec.engine == "batched":
            xs, ys = _sal_set(x, y, spec)
            for i, name in enumerate(names):
                copies = _copies(model, name, kept)
                gen = torch.Generator().manual_seed(_seed(spec.seed, epoch, i))
                out.append(_batched_layer(copies, name, params[name].detach(), copies.prefix(xs), ys, spec,
                                          batch_size, base, gen, loss or CROSS_ENTROPY))
                if progress is not None:
                    progress(i + 1, len(names))
        elif spec.engine == "reference":
            for i, name in enumerate(names):
                gen = torch.Generator().manual_seed(_seed(spec.seed, epoch, i))
                out.append(_reference_layer(model, name, x, y, spec, train_spec, base, gen, loss or CROSS_ENTROPY))
                if progress is not None:
                    progress(i + 1, len(names))
        else:
            raise ValueError(f"unknown SAL engine {spec.engine!r}; valid: reference, batched")
    finally:
        model.train(was_training)
    return out


def channel_sal(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: SALSpec, layer: str, *,
                train_spec: TrainSpec | None = None, running: tuple[float, float] | None = None, epoch: int = 0,
                channels_per_pass: int = 32, loss: SampleLoss | None = None) -> list[LayerSAL]:
    """SAL of each output channel (filter or neuron) of the weight tensor `layer`, one `LayerSAL` per channel.

    Channel c's weights theta_c = weight[c] move alone, within their own relative ball
    ||delta_c||_F <= eps * ||theta_c||_F, every other weight frozen; otherwise SAL's definition and the batched
    engine's procedure (Ye et al., ICLR 2025: K rounds of plain SGD, projection, evaluation; the spec's subset,
    rounds, lr and baseline) apply per channel. The paper speaks of "parameters"; this shows which filters of
    a layer are flat. The min and max copies of `channels_per_pass` channels run stacked in one pass (2 copies
    per channel, each stepping only its channel), with the same shuffles for every group of channels, so a
    channel's value does not depend on the grouping.

    Args:
        model: the network (left unchanged, mode restored).
        x: the model's training images (on its device).
        y: their labels.
        spec: the SAL settings (engine ignored: always the batched procedure on `spec.eval_size` images).
        layer: the weight tensor's name (one of `weight_layers(model)`).
        train_spec: the trainer's spec (its batch size, unless `spec.batch_size` is set).
        running: (loss, accuracy) of the epoch's training pass, required by `baseline="running"`.
        epoch: the epoch being measured (seeds the shuffles).
        channels_per_pass: channels evaluated together (memory: 2 x this many copies of the suffix).
        loss: the per-sample loss and score (default cross-entropy and accuracy).
    """
    start = _start(spec, running)
    params = dict(model.named_parameters())
    if layer not in weight_layers(model):
        raise ShapeError(f"model has no weight layer {layer!r}; valid: {weight_layers(model)}")
    objective = loss or CROSS_ENTROPY
    theta = params[layer].detach()
    norms = theta.reshape(len(theta), -1).norm(dim=1)  # ||theta_c||, (C,)
    was_training = model.training
    model.eval()
    out: list[LayerSAL] = []
    try:
        xs, ys = _sal_set(x, y, spec)
        copies = Copies(model, [layer])
        frozen = copies.prefix(xs)
        l0, a0 = _baseline(copies, layer, theta, frozen, ys, start, objective)
        for first in range(0, len(theta), channels_per_pass):
            chans = torch.arange(first, min(first + channels_per_pass, len(theta)), device=theta.device)
            g = 2 * len(chans)
            mask = torch.zeros(g, *theta.shape, dtype=theta.dtype, device=theta.device)
            mask[torch.arange(g, device=theta.device), chans.repeat_interleave(2)] = 1.0  # copy 2k, 2k+1: channel k
            step = torch.tensor([spec.lr, -spec.lr], dtype=theta.dtype, device=theta.device).repeat(len(chans))
            radius = spec.eps * norms[chans].repeat_interleave(2)
            gen = torch.Generator().manual_seed(_seed(spec.seed, epoch, 1 << 20))  # the same shuffles per group
            best, acc = _sgd_rounds(copies, layer, theta, frozen, ys, step=step, radius=radius, mask=mask,
                                    start=(l0, a0), spec=spec, batch_size=_pass_batch_size(spec, train_spec),
                                    generator=gen, objective=objective)
            for k in range(len(chans)):
                out.append(_finish(l0, a0, float(best[2 * k]), float(acc[2 * k]), float(best[2 * k + 1]),
                                   float(acc[2 * k + 1])))
    finally:
        model.train(was_training)
    return out


class SALTracker:
    """Trainer callback measuring SAL of every weight layer after every `spec.every`-th epoch (and the last).

    Pass it in `train(..., callbacks=[tracker])`; `tracker.trace()` returns the `SALTrace`.

    Args:
        spec: the SAL settings.
        progress: called as `progress(layers_done, layers_total)` within each measured epoch.
        loss: the objective SAL measures (default cross-entropy; see `model_sal`). With a running baseline
            and another objective the accuracy variant is NaN (the trainer's running metric is not a score).
    """

    def __init__(self, spec: SALSpec, *, progress: LayerProgress | None = None, loss: SampleLoss | None = None,
                 kept: Kept | None = None) -> None:
        self.spec, self.progress, self.loss = spec, progress, loss
        self.kept: Kept = {} if kept is None else kept  # the network's split graphs, built once per layer
        self.layers: list[str] | None = None
        self.epochs: list[int] = []
        self.rows: list[list[LayerSAL]] = []
        self.seconds: list[float] = []

    def measures(self, epoch: int, epochs: int) -> bool:
        """True if SAL is measured after `epoch` of an `epochs`-epoch run (every `spec.every`-th and the last)."""
        return epoch % self.spec.every == 0 or epoch == epochs

    def __call__(self, state: EpochState) -> None:
        if not self.measures(state.epoch, state.spec.epochs):
            return
        if self.layers is None:
            self.layers = weight_layers(state.model)
        started = time.perf_counter()
        row = model_sal(state.model, state.x_train, state.y_train, self.spec, train_spec=state.spec,
                        running=(state.train_loss, state.train_acc if self.loss is None else float("nan")),
                        layers=self.layers, epoch=state.epoch, progress=self.progress, loss=self.loss,
                        kept=self.kept)
        self.seconds.append(time.perf_counter() - started)
        self.epochs.append(state.epoch)
        self.rows.append(row)

    def trace(self) -> SALTrace:
        """The SAL measured so far."""
        return SALTrace.from_rows(self.layers or [], self.epochs, self.rows, self.seconds, self.spec)


__all__ = ["Kept", "LayerSAL", "SALTrace", "SALTracker", "channel_sal", "eval_subset", "model_sal", "project_to_ball"]
