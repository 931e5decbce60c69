"""Points in weight space for surfaces: a grid on a plane of directions, or whole state dicts (checkpoints).

A `Points` set of P points gives, for any index batch, the entries that vary between points stacked (G, ...),
which `landscape.copies.Copies` evaluates in one forward; the entries no point moves are `fixed`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

import numpy as np
import torch

from landscape.directions import State, float_state
from landscape.errors import ShapeError


class Points:
    """A set of P points in weight space; `stack(idx)` gives the varying entries of points idx as (G, ...)."""

    n: int
    varying: list[str]
    fixed: dict[str, torch.Tensor]

    def stack(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def varying_numel(self) -> int:
        """Number of weights that vary from point to point."""
        raise NotImplementedError

    def to(self, device: torch.device) -> Points:
        raise NotImplementedError


class GridPoints(Points):
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


class StatePoints(Points):
    """Points given as whole state dicts (e.g. checkpoints); float entries that differ between them vary."""

    def __init__(self, states: Sequence[State]) -> None:
        if not states:
            raise ShapeError("no states to evaluate")
        self.states = [float_state(s) for s in states]
        first = self.states[0]
        for i, s in enumerate(self.states[1:], 1):
            if set(s) != set(first):
                odd = sorted(set(s) ^ set(first))[:3]
                raise ShapeError(f"all states must have the same entries and shapes: state {i} differs from state 0 "
                                 f"in {odd}")
            bad = next((k for k in first if s[k].shape != first[k].shape), None)
            if bad is not None:
                raise ShapeError(f"all states must have the same entries and shapes: {bad!r} is "
                                 f"{tuple(s[bad].shape)} in state {i}, {tuple(first[bad].shape)} in state 0")
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


__all__ = ["GridPoints", "Points", "StatePoints"]
