"""Directions in weight space: random filter-normalised, orthogonalised, PCA of trajectories, model lines and planes.

A direction is a dict `name -> tensor` over a subset of a model's state-dict entries (normally its
parameters), each tensor the shape of the matching entry; entries it does not name stay fixed. A
`Plane` bundles a centre state with one (a line) or two directions, plus what was measured while
building them (cosine before orthogonalisation, explained variance, the coordinates of named models).
Everything here is pure tensor arithmetic on CPU or device copies: no model is called or mutated, and
randomness comes only from the `torch.Generator` passed in (never the global RNG).

After Li et al., "Visualizing the Loss Landscape of Neural Nets" (NeurIPS 2018, arXiv:1712.09913).
Choices that differ from their code are stated where they are made (PCA without centring by default;
the second random direction orthogonalised filter by filter, so it is exactly orthogonal and still
exactly filter-normalised).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from landscape.errors import LandscapeError, ShapeError, SpecError

Direction = dict[str, torch.Tensor]
State = Mapping[str, torch.Tensor]
Norm = Literal["filter", "layer", "none"]
BiasBN = Literal["zero", "random", "weight"]

NORMS: tuple[str, ...] = ("filter", "layer", "none")
BIAS_BN: tuple[str, ...] = ("zero", "random", "weight")
_TINY = 1e-12
_BLOCK = 1 << 18  # columns per float64 block in the PCA Gram matrix


# --------------------------------------------------------------------------------------------------
# names, states and small vector algebra over dicts of tensors


def parameter_names(model: nn.Module) -> list[str]:
    """Names of the model's floating-point parameters, in definition order (the entries directions move)."""
    return [name for name, p in model.named_parameters() if p.is_floating_point()]


def buffer_names(model: nn.Module) -> list[str]:
    """Names of the floating-point buffers (e.g. BatchNorm running statistics)."""
    return [name for name, b in model.named_buffers() if b.is_floating_point()]


def float_state(state: State) -> dict[str, torch.Tensor]:
    """A detached float32 copy of the floating entries of a state dict (checkpoints may be float16)."""
    return {k: v.detach().to(torch.float32).clone() if v.is_floating_point() else v.detach().clone()
            for k, v in state.items()}


def subset(state: State, names: Sequence[str]) -> dict[str, torch.Tensor]:
    """The entries `names` of `state`; a missing name raises `ShapeError` naming it."""
    missing = [n for n in names if n not in state]
    if missing:
        raise ShapeError(f"state has no entries {missing[:5]}{'...' if len(missing) > 5 else ''}; "
                         f"it has {list(state)[:8]}...")
    return {n: state[n] for n in names}


def difference(a: State, b: State, names: Sequence[str]) -> Direction:
    """`a - b` over `names` (float32)."""
    return {n: a[n].to(torch.float32) - b[n].to(torch.float32) for n in names}


def dot(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Inner product of two directions over the names they share (float64 accumulation)."""
    return float(sum(torch.sum(a[n].double() * b[n].double()) for n in a if n in b))


def norm_of(a: Mapping[str, torch.Tensor]) -> float:
    """Euclidean norm of a direction over all its entries."""
    return float(np.sqrt(sum(float(torch.sum(v.double() ** 2)) for v in a.values())))


def cosine(a: Mapping[str, torch.Tensor], b: Mapping[str, torch.Tensor]) -> float:
    """Cosine similarity of two directions (0 if either is zero)."""
    na, nb = norm_of(a), norm_of(b)
    return dot(a, b) / (na * nb) if na > 0 and nb > 0 else 0.0


def check_direction(direction: Mapping[str, torch.Tensor], center: State, *, label: str = "direction") -> None:
    """Raise unless `direction` names entries of `center` with the same shapes, is finite and non-zero.

    Raises:
        ShapeError: a name is not in the centre state, or a shape differs (the message names both shapes).
        LandscapeError: the direction has non-finite entries or zero norm (nothing to slice along).
    """
    if not direction:
        raise ShapeError(f"{label} is empty: it names no parameter to move")
    for name, t in direction.items():
        if name not in center:
            raise ShapeError(f"{label} entry {name!r} is not a parameter of the model; "
                             f"valid names start with {list(center)[:6]}")
        if tuple(t.shape) != tuple(center[name].shape):
            raise ShapeError(f"{label} entry {name!r} has shape {tuple(t.shape)} but the model's parameter "
                             f"has shape {tuple(center[name].shape)}; directions must match the model they slice")
        if not t.is_floating_point():
            raise ShapeError(f"{label} entry {name!r} must be a floating tensor, got {t.dtype}")
        if not torch.isfinite(t).all():
            raise LandscapeError(f"{label} entry {name!r} contains NaN or infinite values")
    if norm_of(direction) <= 0.0:
        raise LandscapeError(f"{label} has zero norm (every entry is 0): there is nothing to slice along. "
                             "With bias_bn='zero', a model whose only parameters are biases or BatchNorm "
                             "scales gets a zero direction; use bias_bn='random' or another model.")


# --------------------------------------------------------------------------------------------------
# filter normalisation and random directions


def _filters(t: torch.Tensor) -> torch.Tensor:
    """View of `t` as (filters, rest): one row per output filter/neuron (dim 0)."""
    return t.reshape(t.shape[0], -1)


def normalize_direction(direction: Mapping[str, torch.Tensor], params: State, *, norm: Norm = "filter",
                        bias_bn: BiasBN = "zero") -> Direction:
    """Rescale a raw direction to the scale of `params` (Li et al. 2018, section 4).

    Args:
        direction: raw direction (e.g. Gaussian), one tensor per entry of `params`.
        params: the weights whose scale the direction takes.
        norm: "filter" rescales each output filter/neuron (slice along dim 0 of a tensor with >= 2 dims) to
            the norm of the same filter of the weights; "layer" rescales each whole tensor to the weight
            tensor's norm; "none" leaves the raw values.
        bias_bn: what tensors with <= 1 dimension (biases, BatchNorm/LayerNorm scale and shift) get:
            "zero" (default, Li et al.'s `ignore='biasbn'`), "random" (the raw direction rescaled to the
            tensor's norm, i.e. the whole vector is one filter), or "weight" (the weights themselves,
            Li et al.'s behaviour without `ignore`).

    Returns:
        A new direction; a weight filter of norm 0 gets a zero direction filter.
    """
    if norm not in NORMS:
        raise SpecError(f"norm={norm!r} is not valid; choose one of {', '.join(NORMS)}")
    if bias_bn not in BIAS_BN:
        raise SpecError(f"bias_bn={bias_bn!r} is not valid; choose one of {', '.join(BIAS_BN)}")
    out: Direction = {}
    for name, d in direction.items():
        w = params[name].to(d.dtype)
        if d.shape != w.shape:
            raise ShapeError(f"direction entry {name!r} has shape {tuple(d.shape)}, weights {tuple(w.shape)}")
        if w.dim() <= 1:
            if bias_bn == "zero":
                out[name] = torch.zeros_like(d)
                continue
            if bias_bn == "weight":
                out[name] = w.clone()
                continue
            # "random": the whole vector is one filter (raw values when norm == "none")
            out[name] = d * (w.norm() / d.norm().clamp_min(_TINY)) if norm != "none" else d.clone()
            continue
        if norm == "filter":
            df, wf = _filters(d), _filters(w)
            scale = wf.norm(dim=1, keepdim=True) / df.norm(dim=1, keepdim=True).clamp_min(_TINY)
            out[name] = (df * scale).reshape(d.shape)
        elif norm == "layer":
            out[name] = d * (w.norm() / d.norm().clamp_min(_TINY))
        else:
            out[name] = d.clone()
    return out


def random_direction(params: State, generator: torch.Generator, *, norm: Norm = "filter",
                     bias_bn: BiasBN = "zero") -> Direction:
    """A Gaussian direction over `params`, normalised by `normalize_direction`.

    The draw is on the CPU from `generator` in the order of `params` (so the same seed gives the same
    direction on every device), then moved to each parameter's device.
    """
    raw = {name: torch.randn(tuple(p.shape), generator=generator, dtype=torch.float32).to(p.device)
           for name, p in params.items()}
    return normalize_direction(raw, params, norm=norm, bias_bn=bias_bn)


def orthogonalize(d2: Mapping[str, torch.Tensor], d1: Mapping[str, torch.Tensor], *,
                  per_filter: bool = True) -> tuple[Direction, float]:
    """Make `d2` orthogonal to `d1`; return the new `d2` and the cosine of the two before.

    With `per_filter` (default), each filter of `d2` (slice along dim 0; a tensor with <= 1 dimension is one
    filter) is orthogonalised against the same filter of `d1` and rescaled to its own previous norm. Every
    filter's inner product is then 0, so the whole direction is exactly orthogonal to `d1`, and every
    filter norm is unchanged, so a filter-normalised `d2` stays exactly filter-normalised. (A filter parallel
    to the one of `d1`, e.g. a one-element filter, becomes zero.) Without `per_filter`, one global
    Gram-Schmidt step is taken and the result rescaled to `d2`'s previous norm.

    Raises:
        LandscapeError: `d1` is zero, or `d2` is parallel to it (no plane).
    """
    cos_before = cosine(d1, d2)
    if norm_of(d1) <= 0:
        raise LandscapeError("cannot orthogonalise against a zero direction")
    out: Direction = {}
    if per_filter:
        for name, b in d2.items():
            a = d1.get(name)
            if a is None:
                out[name] = b.clone()
                continue
            rows = b.shape[0] if b.dim() >= 2 else 1
            bf, af = b.double().reshape(rows, -1), a.double().reshape(rows, -1)
            aa = (af * af).sum(dim=1, keepdim=True)
            coef = (af * bf).sum(dim=1, keepdim=True) / aa.clamp_min(_TINY)
            rf = bf - torch.where(aa > 0, coef, torch.zeros_like(coef)) * af
            before, after = bf.norm(dim=1, keepdim=True), rf.norm(dim=1, keepdim=True)
            keep = after > 1e-9 * before
            rf = torch.where(keep, rf * (before / after.clamp_min(_TINY)), torch.zeros_like(rf))
            out[name] = rf.reshape(b.shape).to(b.dtype)
    else:
        coef = dot(d1, d2) / dot(d1, d1)
        for name, b in d2.items():
            out[name] = (b.double() - coef * d1[name].double()).to(b.dtype) if name in d1 else b.clone()
        old, new = norm_of(d2), norm_of(out)
        if new > 1e-9 * old:
            out = {k: v * (old / new) for k, v in out.items()}
    if norm_of(out) <= 1e-9 * max(norm_of(d2), _TINY):
        raise LandscapeError("the second direction is parallel to the first; there is no plane to span")
    return out, cos_before


# --------------------------------------------------------------------------------------------------
# planes


@dataclass
class Plane:
    """A centre state and one or two directions: the points `center + a * d1 (+ b * d2)`.

    Attributes:
        center: full float32 state dict of the centre model (parameters and buffers).
        d1: first direction.
        d2: second direction, or None for a line.
        kind: "random", "pca", "interp", "layer" or "custom".
        info: JSON-able facts about the directions (policies, seed, norms, cosine before orthogonalisation,
            explained variance, ...).
        anchors: coordinates (a, b) of named models lying on the plane (e.g. "clean": (0, 0)).
    """

    center: dict[str, torch.Tensor]
    d1: Direction
    d2: Direction | None
    kind: str = "custom"
    info: dict[str, Any] = field(default_factory=dict)
    anchors: dict[str, tuple[float, float]] = field(default_factory=dict)

    @property
    def directions(self) -> list[Direction]:
        return [self.d1] if self.d2 is None else [self.d1, self.d2]


def project(states: Sequence[State], center: State, directions: Sequence[Mapping[str, torch.Tensor]]
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Project states onto the affine span of `directions` through `center`.

    Coordinates solve the least-squares problem min_c ||(s - center) - sum_k c_k d_k|| (exact for
    non-orthogonal directions too).

    Returns:
        coords (T, k), residual (T,) = the off-plane distance ||(s - center) - sum_k c_k d_k||, and
        distance (T,) = ||s - center|| (so residual / distance is the relative off-plane part).
    """
    names = sorted(set().union(*[set(d) for d in directions]))
    k = len(directions)
    gram = np.array([[dot(directions[i], directions[j]) for j in range(k)] for i in range(k)])
    coords = np.zeros((len(states), k))
    residual = np.zeros(len(states))
    distance = np.zeros(len(states))
    for t, s in enumerate(states):
        diff = {n: s[n].to(torch.float64).to(center[n].device) - center[n].double() for n in names}
        rhs = np.array([dot(diff, d) for d in directions])
        c = np.linalg.lstsq(gram, rhs, rcond=None)[0]
        coords[t] = c
        sq = 0.0
        for n in names:
            r = diff[n].clone()
            for j, d in enumerate(directions):
                if n in d:
                    r -= c[j] * d[n].double()
            sq += float((r ** 2).sum())
        residual[t] = np.sqrt(sq)
        distance[t] = norm_of(diff)
    return coords, residual, distance


def random_plane(center: State, names: Sequence[str], generator: torch.Generator, *, dims: int = 2,
                 norm: Norm = "filter", bias_bn: BiasBN = "zero", seed: int | None = None) -> Plane:
    """One or two filter-normalised random directions around `center` (the second orthogonalised).

    Args:
        center: state dict of the model at the centre.
        names: the entries to move (normally `parameter_names(model)`; buffers stay fixed).
        generator: source of the Gaussian draws.
        dims: 1 for a line, 2 for a plane.
        norm: normalisation of each direction, see `normalize_direction`.
        bias_bn: policy for biases and BatchNorm parameters, see `normalize_direction`.
        seed: recorded in `info` only (the generator is what is used).
    """
    center = float_state(center)
    params = subset(center, names)
    d1 = random_direction(params, generator, norm=norm, bias_bn=bias_bn)
    check_direction(d1, center, label="random direction 1")
    info: dict[str, Any] = {"norm": norm, "bias_bn": bias_bn, "seed": seed, "d1_norm": norm_of(d1),
                            "center_norm": norm_of(params)}
    d2 = None
    if dims == 2:
        raw2 = random_direction(params, generator, norm=norm, bias_bn=bias_bn)
        d2, cos_before = orthogonalize(raw2, d1, per_filter=(norm == "filter"))
        check_direction(d2, center, label="random direction 2")
        info.update(cosine_before=cos_before, cosine_after=cosine(d1, d2), d2_norm=norm_of(d2))
    elif dims != 1:
        raise SpecError(f"dims={dims} must be 1 or 2")
    return Plane(center, d1, d2, "random", info, {"center": (0.0, 0.0)})


def layer_plane(center: State, layers: Sequence[str], generator: torch.Generator, *, dims: int = 1,
                norm: Norm = "filter", eps: float = 0.05, seed: int | None = None) -> Plane:
    """Directions that move only the tensors `layers` (one layer's weight, or a group), for a layer slice.

    Each direction is Gaussian on the chosen tensors, normalised against them (`normalize_direction`; a named
    tensor with <= 1 dimension, e.g. a bias, is treated as one filter), and absent from every other entry, so the
    slice moves those tensors and nothing else (Li et al. 2018's filter normalisation, restricted to a layer). The
    second direction is orthogonalised filter by filter (`orthogonalize`). The draws depend only on the generator
    and the tensors' shapes, so two models (clean and poisoned) sliced with the same seed get the same raw
    directions, each normalised to its own weights.

    The SAL ball ||delta||_F <= eps ||theta_l||_F (Ye et al., ICLR 2025) is recorded in the slice's coordinates:
    at coordinates (a, b) the chosen tensors move by ||a d1 + b d2|| = sqrt(a^2 ||d1||^2 + b^2 ||d2||^2) (the
    directions are orthogonal), so the ball is the ellipse (a / r1)^2 + (b / r2)^2 <= 1 with
    r_k = eps ||theta_S|| / ||d_k||, theta_S the chosen tensors together. Filter normalisation makes ||d_k||
    equal ||theta_S|| (no filter of zero norm), so r_k = eps: the ball is the disc of radius eps. For a group the
    radius is that of the group's joint norm (SAL measures each layer on its own ball).

    Args:
        center: state dict of the model at the centre.
        layers: the state-dict entries to move (e.g. ["features.3.weight"]).
        generator: source of the Gaussian draws.
        dims: 1 for a line, 2 for a plane.
        norm: "filter", "layer" or "none" (see `normalize_direction`).
        eps: SAL's relative ball radius, recorded as `info["sal_ball"]` = [r1] or [r1, r2].
        seed: recorded in `info` only.

    Raises:
        ShapeError: a name is not an entry of `center`.
        SpecError: `dims` is not 1 or 2, or no layer is given.
    """
    if not layers:
        raise SpecError("a layer slice needs at least one tensor name (e.g. a weight from weight_layers(model))")
    if dims not in (1, 2):
        raise SpecError(f"dims={dims} must be 1 or 2")
    center = float_state(center)
    params = subset(center, list(dict.fromkeys(layers)))
    d1 = random_direction(params, generator, norm=norm, bias_bn="random")
    check_direction(d1, center, label="layer direction 1")
    theta_norm = norm_of(params)
    info: dict[str, Any] = {"layers": list(params), "norm": norm, "seed": seed, "eps": eps,
                            "center_norm": theta_norm, "d1_norm": norm_of(d1)}
    d2 = None
    if dims == 2:
        raw2 = random_direction(params, generator, norm=norm, bias_bn="random")
        d2, cos_before = orthogonalize(raw2, d1, per_filter=(norm == "filter"))
        check_direction(d2, center, label="layer direction 2")
        info.update(cosine_before=cos_before, cosine_after=cosine(d1, d2), d2_norm=norm_of(d2))
    info["sal_ball"] = [eps * theta_norm / norm_of(d) for d in ([d1] if d2 is None else [d1, d2])]
    return Plane(center, d1, d2, "layer", info, {"center": (0.0, 0.0)})


def line_between(a: State, b: State, names: Sequence[str]) -> Plane:
    """The line from model `a` (coordinate 0) to model `b` (coordinate 1): direction `b - a` over `names`.

    Pass parameter and float-buffer names to interpolate BatchNorm running statistics too (Li et al.'s
    `--dir_type states`; ignoring them gives wrong losses between two BN models).
    """
    a32 = float_state(a)
    d = difference(b, a32, names)
    check_direction(d, a32, label="line direction (the two models are identical)")
    return Plane(a32, d, None, "interp", {"d1_norm": norm_of(d), "names": len(names)},
                 {"a": (0.0, 0.0), "b": (1.0, 0.0)})


def plane_through(a: State, b: State, c: State, names: Sequence[str], *, orthogonal: bool = True) -> Plane:
    """The plane through three models: `a` at (0, 0), `b` at (1, 0), and `c` wherever it falls.

    `d1 = b - a`. With `orthogonal` (default), `d2` is `c - a` made orthogonal to `d1` and rescaled to
    `||d1||`, so the axes are metric (equal units, right angle) and `c` sits at (x, y) with y > 0;
    otherwise `d2 = c - a` and `c` sits at (0, 1) (Li et al.'s `--model_file3`).
    """
    a32 = float_state(a)
    d1 = difference(b, a32, names)
    check_direction(d1, a32, label="direction a->b (models a and b are identical)")
    raw = difference(c, a32, names)
    check_direction(raw, a32, label="direction a->c (models a and c are identical)")
    info: dict[str, Any] = {"cosine_before": cosine(d1, raw), "orthogonal": orthogonal}
    if orthogonal:
        coef = dot(d1, raw) / dot(d1, d1)
        d2 = {n: raw[n] - coef * d1[n] for n in names}
        n2 = norm_of(d2)
        if n2 <= 1e-5 * norm_of(raw):  # float32 rounding of an exactly collinear third model
            raise LandscapeError("the three models lie on one line; there is no plane through them")
        d2 = {n: v * (norm_of(d1) / n2) for n, v in d2.items()}
    else:
        d2 = raw
    plane = Plane(a32, d1, d2, "interp", info)
    (xy,), _, _ = project([c], a32, [d1, d2])
    plane.anchors = {"a": (0.0, 0.0), "b": (1.0, 0.0), "c": (float(xy[0]), float(xy[1]))}
    info.update(d1_norm=norm_of(d1), d2_norm=norm_of(d2))
    return plane


@dataclass
class PCAResult:
    """Top principal directions of one or more trajectories around a common centre.

    Attributes:
        d1, d2: unit-norm principal directions (over the names analysed).
        explained_variance_ratio: (2,) fraction of the total variance each component explains.
        singular_values: (2,) singular values of the (T, P) difference matrix.
        centered: whether the differences were centred (sklearn-style) before the decomposition.
    """

    d1: Direction
    d2: Direction
    explained_variance_ratio: np.ndarray
    singular_values: np.ndarray
    centered: bool


def pca_directions(trajectories: Sequence[Sequence[State]], center: State, names: Sequence[str], *,
                   centered: bool = False) -> PCAResult:
    """Top two principal components of (checkpoint - center) over all checkpoints of all trajectories.

    Args:
        trajectories: one or more lists of state dicts (e.g. the clean and the poisoned run); pooling
            several gives one shared plane on which every path can be drawn.
        center: the state the differences are taken from (Li et al. use the final model).
        names: entries to analyse (normally the parameters).
        centered: subtract the mean difference first, as Li et al.'s sklearn PCA does. The default
            (False) finds the best plane *through the centre*, which is the plane the surface is drawn
            on, so the explained variance says how much of ||checkpoint - center||^2 the drawn plane holds.

    The decomposition goes through the (T, T) Gram matrix accumulated tensor by tensor, so memory stays
    at one parameter tensor times T, never the dense (T, P) matrix. Signs are fixed so the first
    checkpoint of the first trajectory has non-negative coordinates.
    """
    states = [s for traj in trajectories for s in traj]
    if len(states) < 3:
        raise LandscapeError(f"PCA directions need at least 3 checkpoints, got {len(states)}; keep more "
                             "checkpoints (TrainSpec.checkpoint_every) or train for more epochs")
    t = len(states)

    def diffs(n: str) -> torch.Tensor:  # (T, numel) float32, centred if asked
        m = torch.stack([s[n].reshape(-1).to("cpu", torch.float32) for s in states])
        m = m - center[n].reshape(1, -1).to("cpu", torch.float32)
        return m - m.mean(0, keepdim=True) if centered else m

    gram = torch.zeros(t, t, dtype=torch.float64)
    for n in names:
        m = diffs(n)
        for start in range(0, m.shape[1], _BLOCK):  # float64 products in blocks: bounded memory
            block = m[:, start:start + _BLOCK].double()
            gram += block @ block.T
    evals, evecs = torch.linalg.eigh(gram)  # ascending
    evals, evecs = evals.flip(0).clamp_min(0.0), evecs.flip(1)
    total = float(evals.sum())
    if total <= 0 or float(evals[1]) <= 1e-12 * total:
        raise LandscapeError("the checkpoints span fewer than two dimensions around the centre; PCA cannot "
                             "define a plane (did training move the weights?)")
    sv = evals[:2].sqrt()
    comps: list[Direction] = [{}, {}]
    first = [0.0, 0.0]  # coordinates of the first checkpoint, for the sign convention
    for n in names:
        m = diffs(n).double()
        row0 = states[0][n].reshape(-1).to("cpu", torch.float64) - center[n].reshape(-1).to("cpu", torch.float64)
        for k in range(2):
            v = (m.T @ evecs[:, k]) / sv[k]
            first[k] += float(row0 @ v)
            comps[k][n] = v.reshape(center[n].shape).to(torch.float32).to(center[n].device)
    for k in range(2):
        if first[k] < 0:
            comps[k] = {n: -v for n, v in comps[k].items()}
    ratio = (evals[:2] / total).numpy()
    return PCAResult(comps[0], comps[1], ratio, sv.numpy(), centered)


def pca_plane(trajectories: Sequence[Sequence[State]], center: State, names: Sequence[str], *,
              centered: bool = False) -> Plane:
    """A `Plane` through `center` spanned by `pca_directions` (unit-norm directions; info holds the variance)."""
    c32 = float_state(center)
    res = pca_directions(trajectories, c32, names, centered=centered)
    info = {"explained_variance_ratio": res.explained_variance_ratio.tolist(),
            "singular_values": res.singular_values.tolist(), "centered": centered,
            "cosine_after": cosine(res.d1, res.d2)}
    return Plane(c32, res.d1, res.d2, "pca", info, {"center": (0.0, 0.0)})


__all__ = [
    "BIAS_BN", "NORMS", "Direction", "PCAResult", "Plane", "check_direction", "cosine", "dot", "float_state",
    "layer_plane", "line_between", "norm_of", "normalize_direction", "orthogonalize", "parameter_names",
    "pca_directions", "pca_plane", "plane_through", "project", "random_direction", "random_plane", "buffer_names",
    "subset",
]
