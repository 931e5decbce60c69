"""Layer slices of trained runs: the loss along directions that move one weight tensor (or a group) only.

The unit of the paper's claim is the layer (Ye, Su & Qian, "How Far Are We from True Unlearnability?", ICLR 2025:
unlearnable examples leave a few critical layers in flat regions), so this slices the loss of each run at one
stored epoch along `landscape.directions.layer_plane`: Gaussian directions on the chosen tensors, filter-normalised
against them (Li, Xu, Taylor, Studer & Goldstein, "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018),
every other entry of the state fixed bit for bit. Every run is sliced with the same seed, so the clean and the
poisoned model get the same raw directions (each normalised to its own weights) and one grid of normalised
coordinates; SAL's ball ||delta||_F <= eps ||theta_l||_F is recorded in those coordinates (`info["sal_ball"]`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from landscape import directions as D
from landscape.config import LayerSliceSpec
from landscape.data import ImageSet
from landscape.errors import SpecError
from landscape.surface import eval_subset, slice_plane
from landscape.surface_results import Surface, SurfaceSet
from landscape.train import TrainResult

Progress = Callable[[int, int], None]
AUTO_RADII = 10  # the automatic range spans this many SAL radii either side of the model


def stored_epoch(run: TrainResult, epoch: int | None, label: str) -> int:
    """The checkpoint epoch a slice takes: `epoch` if the run stored it, the last stored one for None."""
    stored = [int(e) for e in run.checkpoint_epochs]
    if epoch is None:
        return stored[-1]
    if epoch not in stored:
        raise SpecError(f"LayerSliceSpec.epoch = {epoch} is not a stored epoch of the {label} run; stored epochs: "
                        f"{stored}")
    return epoch


def slice_axes(spec: LayerSliceSpec, radii: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """The grid of a request: the spec's ranges, else `AUTO_RADII` SAL radii either side of the model."""
    def axis(given: tuple[float, float] | None, radius: float) -> np.ndarray:
        lo, hi = given or (-AUTO_RADII * radius, AUTO_RADII * radius)
        return np.linspace(lo, hi, spec.resolution)

    alpha = axis(spec.alpha_range, radii[0])
    if spec.dims == 1:
        return alpha, np.zeros(1)
    return alpha, axis(spec.beta_range or spec.alpha_range, radii[-1])


def layer_slices(net: nn.Module, runs: Mapping[str, TrainResult], eval_sets: Mapping[str, ImageSet],
                 spec: LayerSliceSpec, *, device: torch.device | str = "cpu",
                 progress: Progress | None = None) -> SurfaceSet:
    """Slices of each run along its own layer directions, on one grid; a `SurfaceSet` labelled by run.

    Args:
        net: a model of the runs' architecture (supplies structure only; never modified).
        runs: `TrainResult` by label ("clean" first); each is sliced at `stored_epoch(run, spec.epoch)`.
        eval_sets: the images each run's loss is taken over, by label (the caller picks the split); the fixed
            subset `spec.n_eval` with `spec.seed` is drawn from it.
        spec: the slice's settings.
        device: where to evaluate.
        progress: `progress(done, total)` in point-batches over every run.

    Returns:
        One `Surface` per run (kind "layer", centred on that run at its epoch) on the grid of the first run's
        ball (the same normalised coordinates for every run); `info` holds the layers, the epoch and the SAL
        ball per run.
    """
    started = time.perf_counter()
    planes, images, epochs = {}, {}, {}
    for label, run in runs.items():
        epochs[label] = stored_epoch(run, spec.epoch, label)
        state = run.checkpoints[list(run.checkpoint_epochs).index(epochs[label])]
        planes[label] = D.layer_plane(state, spec.layers, torch.Generator().manual_seed(spec.seed), dims=spec.dims,
                                      norm=spec.norm, eps=spec.eps, seed=spec.seed)
        images[label] = eval_subset(eval_sets[label], spec.n_eval, spec.seed)
    alpha, beta = slice_axes(spec, planes[next(iter(runs))].info["sal_ball"])
    per_run = [len(alpha) * len(beta) * -(-len(images[k]) // spec.batch_size) for k in runs]
    surfaces: dict[str, Surface] = {}
    for i, label in enumerate(runs):
        offset, total = sum(per_run[:i]), sum(per_run)

        def report(done: int, _total: int, offset: int = offset, total: int = total) -> None:
            if progress is not None:
                progress(min(offset + done, total), total)

        s = slice_plane(net, planes[label], images[label], alpha, beta if spec.dims == 2 else None,
                        batch_size=spec.batch_size, device=device, progress=report)
        s.center, s.anchors = label, {label: (0.0, 0.0)}
        s.info.update(epoch=epochs[label], split=spec.split, images=len(images[label]))
        surfaces[label] = s
    info: dict[str, Any] = {"kind": "layer", "layers": list(spec.layers), "labels": list(runs), "epochs": epochs,
                            "split": spec.split, "sal_ball": {k: s.info["sal_ball"] for k, s in surfaces.items()},
                            "seconds": time.perf_counter() - started}
    return SurfaceSet(surfaces, info)


__all__ = ["AUTO_RADII", "layer_slices", "slice_axes", "stored_epoch"]
