"""Curvature of the loss, layer by layer: Hessian blocks through exact Hessian-vector products.

For each weight tensor theta_l of the SAL layers (every conv/linear weight, `landscape.models.weight_layers`) the
block H_ll = d^2 L / d theta_l^2 of the Hessian of the mean loss L over a fixed subset of images, every other
parameter held fixed and the model in eval mode (BatchNorm uses its running statistics); with `whole_model`, the
Hessian over all floating-point parameters too, the scope of PyHessian (Yao, Gholami, Keutzer & Mahoney,
"PyHessian: Neural Networks Through the Lens of the Hessian", IEEE BigData 2020).

Products H v come from double backward. The gradient of L w.r.t. every parameter is built once with
`create_graph=True` (one forward and one backward serve every block), and H_ll v = d(g_l . v)/d theta_l is one
`torch.autograd.grad` call on that graph, which only walks the part of the graph above layer l. Several vectors of
one block (the lock-step Lanczos runs, the probes) go through one call with `is_grads_batched=True` (vmap over
the backward), or one at a time where vmap cannot run the model's backward.

Per block, d being its dimension:

* Eigenvalues by Lanczos with full reorthogonalisation (twice, "twice is enough"; Golub & Van Loan, Matrix
  Computations, 10.1) from a normalised Rademacher start vector. The top-k Ritz values theta_i of the tridiagonal
  T_m estimate the top-k eigenvalues; the residual of a Ritz pair is ||H y_i - theta_i y_i|| = beta_m |s_mi|
  (s the eigenvectors of T_m), and a run stops when the top k have beta_m |s_mi| <= tol |theta_i| and `min_steps`
  are done, or at `max_steps`, or at d. An eigenvalue lies within the residual of its Ritz value (in practice
  within residual^2 / gap). PyHessian uses power iteration with deflation instead: one run per eigenvalue. The
  two name different things where the spectrum's negative end is the larger in magnitude (early in training, or
  off a minimum): power iteration converges to the eigenvalue of largest |lambda|, Lanczos's top Ritz value to the
  largest algebraic one, which is what lambda_max here means (sharpness: the steepest upward curvature).
* The spectral density by stochastic Lanczos quadrature (Lin, Saad & Yang, SIAM Review 2016; Ghorbani, Krishnan &
  Xiao, ICML 2019; PyHessian's `density`): a run's nodes are its Ritz values, its weights the squared first
  components of T's eigenvectors; the density averages `esd_runs` runs, integrates to 1, and its p-th moment is
  q_1^T H^p q_1 exactly for p <= 2m - 1 (Gauss quadrature), so d times its mean is a Hutchinson sample of tr(H).
* The trace by Hutchinson's estimator (Hutchinson 1989) with Rademacher probes z, deflated by the first run's
  Krylov basis Q (m orthonormal vectors), the variance reduction of Hutch++ (Meyer, Musco, Musco & Woodruff, SOSA
  2021) and of deflated Hutchinson (Gambhir, Stathopoulos & Orginos, SIAM J. Sci. Comput. 2017):

      tr(H) = tr(Q^T H Q) + tr(P H P),   P = I - Q Q^T.

  The first term is exact (the sum of the q_j^T H q_j the run computed); the second is the mean of (Pz)^T H (Pz)
  over `probes` probes drawn independently of Q, so the estimate is unbiased, with standard error
  std / sqrt(probes). The top of a network Hessian's spectrum holds most of its Frobenius norm, so the deflated
  estimate has a far smaller error than plain Hutchinson with as many probes (`bench/curvature_speed.py`).

The caller's model is never touched: a private eval-mode copy is differentiated through
`torch.func.functional_call`. Random draws come from `torch.Generator`s seeded by (spec.seed, block name) on the
CPU and are moved to the device, so a block gets the same start vectors and probes at every epoch (common random
numbers along a trajectory) and on every device.
"""

from __future__ import annotations

import copy
import logging
import math
import time
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from landscape.config import CurvatureSpec
from landscape.device import reproducible_threads
from landscape.display import span
from landscape.errors import LandscapeError, ShapeError
from landscape.models import weight_layers
from landscape.sal import CROSS_ENTROPY, SALTrace, SampleLoss

log = logging.getLogger(__name__)

BlockProgress = Callable[[int, int], None]
WHOLE = "whole model"  # label of the block of all parameters in figures and tables
_BLOCK_FIELDS = ("eigenvalues", "residuals", "esd_nodes", "esd_weights")


# ----------------------------------------------------------------------------------------------------------
# results


@dataclass
class BlockCurvature:
    """Curvature of one Hessian block: a layer's weight tensor, or the whole model.

    Attributes:
        size: dimension d of the block (number of parameters).
        eigenvalues: (k,) the top-k Ritz values, descending (k = min(top_k, d)).
        residuals: (k,) their residual norms ||H y - theta y|| (each eigenvalue is within this of a true one).
        trace: deflated Hutchinson estimate of tr(H).
        trace_se: its standard error (0 when the Krylov basis spans the block).
        trace_krylov: the exact part tr(Q^T H Q) of the trace.
        esd_nodes: (R, m) Ritz values of each Lanczos run (the quadrature nodes of the spectral density).
        esd_weights: (R, m) their weights; every row sums to 1.
        steps: Lanczos steps m of each run.
        converged: whether the top-k Ritz values met the tolerance.
        hvps: Hessian-vector products spent on the block.
        seconds: wall time of the block.
    """

    size: int
    eigenvalues: np.ndarray
    residuals: np.ndarray
    trace: float
    trace_se: float
    trace_krylov: float
    esd_nodes: np.ndarray
    esd_weights: np.ndarray
    steps: int
    converged: bool
    hvps: int
    seconds: float

    @property
    def lambda_max(self) -> float:
        """The largest eigenvalue (the first Ritz value)."""
        return float(self.eigenvalues[0])

    def density(self, *, points: int = 401) -> tuple[np.ndarray, np.ndarray]:
        """The spectral density smoothed with a Gaussian kernel (Ghorbani et al. 2019; PyHessian's `density_generate`).

        Each run's nodes are weighted by their quadrature weights and the runs averaged, as PyHessian does; the width
        is our choice. PyHessian's kernel has variance 1e-5 max(1, span) (its `sigma_squared`: a standard deviation
        of 0.0032 sqrt(span), 0.3% of a span of 1 and 0.01% of a span of 1000), on a grid of 10,000 points from the
        runs' mean smallest to mean largest node, renormalised on that grid; here the standard deviation is 1% of the
        span, normalised exactly, so the spikes of an ESD drawn here are wider than PyHessian's.

        Args:
            points: grid size; the grid spans the nodes with a margin of 5 standard deviations (where the span is 0,
                the standard deviation is a tenth of the nodes' magnitude).

        Returns:
            (grid, density): the density integrates to 1 over the real line (the kernel is normalised).
        """
        nodes, weights = self.esd_nodes.ravel(), self.esd_weights.ravel() / len(self.esd_weights)
        span = float(nodes.max() - nodes.min())
        sigma = 0.01 * span if span > 0 else max(0.1 * abs(float(nodes.max())), 1e-12)
        grid = np.linspace(nodes.min() - 5 * sigma, nodes.max() + 5 * sigma, points).astype(np.float64)
        z = (grid[:, None] - nodes[None, :]) / sigma
        dens = (weights[None, :] * np.exp(-0.5 * z ** 2)).sum(1) / (sigma * math.sqrt(2 * math.pi))
        return grid, dens

    def to_store(self, prefix: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"size": self.size, "trace": self.trace, "trace_se": self.trace_se, "trace_krylov": self.trace_krylov,
                "steps": self.steps, "converged": self.converged, "hvps": self.hvps, "seconds": self.seconds}
        arrays = {f"{prefix}{k}": np.asarray(getattr(self, k), dtype=np.float64) for k in _BLOCK_FIELDS}
        return meta, arrays

    @classmethod
    def from_store(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str) -> BlockCurvature:
        values = {k: np.asarray(arrays[f"{prefix}{k}"], dtype=np.float64) for k in _BLOCK_FIELDS}
        return cls(size=int(meta["size"]), trace=float(meta["trace"]), trace_se=float(meta["trace_se"]),
                   trace_krylov=float(meta["trace_krylov"]), steps=int(meta["steps"]),
                   converged=bool(meta["converged"]), hvps=int(meta["hvps"]), seconds=float(meta["seconds"]),
                   **values)


@dataclass
class Curvature:
    """Curvature of every requested layer (and of the whole model) of one model state.

    Attributes:
        layers: `BlockCurvature` per weight tensor name, in the order measured.
        whole: the block of all parameters, or None.
        info: what was measured on (images, loss, seconds, HVPs, whether vmap batching ran).
    """

    layers: dict[str, BlockCurvature]
    whole: BlockCurvature | None = None
    info: dict[str, Any] = field(default_factory=dict)

    def to_store(self, prefix: str = "") -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        """(metadata, arrays) for `Store.save`; `from_store` inverts it."""
        meta: dict[str, Any] = {"layers": list(self.layers), "blocks": {}, "info": self.info}
        arrays: dict[str, np.ndarray] = {}
        blocks = {**self.layers, **({WHOLE: self.whole} if self.whole is not None else {})}
        for name, block in blocks.items():
            m, a = block.to_store(f"{prefix}{name}/")
            meta["blocks"][name] = m
            arrays.update(a)
        return meta, arrays

    @classmethod
    def from_store(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray], prefix: str = "") -> Curvature:
        def block(name: str) -> BlockCurvature:
            return BlockCurvature.from_store(meta["blocks"][name], arrays, f"{prefix}{name}/")

        whole = block(WHOLE) if WHOLE in meta["blocks"] else None
        return cls({name: block(name) for name in meta["layers"]}, whole, dict(meta["info"]))


@dataclass(repr=False)
class CurvatureTrace:
    """Curvature of every layer at every measured epoch of one run (the counterpart of `SALTrace`).

    Attributes:
        epochs: (T,) the measured epochs.
        states: one `Curvature` per measured epoch.
        spec: the settings used.
    """

    epochs: np.ndarray
    states: list[Curvature]
    spec: CurvatureSpec = field(default_factory=CurvatureSpec)

    def __post_init__(self) -> None:
        if len(self.epochs) != len(self.states):
            raise ShapeError(f"{len(self.epochs)} epochs but {len(self.states)} curvature states")
        odd = next((i for i, s in enumerate(self.states) if list(s.layers) != self.layers), None)
        if odd is not None:
            raise ShapeError(f"every epoch of a CurvatureTrace must measure the same layers: epoch "
                             f"{int(self.epochs[odd])} measures {list(self.states[odd].layers)}, epoch "
                             f"{int(self.epochs[0])} {self.layers}")

    @property
    def layers(self) -> list[str]:
        return list(self.states[0].layers) if self.states else []

    def __repr__(self) -> str:
        whole = span(self.whole())
        return (f"CurvatureTrace({len(self.layers)} layers x {len(self.epochs)} epochs, λ_max {span(self.lambda_max)}, "
                f"trace {span(self.trace)}" + (f", whole model λ_max {whole})" if whole != "n/a" else ")"))

    def _table(self, get: Callable[[BlockCurvature], float]) -> np.ndarray:
        return np.array([[get(s.layers[n]) for n in self.layers] for s in self.states], dtype=np.float64)

    @property
    def lambda_max(self) -> np.ndarray:
        """(T, L) largest eigenvalue of each layer's block."""
        return self._table(lambda b: b.lambda_max)

    @property
    def trace(self) -> np.ndarray:
        """(T, L) trace estimate of each layer's block."""
        return self._table(lambda b: b.trace)

    @property
    def trace_se(self) -> np.ndarray:
        """(T, L) standard error of the trace estimates."""
        return self._table(lambda b: b.trace_se)

    def whole(self, what: str = "lambda_max") -> np.ndarray:
        """(T,) a whole-model value ("lambda_max", "trace" or "trace_se"); NaN where it was not measured."""
        return np.array([getattr(s.whole, what) if s.whole is not None else np.nan for s in self.states])

    def to_store(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta: dict[str, Any] = {"epochs": [int(e) for e in self.epochs], "spec": self.spec.to_dict(), "states": []}
        arrays: dict[str, np.ndarray] = {}
        for epoch, state in zip(self.epochs, self.states, strict=True):
            m, a = state.to_store(prefix=f"epoch{int(epoch)}/")
            meta["states"].append(m)
            arrays.update(a)
        return meta, arrays

    @classmethod
    def from_store(cls, meta: Mapping[str, Any], arrays: Mapping[str, np.ndarray]) -> CurvatureTrace:
        epochs = [int(e) for e in meta["epochs"]]
        states = [Curvature.from_store(m, arrays, prefix=f"epoch{e}/") for e, m in zip(epochs, meta["states"],
                                                                                        strict=True)]
        return cls(np.asarray(epochs, dtype=np.int64), states, CurvatureSpec.from_dict(dict(meta["spec"])))


# ----------------------------------------------------------------------------------------------------------
# Hessian-vector products


class HessianBlocks:
    """The loss of `model` on (x, y) with its gradient graph built once; exact Hessian-vector products of any block.

    A block is a list of parameter names; `hvp(names, V)` multiplies the Hessian restricted to those parameters
    (all others fixed) with each row of V (B, d), d the block's dimension, the entries flattened in the order
    of `names`. The model is copied, put in eval mode and called through `functional_call`.

    Args:
        model: the network (never modified).
        x: inputs (N, ...) on `device`.
        y: targets (N, ...) on `device`.
        loss: the per-sample loss; L is its mean (default cross-entropy).
        device: where to compute.
        batched: try vmap (`is_grads_batched`) for several vectors at once; a block whose backward vmap cannot run
            (recorded in `unbatched`) is computed one vector at a time from then on.
    """

    def __init__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, loss: SampleLoss = CROSS_ENTROPY,
                 device: torch.device | str = "cpu", batched: bool = True) -> None:
        twin = copy.deepcopy(model).to(device).eval()
        self.params = {n: p.detach().clone().requires_grad_(True) for n, p in twin.named_parameters()
                       if p.is_floating_point()}
        buffers = dict(twin.named_buffers())
        with torch.enable_grad():
            out = functional_call(twin, (self.params, buffers), (x,))
            self.loss = loss.sample_loss(out, y).mean()
            grads = torch.autograd.grad(self.loss, list(self.params.values()), create_graph=True, allow_unused=True)
        self.grads = {n: g for n, g in zip(self.params, grads, strict=True)}
        self.batched = batched
        self.unbatched: set[tuple[str, ...]] = set()  # blocks whose backward has no vmap rule
        self.hvps = 0

    def size(self, names: Sequence[str]) -> int:
        """Dimension of the block `names`."""
        return sum(self.params[n].numel() for n in names)

    def check(self, names: Sequence[str]) -> None:
        """Raise `ShapeError` naming the valid parameters if a name is not a parameter of the model."""
        missing = [n for n in names if n not in self.params]
        if missing:
            raise ShapeError(f"the model has no parameter(s) {missing}; valid names: {list(self.params)}")

    def hvp(self, names: Sequence[str], vectors: torch.Tensor) -> torch.Tensor:
        """H_SS v for every row v of `vectors` (B, d): the Hessian block of the parameters `names`, (B, d)."""
        b = vectors.shape[0]
        self.hvps += b
        parts = vectors.split([self.params[n].numel() for n in names], dim=1)
        shaped = {n: v.reshape(b, *self.params[n].shape) for n, v in zip(names, parts, strict=True)}
        # a gradient without a graph (a parameter the loss does not use, or is linear in) has a zero Hessian row
        active = [n for n in names if self.grads[n] is not None and self.grads[n].requires_grad]
        outs, ins = [self.grads[n] for n in active], [self.params[n] for n in active]
        result: Sequence[torch.Tensor | None] | None = None
        if active and self.batched and b > 1 and tuple(names) not in self.unbatched:
            try:
                result = torch.autograd.grad(outs, ins, grad_outputs=[shaped[n] for n in active], retain_graph=True,
                                             is_grads_batched=True, allow_unused=True)
            except RuntimeError as why:  # a backward op without a vmap rule: this block loops from now on
                log.debug("batched Hessian-vector products unavailable for %s (%s); looping", names[:3], why)
                self.unbatched.add(tuple(names))
        if active and result is None:
            rows = [torch.autograd.grad(outs, ins, grad_outputs=[shaped[n][i] for n in active], retain_graph=True,
                                        allow_unused=True) for i in range(b)]
            result = [None if rows[0][j] is None else torch.stack([r[j] for r in rows]) for j in range(len(ins))]
        products = dict(zip(active, result or [], strict=True))
        flat = [products[n].reshape(b, -1) if products.get(n) is not None else torch.zeros_like(v)
                for n, v in zip(names, parts, strict=True)]
        return torch.cat(flat, dim=1).detach()


# ----------------------------------------------------------------------------------------------------------
# Lanczos, quadrature, deflated Hutchinson


def _rademacher(generator: torch.Generator, shape: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """Entries +-1 with probability 1/2, drawn on the CPU from `generator`, then moved to `device`."""
    return (torch.randint(0, 2, shape, generator=generator, dtype=torch.float32) * 2 - 1).to(device)


def _tridiagonal(alphas: Sequence[float], betas: Sequence[float]) -> np.ndarray:
    t = np.diag(np.asarray(alphas, dtype=np.float64))
    if len(betas):
        off = np.asarray(betas, dtype=np.float64)
        t += np.diag(off, 1) + np.diag(off, -1)
    return t


def block_curvature(matvec: Callable[[torch.Tensor], torch.Tensor], size: int, spec: CurvatureSpec,
                    generator: torch.Generator, *, device: torch.device | str = "cpu") -> BlockCurvature:
    """Top-k eigenvalues, deflated Hutchinson trace and spectral density of a symmetric operator.

    Args:
        matvec: V (B, size) -> H V (B, size), row by row (e.g. `HessianBlocks.hvp` of one block).
        size: the operator's dimension d.
        spec: steps, tolerance, top_k, runs and probes.
        generator: source of the start vectors (drawn first) and the probes.
        device: where the vectors live.

    Returns:
        The block's `BlockCurvature` (see the module docstring for the algorithms).
    """
    started = time.perf_counter()
    device = torch.device(device)
    runs, d = spec.esd_runs, size
    if d < 1:
        raise ShapeError("a Hessian block needs at least one parameter")
    m_max, m_min, k = min(spec.max_steps, d), min(spec.min_steps, d), min(spec.top_k, d)
    hvps = 0
    q = _rademacher(generator, (runs, d), device) / math.sqrt(d)  # (R, d), unit rows
    basis = torch.empty(m_max, runs, d, device=device)  # the Lanczos vectors, (steps, R, d)
    alphas: list[np.ndarray] = []  # (R,) per step: q_j^T H q_j
    betas: list[np.ndarray] = []  # (R,) per step: the norm of the next residual
    q_prev, beta = None, None
    converged = False
    residuals = np.zeros(k)
    theta = np.zeros(0)
    while True:
        m = len(alphas) + 1  # this step's vector is number m
        basis[m - 1] = q
        w = matvec(q)
        hvps += runs
        alpha = (q * w).sum(1)  # (R,)
        w = w - alpha[:, None] * q
        if q_prev is not None:
            w = w - beta[:, None] * q_prev
        stacked = basis[:m]  # (m, R, d)
        for _ in range(2):  # full reorthogonalisation, twice
            w = w - torch.einsum("jr,jrd->rd", torch.einsum("jrd,rd->jr", stacked, w), stacked)
        beta = w.norm(dim=1)
        alphas.append(alpha.double().cpu().numpy())
        theta, s = np.linalg.eigh(_tridiagonal([a[0] for a in alphas], [b[0] for b in betas]))
        top = np.argsort(theta)[::-1][:k]
        beta0 = float(beta[0])
        residuals = beta0 * np.abs(s[m - 1, top])
        converged = bool(np.all(residuals <= spec.tol * np.abs(theta[top])))
        scale = max(float(np.abs(theta).max()), np.finfo(np.float32).tiny)
        breakdown = bool((beta <= 1e-6 * scale).any())  # an invariant subspace: the Krylov space is complete
        if m >= m_max or breakdown or (converged and m >= m_min):
            break
        betas.append(beta.double().cpu().numpy())
        q_prev, q = q, w / beta[:, None]
    eigenvalues = theta[np.argsort(theta)[::-1][:k]]
    # stochastic Lanczos quadrature: per run, nodes = Ritz values, weights = squared first eigenvector components
    nodes, weights = np.zeros((runs, m)), np.zeros((runs, m))
    for r in range(runs):
        t_r, s_r = np.linalg.eigh(_tridiagonal([a[r] for a in alphas], [b[r] for b in betas]))
        nodes[r], weights[r] = t_r, s_r[0] ** 2
    # deflated Hutchinson: tr(Q^T H Q) exactly, plus probes of the complement
    krylov = float(sum(a[0] for a in alphas))
    basis0 = basis[:m, 0]  # (m, d): the first run's Krylov basis
    z = _rademacher(generator, (spec.probes, d), device)
    for _ in range(2):
        z = z - (z @ basis0.T) @ basis0
    samples = (z * matvec(z)).sum(1).double().cpu().numpy()
    hvps += spec.probes
    rest, se = float(samples.mean()), float(samples.std(ddof=1) / math.sqrt(len(samples)))
    return BlockCurvature(size=d, eigenvalues=eigenvalues, residuals=residuals, trace=krylov + rest, trace_se=se,
                          trace_krylov=krylov, esd_nodes=nodes, esd_weights=weights, steps=m, converged=converged,
                          hvps=hvps, seconds=time.perf_counter() - started)


def block_generator(seed: int, name: str) -> torch.Generator:
    """The generator of one block's draws: seeded by (seed, name), so it does not depend on which blocks run."""
    state = np.random.SeedSequence([int(seed), zlib.crc32(name.encode())]).generate_state(1)[0]
    return torch.Generator().manual_seed(int(state))


def curvature_subset(n: int, spec: CurvatureSpec) -> torch.Tensor | None:
    """Sorted indices of the fixed, seeded subset of an n-image split (None = all of it)."""
    if spec.n_data is None or spec.n_data >= n:
        return None
    state = np.random.SeedSequence([int(spec.seed), n]).generate_state(1)[0]
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(int(state)))
    return perm[: spec.n_data].sort().values


# ----------------------------------------------------------------------------------------------------------
# models and runs


def model_curvature(model: nn.Module, x: torch.Tensor, y: torch.Tensor, spec: CurvatureSpec, *,
                    layers: Sequence[str] | None = None, loss: SampleLoss | None = None,
                    device: torch.device | str | None = None, progress: BlockProgress | None = None) -> Curvature:
    """Curvature of each layer's Hessian block (and of the whole model) on `spec.n_data` images of (x, y).

    Args:
        model: the network; never modified (a private eval-mode copy is differentiated).
        x: the images of the split the spec asks for (the caller picks the split), (N, C, H, W).
        y: their labels (or the targets of `loss`), (N, ...).
        spec: the settings; the subset is `curvature_subset(N, spec)`.
        layers: weight tensor names (default: the SAL layers, `weight_layers(model)`); any parameter name works.
        loss: the per-sample loss whose mean is differentiated (default cross-entropy on labels).
        device: where to compute (default: the model's device); CPU work runs on `CPU_THREADS` threads, so the
            numbers do not depend on the machine's core count.
        progress: `progress(blocks_done, blocks_total)`.
    """
    started = time.perf_counter()
    if device is None:
        device = next((p.device for p in model.parameters()), torch.device("cpu"))
    device = torch.device(device)
    names = list(layers) if layers is not None else weight_layers(model)
    if not names:
        raise LandscapeError("the model has no conv/linear weight layer to measure; pass layers=[...]")
    idx = curvature_subset(len(y), spec)
    xs, ys = (x, y) if idx is None else (x[idx.to(x.device)], y[idx.to(y.device)])
    total = len(names) + int(spec.whole_model)
    with reproducible_threads(device):
        blocks = HessianBlocks(model, xs.to(device), ys.to(device), loss=loss or CROSS_ENTROPY, device=device)
        blocks.check(names)
        out: dict[str, BlockCurvature] = {}
        for i, name in enumerate(names):
            out[name] = block_curvature(lambda v, n=name: blocks.hvp([n], v), blocks.size([name]), spec,
                                        block_generator(spec.seed, name), device=device)
            if progress is not None:
                progress(i + 1, total)
        whole = None
        if spec.whole_model:
            every = list(blocks.params)
            whole = block_curvature(lambda v: blocks.hvp(every, v), blocks.size(every), spec,
                                    block_generator(spec.seed, WHOLE), device=device)
            if progress is not None:
                progress(total, total)
    info = {"images": len(ys), "loss": float(blocks.loss.detach()), "seconds": time.perf_counter() - started,
            "hvps": blocks.hvps, "device": str(device),
            "unbatched": sorted(n[0] if len(n) == 1 else WHOLE for n in blocks.unbatched)}
    return Curvature(out, whole, info)


def measured_epochs(epochs: Sequence[int], spec: CurvatureSpec, total: int | None = None) -> list[int]:
    """The epochs (>= 1) of `epochs` that a trace measures: every `spec.every`-th, and the last (`total`)."""
    last = total if total is not None else max(epochs, default=0)
    return [int(e) for e in epochs if e >= 1 and (e % spec.every == 0 or e == last)]


def curvature_trace(model: nn.Module, states: Sequence[Mapping[str, torch.Tensor]], epochs: Sequence[int],
                    x: torch.Tensor, y: torch.Tensor, spec: CurvatureSpec, *, total_epochs: int | None = None,
                    layers: Sequence[str] | None = None, device: torch.device | str | None = None,
                    progress: BlockProgress | None = None) -> CurvatureTrace:
    """Curvature of every layer at the measured epochs of a run, from its stored checkpoints.

    Args:
        model: a model of the run's architecture (supplies structure only; never modified).
        states: one state dict per checkpoint (e.g. `TrainResult.checkpoints`).
        epochs: the epoch of each checkpoint (`TrainResult.checkpoint_epochs`; 0 = initialisation, not measured).
        x: the images of the split (see `model_curvature`).
        y: their labels.
        spec: the settings; `spec.every` picks the epochs (`measured_epochs`).
        total_epochs: the run's planned epochs (its last is always measured); default: the last checkpoint.
        layers: as in `model_curvature`.
        device: as in `model_curvature`.
        progress: `progress(blocks_done, blocks_total)` over every block of every measured epoch.
    """
    if len(states) != len(epochs):
        raise ShapeError(f"{len(states)} checkpoints but {len(epochs)} epochs")
    chosen = measured_epochs(epochs, spec, total_epochs)
    net = copy.deepcopy(model)
    results = []
    for i, epoch in enumerate(chosen):
        net.load_state_dict(states[list(epochs).index(epoch)])

        def blocks(done: int, total: int, i: int = i) -> None:
            if progress is not None:
                progress(i * total + done, len(chosen) * total)

        results.append(model_curvature(net, x, y, spec, layers=layers, device=device, progress=blocks))
    return CurvatureTrace(np.asarray(chosen, dtype=np.int64), results, spec)


def average_ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n of the values of `x` (n,), tied values sharing the mean of their ranks (SciPy's `rankdata`)."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    _, tie, count = np.unique(x, return_inverse=True, return_counts=True)  # tie: each value's group
    return (np.bincount(tie, weights=ranks) / count)[tie]


def layer_rank_agreement(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Spearman's rank correlation across layers, epoch by epoch, of two (T, L) tables (e.g. SAL and lambda_max).

    Spearman's rho is Pearson's correlation of the average ranks (`average_ranks`), as `scipy.stats.spearmanr`
    computes it; NumPy alone, so the app's Curvature page does not wait for SciPy's import (~0.5 s).

    Returns (T,); NaN at an epoch where either row is constant (no ranking to compare).
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 2:
        raise ShapeError(f"rank agreement needs two (epochs, layers) tables of one shape, got {a.shape} and {b.shape}")
    return np.array([np.nan if np.ptp(x) == 0 or np.ptp(y) == 0 else
                     float(np.corrcoef(average_ranks(x), average_ranks(y))[0, 1]) for x, y in zip(a, b, strict=True)])


def sal_agreement(sal: SALTrace, curvature: CurvatureTrace, what: str = "lambda_max") -> tuple[np.ndarray, np.ndarray]:
    """Per-epoch Spearman agreement across layers between SAL and a curvature table ("lambda_max" or "trace").

    Compares the epochs both measured and the layers both measured (in SAL's order).

    Returns:
        (epochs (T,), rho (T,)); rho is NaN at an epoch where either row is constant.
    """
    if what not in ("lambda_max", "trace"):
        raise LandscapeError(f"sal_agreement compares SAL with 'lambda_max' or 'trace', not {what!r}")
    layers = [n for n in sal.layers if n in curvature.layers]
    epochs = [int(e) for e in curvature.epochs if e in set(int(x) for x in sal.epochs)]
    if not layers or not epochs:
        return np.zeros(0, dtype=np.int64), np.zeros(0)
    s_rows = [list(int(x) for x in sal.epochs).index(e) for e in epochs]
    c_rows = [list(int(x) for x in curvature.epochs).index(e) for e in epochs]
    s_cols = [list(sal.layers).index(n) for n in layers]
    c_cols = [curvature.layers.index(n) for n in layers]
    table = getattr(curvature, what)
    return (np.asarray(epochs, dtype=np.int64),
            layer_rank_agreement(sal.sal[np.ix_(s_rows, s_cols)], table[np.ix_(c_rows, c_cols)]))


__all__ = [
    "WHOLE", "BlockCurvature", "Curvature", "CurvatureTrace", "HessianBlocks", "average_ranks", "block_curvature",
    "block_generator", "curvature_subset", "curvature_trace", "layer_rank_agreement", "measured_epochs",
    "model_curvature", "sal_agreement",
]
