"""Surfaces of trained runs: the planes a `SurfaceSpec` asks for around the clean and poisoned models, sliced.

`compute_surfaces` builds the planes (`landscape.directions`) from the runs' trajectories and evaluates them
with `landscape.surface` (grid, projected paths, anchors); the surface stage (`landscape.stages.surface`)
caches the result.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from landscape.directions import Plane, State, project
from landscape.errors import SpecError
from landscape.surface import Progress, eval_subset, project_path, slice_plane
from landscape.surface_results import Surface, SurfaceSet


def run_labels(poisons: Sequence[Any]) -> list[str]:
    """Labels of the runs of a surface request: "clean", then each poison's method (deduplicated as "em-2")."""
    labels = ["clean"]
    for p in poisons:
        label, i = p.method, 2
        while label in labels:
            label, i = f"{p.method}-{i}", i + 1
        labels.append(label)
    return labels


def check_runs(spec: Any, poisoned: int, kept: int | None = None) -> None:
    """Refuse a `SurfaceSpec` that the runs cannot give: an 'interp' plane needs a poisoned run, a PCA plane 3 states.

    Called where a surface is requested (`landscape.stages.surface.SurfaceStage.of`), before any run trains, and
    again by `compute_surfaces`. `poisoned` is the number of poisoned runs beside the clean one; `kept`, where
    known, the number of checkpoints each run keeps (`TrainSpec.kept_epochs`): PCA needs 3 among the states it
    decomposes, those of every run for the shared plane, each run's own otherwise (`directions.pca_plane`).
    """
    if spec.kind == "interp" and spec.dims == 2 and poisoned == 0:
        raise SpecError("SurfaceSpec.kind = 'interp' with dims = 2 (a plane) needs a poisoned run: give a poison "
                        "(the CLI's --method), or dims = 1 for the line from the initialisation to the clean model")
    if spec.kind == "pca" and kept is not None:
        states = kept * (1 + poisoned) if spec.plane == "shared" else kept
        if states < 3:
            where = "the runs keep" if spec.plane == "shared" else "each run keeps"
            raise SpecError(f"SurfaceSpec.kind = 'pca' needs at least 3 checkpoints, but {where} {states} "
                            f"(initialisation and {kept - 1} epoch(s)); train for more epochs (the CLI's "
                            "--epochs), add a poisoned run (--method), or choose kind random or interp")


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
        check_runs(spec, len(labels) - 1)
        if len(labels) == 1:
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


def fit_range(values: Sequence[float] | np.ndarray, *, border: float = 0.2, minimum: float = 1e-3,
              cover: tuple[float, float] = (0.0, 0.0)) -> tuple[float, float]:
    """(lo, hi) holding `values` with a `border` (fraction of their extent) on each side, and at least `cover`."""
    v = np.asarray(values, dtype=np.float64).ravel()
    v = v[np.isfinite(v)]
    lo, hi = (float(v.min()), float(v.max())) if v.size else cover
    extent = max(hi - lo, minimum)
    return min(lo - border * extent, cover[0]), max(hi + border * extent, cover[1])


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


__all__ = ["check_runs", "compute_surfaces", "run_labels"]
