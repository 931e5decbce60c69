"""Loss and accuracy on lines and planes in weight space, many grid points per pass over the data.

`slice_1d` / `slice_2d` evaluate L(c + a d1 (+ b d2)) and the accuracy on a grid, `project_path` places
a training trajectory on the plane (coordinates, off-plane residual, the checkpoint's real loss beside
the surface value at its projection), and `estimate_cost` says what a grid will cost before it runs.

How points are evaluated:
  * The caller's model is never touched: a private copy in eval mode (BatchNorm uses its running
    statistics) is called with `torch.func.functional_call`, or a compiled plan of it (below).
  * "batched" (default): data batches in the outer loop, chunks of grid points inside. A chunk's weights
    are stacked (G, ...) and the G networks run as one: for an `nn.Sequential` of standard layers a plan
    with grouped convolutions and batched matmuls (feature maps laid out (N, G*C, H, W), one layout for
    the whole pass); for any other module `torch.func.vmap` over `functional_call`. The chunk size comes
    from a memory cap (`memory_cap_mb`).
  * "sequential": the plain reference, one point at a time, the same arithmetic for the weights; the two
    agree to float32 rounding (tests hold them to 1e-5).
Values are kept raw: a NaN or infinite loss stays in the arrays and `Surface.finite` marks it. Per-batch
means are kept (`batch_loss`, `batch_acc`) and the standard errors come from the per-image spread.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landscape.config import MAX_GRID_POINTS
from landscape.data import ImageSet
from landscape.directions import Plane, State, check_direction, float_state, project
from landscape.errors import ShapeError, SpecError

log = logging.getLogger(__name__)

Evaluator = Literal["batched", "sequential"]
Progress = Callable[[int, int], None]
Data = ImageSet | tuple[torch.Tensor, torch.Tensor]

# Default memory cap of one chunk's activations and stacked weights, per device type (MiB). On the CPU a
# larger chunk buys nothing: for the digits CNN at batch 128, chunks of 2 to 32 points cost the same CPU
# time per point and 64 points about 20% more (one core, measured while developing); 64 MiB gives ~20.
DEFAULT_MEMORY_CAP_MB = {"cpu": 64, "cuda": 2048, "mps": 1024}
MAX_CHUNK = 1024


# --------------------------------------------------------------------------------------------------
# results


@dataclass
class PointStats:
    """Loss and accuracy at P points in weight space on one evaluation set.

    Attributes:
        loss: (P,) mean cross-entropy; NaN/inf kept as computed.
        acc: (P,) accuracy (meaningless where the loss is not finite).
        loss_se: (P,) standard error of the mean loss over images (per-image std / sqrt(N)).
        acc_se: (P,) binomial standard error of the accuracy, sqrt(acc (1 - acc) / N).
        batch_loss: (K, P) mean loss of each evaluation batch.
        batch_acc: (K, P) accuracy of each evaluation batch.
        batch_sizes: (K,) images per batch.
        info: evaluator used, chunk size, seconds.
    """

    loss: np.ndarray
    acc: np.ndarray
    loss_se: np.ndarray
    acc_se: np.ndarray
    batch_loss: np.ndarray
    batch_acc: np.ndarray
    batch_sizes: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)


@dataclass
class ProjectedPath:
    """A trajectory placed on a plane.

    Attributes:
        epochs: (T,) epoch of each checkpoint (0 = initialisation).
        alpha, beta: (T,) least-squares coordinates of each checkpoint on the plane (beta = 0 on a line).
        residual: (T,) off-plane distance ||theta_t - projection||.
        distance: (T,) distance to the plane's centre ||theta_t - center|| (residual / distance = relative).
        real_loss, real_acc: (T,) loss and accuracy of the checkpoint itself (all its weights and buffers).
        plane_loss, plane_acc: (T,) loss and accuracy at its projection on the plane (what the surface shows
            there), evaluated exactly, not interpolated.
    """

    epochs: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    residual: np.ndarray
    distance: np.ndarray
    real_loss: np.ndarray
    real_acc: np.ndarray
    plane_loss: np.ndarray
    plane_acc: np.ndarray

    FIELDS = ("epochs", "alpha", "beta", "residual", "distance", "real_loss", "real_acc", "plane_loss", "plane_acc")

    @property
    def relative_residual(self) -> np.ndarray:
        """Residual / distance (0 where the checkpoint is the centre)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(self.distance > 0, self.residual / self.distance, 0.0)


@dataclass
class Surface:
    """A 1D or 2D slice of the loss landscape; every array is numpy, every value raw.

    Attributes:
        alpha: (A,) coordinates along d1.
        beta: (B,) coordinates along d2 (a 1D slice has B = 1 and beta = [0]).
        loss: (A, B) mean loss, loss[i, j] at center + alpha[i] d1 + beta[j] d2; NaN/inf kept.
        acc: (A, B) accuracy.
        loss_se, acc_se: (A, B) standard errors (see `PointStats`).
        finite: (A, B) True where the loss is finite.
        batch_loss, batch_acc: (K, A, B) per evaluation batch; batch_sizes (K,).
        kind: "random", "pca", "interp" or "custom".
        ndim: 1 or 2.
        center: label of the model at the origin (e.g. "clean").
        explained_variance: (2,) PCA explained-variance ratio of d1, d2 (empty for other kinds).
        paths: projected trajectories by model label.
        anchors: (alpha, beta) of named models on the plane (e.g. {"clean": (0, 0), "em": (1, 0)}).
        info: direction metadata (policies, seed, cosine before orthogonalisation, norms), evaluation
            metadata (evaluator, chunk, seconds, points per second, images, split).
    """

    alpha: np.ndarray
    beta: np.ndarray
    loss: np.ndarray
    acc: np.ndarray
    loss_se: np.ndarray
    acc_se: np.ndarray
    finite: np.ndarray
    batch_loss: np.ndarray
    batch_acc: np.ndarray
    batch_sizes: np.ndarray
    kind: str = "custom"
    ndim: int = 2
    center: str = "center"
    explained_variance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    paths: dict[str, ProjectedPath] = field(default_factory=dict)
    anchors: dict[str, tuple[float, float]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)

    ARRAYS = ("alpha", "beta", "loss", "acc", "loss_se", "acc_se", "finite", "batch_loss", "batch_acc",
              "batch_sizes", "explained_variance")

    def value_at(self, a: float, b: float = 0.0) -> float:
        """Loss at the grid point nearest to (a, b)."""
        i, j = int(np.abs(self.alpha - a).argmin()), int(np.abs(self.beta - b).argmin())
        return float(self.loss[i, j])

    def to_store(self, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata, arrays) for `Store.save`; `from_store` inverts it."""
        arrays = {f"{prefix}{k}": np.asarray(getattr(self, k)) for k in self.ARRAYS}
        arrays[f"{prefix}finite"] = self.finite.astype(np.uint8)
        for name, path in self.paths.items():
            for k in ProjectedPath.FIELDS:
                arrays[f"{prefix}path/{name}/{k}"] = np.asarray(getattr(path, k))
        meta = {"kind": self.kind, "ndim": self.ndim, "center": self.center, "paths": list(self.paths),
                "anchors": {k: list(v) for k, v in self.anchors.items()}, "info": self.info}
        return meta, arrays

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray], prefix: str = "") -> Surface:
        values = {k: arrays[f"{prefix}{k}"] for k in cls.ARRAYS}
        values["finite"] = values["finite"].astype(bool)
        paths = {name: ProjectedPath(**{k: arrays[f"{prefix}path/{name}/{k}"] for k in ProjectedPath.FIELDS})
                 for name in meta["paths"]}
        anchors = {k: (float(v[0]), float(v[1])) for k, v in meta["anchors"].items()}
        return cls(**values, kind=meta["kind"], ndim=int(meta["ndim"]), center=meta["center"], paths=paths,
                   anchors=anchors, info=dict(meta["info"]))


@dataclass
class SurfaceSet:
    """The surfaces of one `SurfaceSpec` request, by label (e.g. {"shared": ...} or {"clean": ..., "em": ...})."""

    surfaces: dict[str, Surface]
    info: dict[str, Any] = field(default_factory=dict)

    def __getitem__(self, label: str) -> Surface:
        return self.surfaces[label]

    def __iter__(self) -> Iterator[str]:
        return iter(self.surfaces)

    def __len__(self) -> int:
        return len(self.surfaces)

    def to_store(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {"labels": list(self.surfaces), "info": self.info, "surfaces": {}}
        arrays: dict[str, np.ndarray] = {}
        for label, s in self.surfaces.items():
            m, a = s.to_store(prefix=f"{label}/")
            meta["surfaces"][label] = m
            arrays.update(a)
        return meta, arrays

    def grid_table(self) -> list[dict[str, Any]]:
        """Rows of every grid point of every surface: label, kind, alpha, beta, loss, accuracy, standard errors."""
        rows = []
        for label, s in self.surfaces.items():
            aa, bb = np.meshgrid(s.alpha, s.beta, indexing="ij")
            columns = {"alpha": aa, "beta": bb, "loss": s.loss, "loss_se": s.loss_se, "acc": s.acc, "acc_se": s.acc_se}
            flat = {k: np.asarray(v, dtype=np.float64).ravel() for k, v in columns.items()}
            rows += [{"surface": label, "kind": s.kind, **{k: float(v[i]) for k, v in flat.items()}}
                     for i in range(aa.size)]
        return rows

    def paths_table(self) -> list[dict[str, Any]]:
        """Rows of every projected checkpoint: coordinates, off-plane residual, real vs on-plane loss and accuracy."""
        fields = ("alpha", "beta", "residual", "relative_residual", "real_loss", "plane_loss", "real_acc", "plane_acc")
        return [{"surface": label, "run": name, "epoch": int(p.epochs[i]),
                 **{f: float(getattr(p, f)[i]) for f in fields}}
                for label, s in self.surfaces.items() for name, p in s.paths.items() for i in range(len(p.epochs))]

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: Mapping[str, np.ndarray]) -> SurfaceSet:
        surfaces = {label: Surface.from_store(meta["surfaces"][label], arrays, prefix=f"{label}/")
                    for label in meta["labels"]}
        return cls(surfaces, dict(meta["info"]))


@dataclass(frozen=True)
class CostEstimate:
    """What a grid evaluation will cost, before it runs.

    Attributes:
        points: grid points.
        images: evaluation images per point.
        forward_passes: points x images (one image through the network is one pass).
        gflop: forward FLOPs in total (counted on one image by `torch.utils.flop_counter`), 1e9 units.
        chunk: grid points evaluated together.
        batches: evaluation batches per pass over the data.
        seconds: expected wall time from a quick calibration (None if not calibrated).
        evaluator: which batched path will run ("plan", "vmap" or "loop").
    """

    points: int
    images: int
    forward_passes: int
    gflop: float
    chunk: int
    batches: int
    seconds: float | None
    evaluator: str

    def describe(self) -> str:
        """One line for a UI or the CLI."""
        secs = f", about {self.seconds:.1f} s here" if self.seconds is not None else ""
        return (f"{self.points:,} grid points x {self.images:,} images = {self.forward_passes:,} forward passes "
                f"({self.gflop:,.1f} GFLOP){secs}")


# --------------------------------------------------------------------------------------------------
# points in weight space


class _Points:
    """A set of P points in weight space; `stack(idx)` gives the varying entries of points idx as (G, ...)."""

    n: int
    varying: list[str]
    fixed: dict[str, torch.Tensor]

    def stack(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def varying_numel(self) -> int:
        """Number of weights that vary from point to point."""
        raise NotImplementedError

    def to(self, device: torch.device) -> _Points:
        raise NotImplementedError


class GridPoints(_Points):
    """Points center + sum_k coords[p, k] * directions[k]; entries no direction moves stay fixed.

    The weights of point p are built as ((center + c0 d0) + c1 d1) in float32 whether p is built alone or in
    a chunk, so the batched and the sequential paths see bit-identical weights.
    """

    def __init__(self, center: State, directions: Sequence[Mapping[str, torch.Tensor]], coords: np.ndarray) -> None:
        coords = np.asarray(coords, dtype=np.float64)
        if coords.ndim != 2 or coords.shape[1] != len(directions):
            raise ShapeError(f"coords must be (points, {len(directions)}), got {coords.shape}")
        self.center = {k: v for k, v in center.items()}
        self.directions = [dict(d) for d in directions]
        self.coords = torch.as_tensor(coords, dtype=torch.float32)
        self.n = len(coords)
        moved = {n for d in self.directions for n, t in d.items() if bool((t != 0).any())}
        self.varying = [n for n in self.center if n in moved]
        self.fixed = {n: v for n, v in self.center.items() if n not in moved}

    def stack(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        c = self.coords[idx].to(next(iter(self.center.values())).device)  # (G, k)
        out = {}
        for n in self.varying:
            base = self.center[n]
            w = base.unsqueeze(0).expand(len(idx), *base.shape)
            for k, d in enumerate(self.directions):
                if n in d:
                    w = w + c[:, k].reshape(-1, *([1] * base.dim())) * d[n].unsqueeze(0)
            out[n] = w.contiguous()
        return out

    def varying_numel(self) -> int:
        return sum(self.center[n].numel() for n in self.varying)

    def to(self, device: torch.device) -> GridPoints:
        new = copy.copy(self)
        new.center = {k: v.to(device) for k, v in self.center.items()}
        new.directions = [{k: v.to(device) for k, v in d.items()} for d in self.directions]
        new.fixed = {k: v.to(device) for k, v in self.fixed.items()}
        return new


class StatePoints(_Points):
    """Points given as whole state dicts (e.g. checkpoints); float entries that differ between them vary."""

    def __init__(self, states: Sequence[State]) -> None:
        if not states:
            raise ShapeError("no states to evaluate")
        self.states = [float_state(s) for s in states]
        first = self.states[0]
        for s in self.states[1:]:
            if set(s) != set(first) or any(s[k].shape != first[k].shape for k in first):
                raise ShapeError("all states must have the same entries and shapes")
        self.n = len(self.states)
        self.varying = [k for k, v in first.items() if v.is_floating_point()
                        and any(not torch.equal(s[k], v) for s in self.states[1:])]
        if self.n == 1:
            self.varying = [k for k, v in first.items() if v.is_floating_point()]
        self.fixed = {k: v for k, v in first.items() if k not in self.varying}

    def stack(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        return {n: torch.stack([self.states[int(i)][n] for i in idx]) for n in self.varying}

    def varying_numel(self) -> int:
        return sum(self.states[0][n].numel() for n in self.varying)

    def to(self, device: torch.device) -> StatePoints:
        new = copy.copy(self)
        new.states = [{k: v.to(device) for k, v in s.items()} for s in self.states]
        new.fixed = {k: v.to(device) for k, v in self.fixed.items()}
        return new


# --------------------------------------------------------------------------------------------------
# forward strategies: (stacked varying entries, fixed entries, x) -> logits (G, N, K)


class _Unsupported(Exception):
    """The plan cannot run this model; fall back to vmap."""


_ELEMENTWISE = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Tanh, nn.Sigmoid, nn.Softplus, nn.Identity,
                nn.Dropout, nn.Dropout2d, nn.Hardtanh, nn.ReLU6, nn.Mish)
_POOLS = (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def _leaves(module: nn.Module, prefix: str = "") -> list[tuple[str, nn.Module]]:
    if type(module) is not nn.Sequential:
        raise _Unsupported(f"{type(module).__name__} is not a plain nn.Sequential")
    out = []
    for name, child in module.named_children():
        full = f"{prefix}{name}"
        if type(child) is nn.Sequential:
            out.extend(_leaves(child, full + "."))
        elif isinstance(child, (nn.Conv2d, nn.Linear, nn.Flatten, nn.BatchNorm1d, nn.BatchNorm2d,
                                *_ELEMENTWISE, *_POOLS)):
            if isinstance(child, nn.Conv2d) and child.padding_mode != "zeros":
                raise _Unsupported("only zero-padded convolutions")
            if isinstance(child, (nn.BatchNorm1d, nn.BatchNorm2d)) and not child.track_running_stats:
                raise _Unsupported("BatchNorm without running statistics")
            if isinstance(child, nn.Flatten) and (child.start_dim != 1 or child.end_dim != -1):
                raise _Unsupported("only Flatten(1, -1)")
            out.append((full, child))
        else:
            raise _Unsupported(f"layer {type(child).__name__} has no stacked form")
    return out


class SequentialPlan:
    """Runs G weight sets of an `nn.Sequential` CNN/MLP at once.

    Feature maps are laid out (N, G*C, H, W) from the first layer whose weights vary to the flatten, so
    every convolution is one grouped convolution (groups = G x the layer's groups), and vectors (G, N, F)
    after it, so every linear layer is one batched matmul. Layers before the first varying one run once
    for all points; a convolution or linear layer of the shared input runs once with G x the filters. A
    ReLU that precedes a max-pooling is applied after it (equal, and 4x less work), an adaptive pooling to
    the size it already has is skipped, and intermediate tensors are updated in place (the input never
    is). Measured in CPU time on one core of this project's CPU (digits CNN): about 3.4 ms per grid point
    for 360 images, 80% of the core's float32 matmul rate; channels-last maps and oneDNN's fused
    convolution + ReLU were tried and gave no gain at this level, so the plan stays NCHW.

    Args:
        model: a plain `nn.Sequential` (nested ones are flattened) of Conv2d, Linear, Flatten, BatchNorm1d/2d
            (eval statistics), pooling and elementwise activation layers; anything else raises `_Unsupported`.
    """

    def __init__(self, model: nn.Module) -> None:
        self.layers = _leaves(model)

    @staticmethod
    def _conv(h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, mod: nn.Conv2d, groups: int,
              relu: bool) -> torch.Tensor:
        out = F.conv2d(h, w, b, mod.stride, mod.padding, mod.dilation, groups)
        return torch.relu_(out) if relu else out

    def __call__(self, varying: Mapping[str, torch.Tensor], fixed: Mapping[str, torch.Tensor],
                 x: torch.Tensor, g: int) -> torch.Tensor:
        h, layout, owned = x, "x", False  # layout "x": unbatched (N, ...); "img": (N, G*C, H, W); "vec": (G, N, F)

        def get(name: str) -> tuple[torch.Tensor | None, bool]:
            if name in varying:
                return varying[name], True
            return fixed.get(name), False

        def stacked(t: torch.Tensor | None, is_var: bool) -> torch.Tensor | None:
            if t is None:
                return None
            return t if is_var else t.unsqueeze(0).expand(g, *t.shape)

        def to_img(h: torch.Tensor) -> torch.Tensor:
            return h.repeat(1, g, *([1] * (h.dim() - 2)))

        layers = self.layers
        i = 0
        while i < len(layers):
            name, mod = layers[i]
            nxt = layers[i + 1][1] if i + 1 < len(layers) else None
            i += 1
            if isinstance(mod, nn.Conv2d):
                after = layers[i + 1][1] if i + 1 < len(layers) else None
                relu = type(nxt) is nn.ReLU and not isinstance(after, nn.MaxPool2d)  # else: pool, then ReLU
                (w, wv), (b, bv) = get(f"{name}.weight"), get(f"{name}.bias")
                if layout == "vec":
                    raise _Unsupported("convolution after a flatten")
                if layout == "x" and not (wv or bv):
                    h = self._conv(h, w, b, mod, mod.groups, relu)
                else:
                    w, b = stacked(w, wv), stacked(b, bv)
                    w2 = w.reshape(g * w.shape[1], *w.shape[2:])
                    b2 = None if b is None else b.reshape(-1)
                    if layout == "x" and mod.groups == 1:  # shared input: one convolution with G x the filters
                        h = self._conv(h, w2, b2, mod, 1, relu)
                    else:
                        h = self._conv(to_img(h) if layout == "x" else h, w2, b2, mod, mod.groups * g, relu)
                    layout = "img"
                owned = True
                i += int(relu)  # the ReLU ran here, in place
            elif isinstance(mod, nn.Linear):
                (w, wv), (b, bv) = get(f"{name}.weight"), get(f"{name}.bias")
                if layout == "img":
                    raise _Unsupported("linear layer on a 4-D feature map")
                if layout == "x":
                    if h.dim() != 2:
                        raise _Unsupported("linear layer on a non-flat input")
                    if not (wv or bv):
                        h = F.linear(h, w, b)
                    else:  # shared input: one matmul with G x the outputs
                        w, b = stacked(w, wv), stacked(b, bv)
                        out = F.linear(h, w.reshape(-1, w.shape[-1]), None if b is None else b.reshape(-1))
                        h, layout = out.reshape(h.shape[0], g, -1).transpose(0, 1), "vec"  # (G, N, O)
                else:
                    w, b = stacked(w, wv), stacked(b, bv)
                    wt = w.transpose(1, 2)
                    h = torch.baddbmm(b.unsqueeze(1), h, wt) if b is not None else torch.bmm(h, wt)
                owned = True
            elif isinstance(mod, nn.Flatten):
                if layout == "img":
                    h, layout = h.reshape(h.shape[0], g, -1).transpose(0, 1), "vec"
                elif layout == "x":
                    h = h.flatten(1)
            elif isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
                entries = [get(f"{name}.{k}") for k in ("running_mean", "running_var", "weight", "bias")]
                if layout == "x" and not any(v for _, v in entries):
                    h = F.batch_norm(h, *(t for t, _ in entries), False, 0.0, mod.eps)
                else:
                    if layout == "x":
                        if isinstance(mod, nn.BatchNorm1d):
                            if h.dim() != 2:
                                raise _Unsupported("BatchNorm1d on a sequence")
                            h, layout = h.unsqueeze(0).expand(g, *h.shape), "vec"
                        else:
                            h, layout = to_img(h), "img"
                    flat = [None if t is None else stacked(t, v).reshape(-1) for t, v in entries]
                    if layout == "img":
                        h = F.batch_norm(h, *flat, False, 0.0, mod.eps)
                    else:  # (G, N, F) -> (N, G*F) and back
                        n = h.shape[1]
                        h = F.batch_norm(h.transpose(0, 1).reshape(n, -1), *flat, False, 0.0, mod.eps)
                        h = h.reshape(n, g, -1).transpose(0, 1)
                owned = True
            elif isinstance(mod, _POOLS):
                if layout == "vec":
                    raise _Unsupported("pooling after a flatten")
                if isinstance(mod, nn.AdaptiveAvgPool2d):
                    size = mod.output_size if isinstance(mod.output_size, tuple) else (mod.output_size,) * 2
                    if tuple(h.shape[-2:]) == tuple(s if s is not None else h.shape[-2 + k]
                                                   for k, s in enumerate(size)):
                        continue  # averaging over one element is the identity
                h, owned = mod(h), True
            elif type(mod) is nn.ReLU:
                if isinstance(nxt, nn.MaxPool2d) and layout != "vec":  # max-pool first: equal, 4x less work
                    h, owned = nxt(h), True
                    i += 1
                h = torch.relu_(h) if owned else torch.relu(h)
                owned = True
            else:  # other elementwise layers (identity in eval mode for dropout)
                h, owned = mod(h), owned or not isinstance(mod, (nn.Identity, nn.Dropout, nn.Dropout2d))
        if layout == "x":
            if h.dim() != 2:
                raise _Unsupported("model output is not (N, classes)")
            return h.unsqueeze(0).expand(g, *h.shape)
        if layout == "img":
            raise _Unsupported("model output is a feature map")
        return h


class _VmapForward:
    def __init__(self, model: nn.Module) -> None:
        from torch.func import functional_call, vmap

        self._f = vmap(lambda v, f, x: functional_call(model, (v, f), (x,)), in_dims=(0, None, None))

    def __call__(self, varying: Mapping[str, torch.Tensor], fixed: Mapping[str, torch.Tensor], x: torch.Tensor,
                 g: int) -> torch.Tensor:
        return self._f(dict(varying), dict(fixed), x)


class _LoopForward:
    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def __call__(self, varying: Mapping[str, torch.Tensor], fixed: Mapping[str, torch.Tensor], x: torch.Tensor,
                 g: int) -> torch.Tensor:
        from torch.func import functional_call

        return torch.stack([functional_call(self.model, ({k: v[i] for k, v in varying.items()}, dict(fixed)), (x,))
                            for i in range(g)])


def _eval_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A private eval-mode copy of `model` on `device` (the caller's module, mode and weights stay as they are)."""
    twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin.to(device).eval()


def _model_device(model: nn.Module) -> torch.device:
    for t in model.parameters():
        return t.device
    return torch.device("cpu")


def _as_xy(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(data, ImageSet):
        return data.x, data.y
    x, y = data
    if len(x) != len(y):
        raise ShapeError(f"{len(x)} inputs but {len(y)} labels")
    if len(y) == 0:
        raise ShapeError("the evaluation set is empty")
    return x, y


def eval_subset(images: ImageSet, n: int | None, seed: int = 0) -> ImageSet:
    """A fixed random subset of `n` images (sorted indices, drawn with a seeded `torch.Generator`); all if None."""
    if n is None or n >= len(images):
        return images
    idx = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))[:n].sort().values
    return images.subset(idx)


def _activation_bytes(model: nn.Module, x1: torch.Tensor) -> tuple[int, float]:
    """(peak bytes of activations per image, FLOPs per image) from one forward of one image."""
    from torch.utils.flop_counter import FlopCounterMode

    sizes: list[int] = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.numel() if torch.is_tensor(o) else 0))
             for m in model.modules() if not list(m.children())]
    try:
        with torch.no_grad(), FlopCounterMode(display=False) as counter:
            model(x1)
    finally:
        for h in hooks:
            h.remove()
    peak = max((a + b for a, b in zip([x1.numel(), *sizes], sizes, strict=False)), default=x1.numel())
    return 4 * peak, float(counter.get_total_flops())


def _auto_chunk(n_points: int, batch: int, act_bytes: int, varying_numel: int, cap_mb: float) -> int:
    # x3: the input and output of a layer plus temporaries (grouped-conv repacking, softmax)
    per_point = 3 * batch * act_bytes + 3 * 4 * varying_numel
    return int(max(1, min(n_points, MAX_CHUNK, (cap_mb * 2 ** 20) // max(per_point, 1))))


def _make_forward(twin: nn.Module, kind: str, device: torch.device) -> tuple[Callable, str]:
    if kind == "plan":
        try:
            return SequentialPlan(twin), "plan"
        except _Unsupported as why:
            log.debug("stacked plan unavailable (%s); using vmap", why)
            kind = "vmap"
    if kind == "vmap":
        return _VmapForward(twin), "vmap"
    return _LoopForward(twin), "loop"


def _per_sample(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image loss (G, N) and correctness (G, N) from logits (G, N, K)."""
    g, n, k = logits.shape
    loss = F.cross_entropy(logits.reshape(g * n, k).float(), y.repeat(g), reduction="none").reshape(g, n)
    return loss, logits.argmax(-1) == y.unsqueeze(0)


def evaluate_points(model: nn.Module, points: _Points, data: Data, *, batch_size: int = 128,
                    evaluator: Evaluator = "batched", chunk: int | None = None, memory_cap_mb: float | None = None,
                    device: torch.device | str | None = None, progress: Progress | None = None,
                    backend: str = "plan") -> PointStats:
    """Loss and accuracy of `model`'s architecture at every point of `points` on `data`.

    Args:
        model: supplies the architecture (and any state entry `points` does not set); never modified.
        points: `GridPoints` or `StatePoints`.
        data: an `ImageSet` or (x, y) tensors.
        batch_size: images per evaluation batch.
        evaluator: "batched" (data outer, chunks of points inner) or "sequential" (the reference: one
            point at a time, looping over the data batches).
        chunk: points per chunk (batched); None = the largest under `memory_cap_mb`.
        memory_cap_mb: memory for one chunk's activations and weights; None = `DEFAULT_MEMORY_CAP_MB`.
        device: where to compute (default: the model's device).
        progress: called as `progress(done, total)` in point-batches.
        backend: batched path to try first: "plan" (stacked nn.Sequential; falls back to "vmap" for other
            modules), "vmap", or "loop" (per point inside a chunk; the fallback if vmap fails).
    """
    if evaluator not in ("batched", "sequential"):
        raise SpecError(f"evaluator={evaluator!r} is not valid; choose 'batched' or 'sequential'")
    if backend not in ("plan", "vmap", "loop"):
        raise SpecError(f"backend={backend!r} is not valid; choose 'plan', 'vmap' or 'loop'")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"batch_size={batch_size!r} must be a positive integer")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise SpecError(f"chunk={chunk!r} must be a positive integer or None (automatic)")
    device = torch.device(device) if device is not None else _model_device(model)
    x, y = _as_xy(data)
    x, y = x.to(device), y.to(device)
    n_img = len(y)
    starts = list(range(0, n_img, batch_size))
    twin = _eval_copy(model, device)
    pts = points.to(device)
    base = {k: v for k, v in twin.state_dict().items()}
    fixed = {**{k: v for k, v in base.items() if k not in pts.varying}, **pts.fixed}
    p, k_b = pts.n, len(starts)
    loss_sum = torch.zeros(k_b, p, dtype=torch.float64)
    sq_sum = torch.zeros(p, dtype=torch.float64)
    correct = torch.zeros(k_b, p, dtype=torch.float64)
    total = p * k_b
    started = time.perf_counter()
    info: dict[str, Any] = {"evaluator": evaluator, "device": str(device), "points": p, "images": n_img}

    def record(kb: int, idx: torch.Tensor, logits: torch.Tensor, yb: torch.Tensor) -> None:
        loss, ok = _per_sample(logits, yb)
        loss64 = loss.double()
        loss_sum[kb, idx] = loss64.sum(1).cpu()
        sq_sum[idx] += (loss64 ** 2).sum(1).cpu()
        correct[kb, idx] = ok.sum(1).double().cpu()

    with torch.no_grad():
        if evaluator == "sequential":
            from torch.func import functional_call

            for i in range(p):
                idx = torch.tensor([i])
                state = {k: v[0] for k, v in pts.stack(idx).items()}
                for kb, s in enumerate(starts):
                    xb, yb = x[s:s + batch_size], y[s:s + batch_size]
                    logits = functional_call(twin, (state, fixed), (xb,))
                    record(kb, idx, logits.unsqueeze(0), yb)
                if progress is not None:
                    progress((i + 1) * k_b, total)
            info["chunk"] = 1
        else:
            varying_numel = pts.varying_numel()
            if chunk is None:
                act, _ = _activation_bytes(twin, x[:1])
                cap = memory_cap_mb if memory_cap_mb is not None else DEFAULT_MEMORY_CAP_MB.get(device.type, 512)
                chunk = _auto_chunk(p, min(batch_size, n_img), act, varying_numel, cap)
            forward, used = _make_forward(twin, backend, device)
            chunks = [torch.arange(s, min(s + chunk, p)) for s in range(0, p, chunk)]
            done = 0
            for kb, s in enumerate(starts):
                xb, yb = x[s:s + batch_size], y[s:s + batch_size]
                for idx in chunks:
                    varying = pts.stack(idx)
                    while True:
                        try:
                            logits = forward(varying, fixed, xb, len(idx))
                            break
                        except (_Unsupported, RuntimeError, TypeError, ValueError) as why:
                            if used == "loop":  # the plain per-point call failed: a real error
                                raise
                            fallback = "vmap" if used == "plan" else "loop"
                            log.debug("%s path failed (%s); using %s from here on", used, why, fallback)
                            forward, used = _make_forward(twin, fallback, device)
                    record(kb, idx, logits, yb)
                    done += len(idx)
                    if progress is not None:
                        progress(done, total)
            info.update(chunk=int(chunk), backend=used)
    sizes = np.array([min(batch_size, n_img - s) for s in starts], dtype=np.int64)
    loss_sum_np, correct_np = loss_sum.numpy(), correct.numpy()
    loss = loss_sum_np.sum(0) / n_img
    acc = correct_np.sum(0) / n_img
    with np.errstate(invalid="ignore", over="ignore"):
        var = (sq_sum.numpy() - n_img * loss ** 2) / max(n_img - 1, 1)
        loss_se = np.sqrt(np.clip(var, 0.0, None) / n_img) if n_img > 1 else np.full(p, np.nan)
        loss_se = np.where(np.isfinite(loss), loss_se, np.nan)
    acc_se = np.sqrt(acc * (1 - acc) / n_img)
    info["seconds"] = time.perf_counter() - started
    info["points_per_second"] = p / info["seconds"] if info["seconds"] > 0 else float("inf")
    return PointStats(loss, acc, loss_se, acc_se, loss_sum_np / sizes[:, None], correct_np / sizes[:, None],
                      sizes, info)


# --------------------------------------------------------------------------------------------------
# cost


def check_grid(points: int, images: int, *, flop_per_image: float | None = None,
               max_points: int = MAX_GRID_POINTS) -> None:
    """Raise `SpecError` if `points` exceeds the cap; the message names the cap and what the grid would cost."""
    if points <= max_points:
        return
    side = math.isqrt(max_points)
    cost = f"{points:,} x {images:,} = {points * images:,} image forward passes"
    if flop_per_image:
        cost += f" ({points * images * flop_per_image / 1e9:,.0f} GFLOP)"
    raise SpecError(f"a grid of {points:,} points is over the cap of {max_points:,} points ({side}x{side}); "
                    f"it would cost {cost}. Lower the resolution, or slice a line instead of a plane.")


def estimate_cost(model: nn.Module, points: int, data: Data, *, batch_size: int = 128, chunk: int | None = None,
                  memory_cap_mb: float | None = None, device: torch.device | str | None = None,
                  calibrate: bool = True, backend: str = "plan") -> CostEstimate:
    """Forward passes, FLOPs and (with `calibrate`) expected seconds of a `points`-point grid on `data`.

    The calibration evaluates one chunk on one batch twice (the first run warms up) and scales the second
    run's time to the whole grid; it costs about two chunks of the real run.
    """
    device = torch.device(device) if device is not None else _model_device(model)
    x, y = _as_xy(data)
    twin = _eval_copy(model, device)
    act, flop = _activation_bytes(twin, x[:1].to(device))
    n_img = len(y)
    b = min(batch_size, n_img)
    state = float_state(twin.state_dict())
    names = [n for n, p in twin.named_parameters()]
    numel = sum(state[n].numel() for n in names)
    cap = memory_cap_mb if memory_cap_mb is not None else DEFAULT_MEMORY_CAP_MB.get(device.type, 512)
    chunk = chunk or _auto_chunk(points, b, act, numel, cap)
    batches = math.ceil(n_img / batch_size)
    seconds = None
    used = backend
    if calibrate:
        g = min(chunk, points)
        ones = {n: torch.ones_like(state[n]) for n in names}
        probe = GridPoints(state, [ones], np.zeros((g, 1)))
        sub = (x[:b], y[:b])
        evaluate_points(twin, probe, sub, batch_size=b, chunk=g, device=device, backend=backend)
        stats = evaluate_points(twin, probe, sub, batch_size=b, chunk=g, device=device, backend=backend)
        used = stats.info.get("backend", backend)
        per_point_image = stats.info["seconds"] / (g * b)
        seconds = per_point_image * points * n_img
    return CostEstimate(points, n_img, points * n_img, points * n_img * flop / 1e9, int(chunk), batches, seconds,
                        used)


# --------------------------------------------------------------------------------------------------
# slices and paths


def _center_of(model: nn.Module, center: State | None) -> dict[str, torch.Tensor]:
    state = float_state(model.state_dict())
    if center is not None:
        c = float_state(center)
        for k, v in c.items():
            if k not in state:
                raise ShapeError(f"center entry {k!r} is not in the model's state dict")
            if v.shape != state[k].shape:
                if state[k].ndim == 0 and v.shape == (1,):  # a scalar stored as one element (as load_state_dict)
                    c[k] = v.reshape(())
                    continue
                raise ShapeError(f"center entry {k!r} has shape {tuple(v.shape)}, the model's {tuple(state[k].shape)}")
        state.update(c)
    return state


def _surface_from(stats: PointStats, alpha: np.ndarray, beta: np.ndarray, ndim: int) -> Surface:
    a, b = len(alpha), len(beta)

    def grid(v: np.ndarray) -> np.ndarray:
        return v.reshape(a, b)

    k = len(stats.batch_sizes)
    return Surface(
        alpha=alpha, beta=beta, loss=grid(stats.loss), acc=grid(stats.acc), loss_se=grid(stats.loss_se),
        acc_se=grid(stats.acc_se), finite=np.isfinite(grid(stats.loss)),
        batch_loss=stats.batch_loss.reshape(k, a, b), batch_acc=stats.batch_acc.reshape(k, a, b),
        batch_sizes=stats.batch_sizes, ndim=ndim, info=dict(stats.info),
    )


def _grid_axis(values: Sequence[float] | np.ndarray, label: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).reshape(-1)
    if arr.size == 0 or not np.isfinite(arr).all():
        raise SpecError(f"{label} must be a non-empty list of finite coordinates")
    return arr


def slice_2d(model: nn.Module, d1: Mapping[str, torch.Tensor], d2: Mapping[str, torch.Tensor], data: Data,
             alpha: Sequence[float] | np.ndarray, beta: Sequence[float] | np.ndarray, *,
             center: State | None = None, batch_size: int = 128, evaluator: Evaluator = "batched",
             chunk: int | None = None, memory_cap_mb: float | None = None, max_points: int = MAX_GRID_POINTS,
             device: torch.device | str | None = None, progress: Progress | None = None,
             backend: str = "plan") -> Surface:
    """Loss and accuracy on the plane center + a d1 + b d2 over the grid alpha x beta.

    Args:
        model: the architecture, and the centre when `center` is None; never modified.
        d1: first direction (see `landscape.directions`), checked against the centre's shapes.
        d2: second direction, checked likewise.
        data: evaluation images (`ImageSet` or (x, y)).
        alpha: coordinates along d1; `loss[i, j]` is at (alpha[i], beta[j]).
        beta: coordinates along d2.
        center: state dict of the centre (default: the model's own weights).
        batch_size: images per evaluation batch.
        evaluator: "batched" or "sequential" (the reference), see `evaluate_points`.
        chunk: grid points per chunk (None = automatic under `memory_cap_mb`).
        memory_cap_mb: memory for one chunk (None = `DEFAULT_MEMORY_CAP_MB` of the device type).
        max_points: grid cap; a larger grid raises `SpecError` naming the cap and the cost.
        device: where to compute (default: the model's device).
        progress: `progress(done, total)` in point-batches.
        backend: first batched path to try ("plan", "vmap", "loop").
    """
    a_ax, b_ax = _grid_axis(alpha, "alpha"), _grid_axis(beta, "beta")
    c = _center_of(model, center)
    check_direction(d1, c, label="d1")
    check_direction(d2, c, label="d2")
    check_grid(len(a_ax) * len(b_ax), len(_as_xy(data)[1]), max_points=max_points)
    aa, bb = np.meshgrid(a_ax, b_ax, indexing="ij")
    pts = GridPoints(c, [d1, d2], np.stack([aa.ravel(), bb.ravel()], 1))
    stats = evaluate_points(model, pts, data, batch_size=batch_size, evaluator=evaluator, chunk=chunk,
                            memory_cap_mb=memory_cap_mb, device=device, progress=progress, backend=backend)
    return _surface_from(stats, a_ax, b_ax, 2)


def slice_1d(model: nn.Module, d: Mapping[str, torch.Tensor], data: Data, alpha: Sequence[float] | np.ndarray, *,
             center: State | None = None, batch_size: int = 128, evaluator: Evaluator = "batched",
             chunk: int | None = None, memory_cap_mb: float | None = None, max_points: int = MAX_GRID_POINTS,
             device: torch.device | str | None = None, progress: Progress | None = None,
             backend: str = "plan") -> Surface:
    """Loss and accuracy on the line center + a d; a `Surface` with ndim 1, beta = [0], arrays (A, 1)."""
    a_ax = _grid_axis(alpha, "alpha")
    c = _center_of(model, center)
    check_direction(d, c, label="direction")
    check_grid(len(a_ax), len(_as_xy(data)[1]), max_points=max_points)
    pts = GridPoints(c, [d], a_ax[:, None])
    stats = evaluate_points(model, pts, data, batch_size=batch_size, evaluator=evaluator, chunk=chunk,
                            memory_cap_mb=memory_cap_mb, device=device, progress=progress, backend=backend)
    return _surface_from(stats, a_ax, np.zeros(1), 1)


def slice_plane(model: nn.Module, plane: Plane, data: Data, alpha: Sequence[float] | np.ndarray,
                beta: Sequence[float] | np.ndarray | None = None, **kwargs: Any) -> Surface:
    """`slice_2d` (or `slice_1d` for a line) on a `Plane`, carrying its kind, info and anchors."""
    if plane.d2 is None:
        s = slice_1d(model, plane.d1, data, alpha, center=plane.center, **kwargs)
    else:
        s = slice_2d(model, plane.d1, plane.d2, data, alpha, beta if beta is not None else alpha,
                     center=plane.center, **kwargs)
    s.kind = plane.kind
    s.anchors = dict(plane.anchors)
    s.info = {**plane.info, **s.info}
    if "explained_variance_ratio" in plane.info:
        s.explained_variance = np.asarray(plane.info["explained_variance_ratio"], dtype=np.float64)
    return s


def evaluate_states(model: nn.Module, states: Sequence[State], data: Data, **kwargs: Any) -> PointStats:
    """Loss and accuracy of each full state dict (e.g. every checkpoint of a trajectory) on `data`."""
    return evaluate_points(model, StatePoints(states), data, **kwargs)


def project_path(model: nn.Module, plane: Plane, states: Sequence[State], epochs: Sequence[int], data: Data,
                 **kwargs: Any) -> ProjectedPath:
    """Place checkpoints on `plane`: coordinates, off-plane residual, real loss and the loss at the projection.

    Args:
        model: the architecture; never modified.
        plane: the plane (or line) of the surface.
        states: one state dict per checkpoint.
        epochs: the epoch of each checkpoint.
        data: the evaluation set of the surface (so the numbers are comparable with it).
        **kwargs: passed to `evaluate_points` (batch_size, device, ...).
    """
    if len(states) != len(epochs):
        raise ShapeError(f"{len(states)} checkpoints but {len(epochs)} epochs")
    coords, residual, distance = project(states, plane.center, plane.directions)
    progress = kwargs.pop("progress", None)
    halves: list[Progress | None] = [None, None]
    if progress is not None:  # two evaluations of T points each: report them as one
        halves = [lambda d, t: progress(d, 2 * t), lambda d, t: progress(t + d, 2 * t)]
    real = evaluate_states(model, states, data, progress=halves[0], **kwargs)
    on_plane = evaluate_points(model, GridPoints(plane.center, plane.directions, coords), data, progress=halves[1],
                               **kwargs)
    beta = coords[:, 1] if coords.shape[1] > 1 else np.zeros(len(states))
    return ProjectedPath(np.asarray(epochs, dtype=np.int64), coords[:, 0].copy(), beta.copy(), residual, distance,
                         real.loss, real.acc, on_plane.loss, on_plane.acc)


def fit_range(values: Sequence[float] | np.ndarray, *, border: float = 0.2, minimum: float = 1e-3,
              cover: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """(lo, hi) holding `values` with a `border` (fraction of their extent) on each side, and at least `cover`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else cover
    extent = max(hi - lo, minimum)
    return min(lo - border * extent, cover[0]), max(hi + border * extent, cover[1])


# --------------------------------------------------------------------------------------------------
# the experiment stage: surfaces of trained runs


def run_labels(poisons: Sequence[Any]) -> list[str]:
    """Labels of the runs of a surface request: "clean", then each poison's method (deduplicated as "em-2")."""
    labels = ["clean"]
    for p in poisons:
        label, i = p.method, 2
        while label in labels:
            label, i = f"{p.method}-{i}", i + 1
        labels.append(label)
    return labels


class _StageProgress:
    """Maps the progress of successive evaluations onto one (done, total) count."""

    def __init__(self, total: int, callback: Progress | None) -> None:
        self.total, self.offset, self.callback = total, 0, callback

    def part(self, units: int) -> Progress:
        offset = self.offset
        self.offset += units

        def report(done: int, _total: int) -> None:
            if self.callback is not None:
                self.callback(min(offset + done, self.total), self.total)

        return report


def compute_surfaces(net: nn.Module, runs: Mapping[str, Any], splits: Any, spec: Any, *,
                     device: torch.device | str = "cpu", progress: Progress | None = None) -> SurfaceSet:
    """The surfaces a `SurfaceSpec` asks for, from trained runs (`TrainResult` by label, "clean" first).

    Kinds and planes:
      * "pca", plane "shared": the top two principal components of all trajectories pooled, taken around the
        clean final model (not centred, so the plane passes through it); one surface "shared" with every
        run's path projected on it. Paths of different runs then share axes and can be drawn on one contour.
      * "pca", plane "own": each run in the PCA plane of its own trajectory around its own final model.
      * "random": around each run's final model, filter-normalised random directions from the same seed (the
        same Gaussian draws, scaled to each model), the second orthogonalised; each run's own path projected.
      * "interp": the line clean (0) -> first poisoned run (1) over parameters and BatchNorm statistics; in
        2D the plane through clean, the first poisoned run and a third model (a second poisoned run, else the
        shared initialisation, label "init"). Without a poisoned run the 1D line goes init (0) -> clean (1).
        Every run's path is projected.

    Args:
        net: a model of the runs' architecture (supplies structure only; never modified).
        runs: `TrainResult` by label; "clean" must be present.
        splits: the data `Splits`; the evaluation set is `spec.split`, subset `spec.n_eval` with `spec.seed`.
        spec: the `SurfaceSpec`.
        device: where to evaluate.
        progress: `progress(done, total)` over all grid and path evaluations, in point-batches.
    """
    from landscape import directions as D

    images = splits.test if spec.split == "test" else splits.train
    eval_set = eval_subset(images, spec.n_eval, spec.seed)
    params = D.parameter_names(net)
    states_names = params + D.buffer_names(net)
    traj = {label: [D.float_state(s) for s in run.checkpoints] for label, run in runs.items()}
    epochs = {label: list(run.checkpoint_epochs) for label, run in runs.items()}
    finals = {label: t[-1] for label, t in traj.items()}
    labels = list(runs)
    jobs: list[tuple[str, str, Plane, list[str]]] = []  # (surface label, centre label, plane, path labels)

    def line(plane: Plane) -> Plane:
        return Plane(plane.center, plane.d1, None, plane.kind, plane.info, plane.anchors) if spec.dims == 1 else plane

    if spec.kind == "pca":
        if spec.plane == "shared":
            plane = D.pca_plane([traj[k] for k in labels], finals["clean"], params)
            plane.info["trajectories"] = labels
            jobs.append(("shared", "clean", line(plane), labels))
        else:
            for label in labels:
                jobs.append((label, label, line(D.pca_plane([traj[label]], finals[label], params)), [label]))
    elif spec.kind == "random":
        for label in labels:
            plane = D.random_plane(finals[label], params, torch.Generator().manual_seed(spec.seed), dims=spec.dims,
                                   norm=spec.norm, bias_bn=spec.bias_bn, seed=spec.seed)
            plane.anchors = {label: (0.0, 0.0)}
            jobs.append((label, label, plane, [label]))
    elif spec.kind == "interp":
        if len(labels) == 1:
            if spec.dims == 2:
                raise SpecError("an 'interp' plane needs a poisoned run (give a poison spec), or use dims=1 for "
                                "the line from the initialisation to the clean model")
            plane = D.line_between(traj["clean"][0], finals["clean"], states_names)
            plane.anchors = {"init": (0.0, 0.0), "clean": (1.0, 0.0)}
            jobs.append(("interp", "init", plane, labels))
        elif spec.dims == 1:
            plane = D.line_between(finals["clean"], finals[labels[1]], states_names)
            plane.anchors = {"clean": (0.0, 0.0), labels[1]: (1.0, 0.0)}
            jobs.append(("interp", "clean", plane, labels))
        else:
            third, third_state = (labels[2], finals[labels[2]]) if len(labels) > 2 else ("init", traj["clean"][0])
            plane = D.plane_through(finals["clean"], finals[labels[1]], third_state, states_names)
            plane.anchors = {"clean": plane.anchors["a"], labels[1]: plane.anchors["b"], third: plane.anchors["c"]}
            jobs.append(("interp", "clean", plane, labels))
    else:
        raise SpecError(f"SurfaceSpec.kind = {spec.kind!r} is not valid; choose pca, random or interp")

    axes = []
    for _, _, plane, path_labels in jobs:
        axes.append(_axes(spec, plane, [traj[k] for k in path_labels]))
    batches = math.ceil(len(eval_set) / spec.batch_size)
    units = sum(len(a) * len(b) + 2 * sum(len(traj[k]) for k in paths)
                for (a, b), (_, _, _, paths) in zip(axes, jobs, strict=True)) * batches
    tracker = _StageProgress(units, progress)
    common = {"batch_size": spec.batch_size, "device": device}
    surfaces: dict[str, Surface] = {}
    started = time.perf_counter()
    for (alpha, beta), (label, centre, plane, path_labels) in zip(axes, jobs, strict=True):
        surf = slice_plane(net, plane, eval_set, alpha, beta if spec.dims == 2 else None,
                           progress=tracker.part(len(alpha) * len(beta) * batches), **common)
        surf.center = centre
        for k in path_labels:
            surf.paths[k] = project_path(net, plane, traj[k], epochs[k], eval_set,
                                         progress=tracker.part(2 * len(traj[k]) * batches), **common)
        if spec.kind == "pca":  # the centre, and every run's final model where it projects
            surf.anchors = {centre: (0.0, 0.0)}
            for k in path_labels:
                surf.anchors.setdefault(k, (float(surf.paths[k].alpha[-1]), float(surf.paths[k].beta[-1])))
        surfaces[label] = surf
    info = {"kind": spec.kind, "plane": spec.plane if spec.kind == "pca" else None, "labels": labels,
            "split": spec.split, "n_eval": len(eval_set), "seconds": time.perf_counter() - started,
            "test_acc": {k: float(r.history["test_acc"][-1]) for k, r in runs.items() if len(r.history["test_acc"])}}
    return SurfaceSet(surfaces, info)


def _axes(spec: Any, plane: Plane, paths: Sequence[Sequence[State]]) -> tuple[np.ndarray, np.ndarray]:
    """Grid coordinates of a request: the spec's ranges, else automatic ones for its kind."""
    coords = np.concatenate([project(p, plane.center, plane.directions)[0] for p in paths]) if paths else None
    if plane.kind == "pca":  # the paths and the centre, with a 20% border
        auto_a = fit_range(np.append(coords[:, 0], 0.0))
        auto_b = fit_range(np.append(coords[:, 1], 0.0)) if plane.d2 is not None else (0.0, 0.0)
    elif plane.kind == "interp":  # Li et al.'s [-0.5, 1.5] line, widened to hold every anchor
        xs = [v[0] for v in plane.anchors.values()]
        ys = [v[1] for v in plane.anchors.values()]
        auto_a = fit_range(xs, border=0.25, cover=(-0.5, 1.5))
        auto_b = fit_range(ys, border=0.25, cover=(-0.5, 0.5))
    else:
        auto_a = auto_b = (-1.0, 1.0)
    a_lo, a_hi = spec.alpha_range or auto_a
    alpha = np.linspace(a_lo, a_hi, spec.resolution)
    if spec.dims == 1:
        return alpha, np.zeros(1)
    b_lo, b_hi = spec.beta_range or auto_b
    return alpha, np.linspace(b_lo, b_hi, spec.resolution)


__all__ = [
    "DEFAULT_MEMORY_CAP_MB", "CostEstimate", "GridPoints", "PointStats", "ProjectedPath", "SequentialPlan",
    "StatePoints", "Surface", "SurfaceSet", "check_grid", "compute_surfaces", "estimate_cost", "eval_subset",
    "evaluate_points", "evaluate_states", "fit_range", "project_path", "run_labels", "slice_1d", "slice_2d",
    "slice_plane",
]
