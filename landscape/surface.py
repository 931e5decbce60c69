"""Loss and accuracy on lines and planes in weight space, many grid points per pass over the data.

`slice_1d` / `slice_2d` evaluate L(c + a d1 (+ b d2)) and the accuracy on a grid, `project_path` places
a training trajectory on the plane (coordinates, off-plane residual, the checkpoint's real loss beside
the surface value at its projection), and `estimate_cost` says what a grid will cost before it runs.

How points are evaluated: on a private eval-mode copy of the model (BatchNorm uses its running statistics;
the caller's model is never touched). "batched" (default): data batches outer, chunks of grid points inner;
a chunk's varying entries are stacked (G, ...) and `landscape.copies.Copies` runs the G networks as one (the
layers no point moves once per data batch; the chunk size from a memory cap, `memory_cap_mb`). "sequential":
the plain reference, one point at a time; the two agree to float32 rounding (tests hold them to 1e-5).
Values are kept raw: a NaN or infinite loss stays in the arrays and `Surface.finite` marks it. Per-batch
means are kept (`batch_loss`, `batch_acc`) and the standard errors come from the per-image spread.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from landscape.config import MAX_GRID_POINTS
from landscape.copies import Copies
from landscape.data import ImageSet
from landscape.directions import Plane, State, check_direction, float_state, project
from landscape.errors import ShapeError, SpecError
from landscape.points import GridPoints, Points, StatePoints
from landscape.surface_results import ProjectedPath, Surface

Evaluator = Literal["batched", "sequential"]
# surface backends -> `Copies` backends ("plan": the fastest layout the model allows)
_BACKENDS = {"plan": "auto", "vmap": "vmap", "loop": "loop"}
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
    """

    points: int
    images: int
    forward_passes: int
    gflop: float
    chunk: int
    batches: int
    seconds: float | None

    def describe(self) -> str:
        """One line for a UI or the CLI."""
        secs = f", about {self.seconds:.1f} s here" if self.seconds is not None else ""
        return (f"{self.points:,} grid points x {self.images:,} images = {self.forward_passes:,} forward passes "
                f"({self.gflop:,.1f} GFLOP){secs}")


def _eval_copy(model: nn.Module, device: torch.device) -> nn.Module:
    """A private eval-mode copy of `model` on `device` (the caller's module, mode and weights stay as they are)."""
    twin = copy.deepcopy(model)
    for p in twin.parameters():
        p.requires_grad_(False)
    return twin.to(device).eval()


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


def _per_sample(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image loss (G, N) and correctness (G, N) from logits (G, N, K)."""
    g, n, k = logits.shape
    loss = F.cross_entropy(logits.reshape(g * n, k).float(), y.repeat(g), reduction="none").reshape(g, n)
    return loss, logits.argmax(-1) == y.unsqueeze(0)


def evaluate_points(model: nn.Module, points: Points, data: Data, *, batch_size: int = 128,
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
        backend: "plan" (the fastest layout of `landscape.copies.Copies` the model allows), "vmap", or
            "loop" (one point at a time inside a chunk); `info["backend"]` names the layout that ran.
    """
    if evaluator not in ("batched", "sequential"):
        raise SpecError(f"evaluator={evaluator!r} is not valid; choose 'batched' or 'sequential'")
    if backend not in ("plan", "vmap", "loop"):
        raise SpecError(f"backend={backend!r} is not valid; choose 'plan', 'vmap' or 'loop'")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise SpecError(f"batch_size={batch_size!r} must be a positive integer")
    if chunk is not None and (not isinstance(chunk, int) or chunk < 1):
        raise SpecError(f"chunk={chunk!r} must be a positive integer or None (automatic)")
    device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
    x, y = _as_xy(data)
    x, y = x.to(device), y.to(device)
    n_img = len(y)
    starts = list(range(0, n_img, batch_size))
    twin = _eval_copy(model, device)
    pts = points.to(device)
    fixed = {**{k: v for k, v in twin.state_dict().items() if k not in pts.varying}, **pts.fixed}
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
            one = Copies(twin, pts.varying, fixed=fixed, backend="loop")  # the whole model, one point at a time
            for i in range(p):
                idx = torch.tensor([i])
                for kb, s in enumerate(starts):
                    record(kb, idx, one.run(pts.stack(idx), x[s:s + batch_size]), y[s:s + batch_size])
                if progress is not None:
                    progress((i + 1) * k_b, total)
            info["chunk"] = 1
        else:
            varying_numel = pts.varying_numel()
            if chunk is None:
                act, _ = _activation_bytes(twin, x[:1])
                cap = memory_cap_mb if memory_cap_mb is not None else DEFAULT_MEMORY_CAP_MB.get(device.type, 512)
                chunk = _auto_chunk(p, min(batch_size, n_img), act, varying_numel, cap)
            copies = Copies(twin, pts.varying, fixed=fixed, backend=_BACKENDS[backend])
            chunks = [torch.arange(s, min(s + chunk, p)) for s in range(0, p, chunk)]
            done = 0
            for kb, s in enumerate(starts):
                xb, yb = x[s:s + batch_size], y[s:s + batch_size]
                frozen = copies.prefix(xb)  # the layers no point moves run once per data batch
                for idx in chunks:
                    record(kb, idx, copies(pts.stack(idx), frozen), yb)
                    done += len(idx)
                    if progress is not None:
                        progress(done, total)
            info.update(chunk=int(chunk), backend=copies.layout)
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
    device = torch.device(device) if device is not None else next(model.parameters(), torch.empty(0)).device
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
    if calibrate:
        g = min(chunk, points)
        ones = {n: torch.ones_like(state[n]) for n in names}
        probe = GridPoints(state, [ones], np.zeros((g, 1)))
        sub = (x[:b], y[:b])
        evaluate_points(twin, probe, sub, batch_size=b, chunk=g, device=device, backend=backend)
        stats = evaluate_points(twin, probe, sub, batch_size=b, chunk=g, device=device, backend=backend)
        per_point_image = stats.info["seconds"] / (g * b)
        seconds = per_point_image * points * n_img
    return CostEstimate(points, n_img, points * n_img, points * n_img * flop / 1e9, int(chunk), batches, seconds)


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


__all__ = [
    "DEFAULT_MEMORY_CAP_MB", "CostEstimate", "GridPoints", "PointStats", "StatePoints", "check_grid",
    "estimate_cost", "eval_subset",
    "evaluate_points", "evaluate_states", "project_path", "slice_1d", "slice_2d",
    "slice_plane",
]
