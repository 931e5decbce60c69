"""Stages of a model trained elsewhere: its imported weights as a run, SAL at that point, surfaces around it.

`ImportedRun` reads a user's weights file safely (`landscape.weights`), loads it into the model (a registered
one or a user model, built for the data) and keeps it as a one-checkpoint run (`TrainResult` at epoch 0, no
history), keyed by the data, the resolved model and the file's SHA-256 (not its path: a moved file keeps its
entries, a changed one gets new ones). `ImportedSALStage` measures SAL of every weight layer at that point
(Ye et al., ICLR 2025) on the data's training split; an imported model has no running training loss, so L_0 is
always evaluated fresh (`SALSpec.baseline = "fresh"`, set on resolving). `ImportedCurvatureStage` measures the
curvature of every layer's Hessian block (and the whole model's) at that point (`landscape.curvature`), on the
training split ("train") or the test split. `ImportedSurfaceStage` slices the loss
landscape around imported models ("random": a filter-normalised plane around each; "interp": the line or plane
through them, which needs one labelled "clean"; a `LayerSliceSpec`: along one layer's own directions around each,
`landscape.layer_slices`); a PCA plane needs a training trajectory and is refused.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from landscape.config import CurvatureSpec, DataSpec, LayerSliceSpec, ModelSpec, SALSpec, Spec, SurfaceSpec
from landscape.curvature import CurvatureTrace, model_curvature
from landscape.data.fingerprint import file_sha256
from landscape.errors import DataError, SpecError
from landscape.layer_slices import layer_slices
from landscape.models import weight_layers
from landscape.paths import user_path
from landscape.run_surfaces import compute_surfaces
from landscape.sal import SALTrace, model_sal
from landscape.stages.base import (
    Computed,
    Context,
    OnRun,
    Stage,
    Version,
    build_net,
    check_layers,
    get_splits,
    resolve_data,
    resolve_model,
)
from landscape.stages.surface import LAYER_SLICE_VERSION
from landscape.stages.train import SALOnRun
from landscape.store import Entry
from landscape.surface_results import SurfaceSet
from landscape.train import HISTORY_KEYS, TrainResult
from landscape.weights import check_finite, load_into, read_weights

FINITE = "finite"  # an imported run's mark (in its extras) that its weights were checked finite when it was stored


@dataclass(frozen=True)
class WeightsFile(Spec):
    """The identity of a weights file in keys: its content hash."""

    sha256: str


@dataclass(frozen=True)
class ImportedRun(Stage[TrainResult]):
    """A user's trained weights for `model` on `data`, checked and kept as a run with one checkpoint (epoch 0)."""

    folder = "weights"
    data: DataSpec
    model: ModelSpec
    weights: WeightsFile
    path: str = field(compare=False)  # where the file is; not part of the key

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, path: str | os.PathLike[str]) -> ImportedRun:
        data = resolve_data(data)
        path = os.path.abspath(user_path(path, "the weights file"))
        if not os.path.isfile(path):
            raise DataError(f"weights file {path} does not exist")
        return cls(data, resolve_model(model, data), WeightsFile(file_sha256(path)), path)

    def parts(self) -> tuple[Spec, ...]:
        return (self.data, self.model, self.weights)

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "weights": self.weights.to_dict(),
                "path": self.path}

    def net(self) -> torch.nn.Module:
        """A model of the run's architecture (structure only, seed 0)."""
        return build_net(self.model, self.data)

    def compute(self, ctx: Context) -> Computed:
        net = self.net()
        load_into(net, read_weights(self.path), label=self.path)  # refuses NaN/inf (`check_finite`)
        state = {k: (v.detach().float() if v.is_floating_point() else v.detach()).clone()
                 for k, v in net.state_dict().items()}
        history = {k: np.zeros(0) for k in HISTORY_KEYS}
        return TrainResult(history, [0], [state], None, {"weights": self.path, FINITE: True}).to_store()

    def decode(self, entry: Entry) -> TrainResult:
        """The stored run; one imported before NaN/inf weights were refused is checked now (`check_finite`).

        Such an entry fails to decode, so the store drops it and `compute` reads the file again, which refuses
        the weights with the same error. An entry `compute` wrote was checked there and is not checked again.
        """
        run = TrainResult.from_store(entry.meta, entry.arrays)
        if not run.extras.get(FINITE):
            check_finite(run.final_state, self.net().state_dict(), self.path)
        return run

    def inputs(self) -> tuple[Stage[Any], ...]:
        return ()  # the user's file, not a stage


def point_sal(sal: SALSpec) -> SALSpec:
    """`sal` for a model without a training run: L_0 evaluated at the weights (no running loss exists)."""
    return sal if sal.baseline == "fresh" else sal.replace(baseline="fresh")


@dataclass(frozen=True)
class ImportedSALStage(SALOnRun):
    """SAL of every weight layer of imported weights, on the data's training split (one "epoch": 0)."""

    folder = "weights-sal"
    run: ImportedRun
    sal: SALSpec

    @classmethod
    def of(cls, run: ImportedRun, sal: SALSpec) -> ImportedSALStage:
        return cls(run, point_sal(sal))

    def parts(self) -> tuple[Spec, ...]:
        return (*self.run.parts(), self.sal)

    def compute(self, ctx: Context) -> Computed:
        dev = ctx.torch_device()
        state = self.run.get(ctx).final_state
        net = self.run.net().to(dev)
        net.load_state_dict(state)
        train = get_splits(self.data).train
        started = time.perf_counter()
        row = model_sal(net, train.x.to(dev), train.y.to(dev), self.sal,
                        progress=ctx.reporter("sal-imported"))
        return self.stored(SALTrace.from_rows(weight_layers(net), [0], [row], [time.perf_counter() - started],
                                              self.sal))


@dataclass(frozen=True)
class ImportedCurvatureStage(OnRun[CurvatureTrace]):
    """Curvature of every weight layer (and the whole model) at imported weights (one "epoch": 0)."""

    folder = "weights-curvature"
    run: ImportedRun
    curvature: CurvatureSpec

    def parts(self) -> tuple[Spec, ...]:
        return (*self.run.parts(), self.curvature)

    def record(self) -> dict[str, Any]:
        return {**self.run.record(), "curvature": self.curvature.to_dict()}

    def compute(self, ctx: Context) -> Computed:
        net = self.run.net()
        net.load_state_dict(self.run.get(ctx).final_state)
        splits = get_splits(self.data)
        images = splits.train if self.curvature.split == "train" else splits.test
        point = model_curvature(net, images.x, images.y, self.curvature, device=ctx.torch_device(),
                                progress=ctx.reporter("curvature-imported"))
        return CurvatureTrace(np.zeros(1, dtype=np.int64), [point], self.curvature).to_store()

    def decode(self, entry: Entry) -> CurvatureTrace:
        return CurvatureTrace.from_store(entry.meta, entry.arrays)


@dataclass(frozen=True)
class Labels(Spec):
    """The labels of the imported models of a surface, in order (part of its key)."""

    labels: tuple[str, ...]


@dataclass(frozen=True)
class ImportedSurfaceStage(Stage[SurfaceSet]):
    """Loss/accuracy surfaces around imported models, by label (see the module docstring for the kinds)."""

    folder = "weights-surface"
    data: DataSpec
    model: ModelSpec
    runs: tuple[tuple[str, ImportedRun], ...]
    surface: SurfaceSpec | LayerSliceSpec

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, weights: Mapping[str, str | os.PathLike[str]],
           surface: SurfaceSpec | LayerSliceSpec) -> ImportedSurfaceStage:
        kind = surface.kind if isinstance(surface, SurfaceSpec) else "layer"  # a layer slice takes any weights
        if kind == "pca":
            raise SpecError("a PCA plane needs a training trajectory; imported weights have one point each: use "
                            "SurfaceSpec(kind='random') or, with a 'clean' and another model, kind='interp'")
        if kind == "interp" and ("clean" not in weights or len(weights) < 2):
            raise SpecError(f"an 'interp' slice runs from the model labelled 'clean' to another; got labels "
                            f"{sorted(weights)}")
        if isinstance(surface, LayerSliceSpec) and surface.epoch not in (None, 0):
            raise SpecError(f"LayerSliceSpec.epoch = {surface.epoch}: imported weights are one point, stored as "
                            f"epoch 0; give epoch None or 0")
        runs = tuple((label, ImportedRun.of(data, model, path)) for label, path in weights.items())
        first = runs[0][1]
        if isinstance(surface, LayerSliceSpec):
            check_layers(surface.layers, first.model, first.data)  # before any weights are loaded
        return cls(first.data, first.model, runs, surface)

    def parts(self) -> tuple[Spec, ...]:
        version = (Version(LAYER_SLICE_VERSION),) if isinstance(self.surface, LayerSliceSpec) else ()
        return (self.data, self.model, self.surface, *version, Labels(tuple(k for k, _ in self.runs)),
                *(run.weights for _, run in self.runs))

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "surface": self.surface.to_dict(),
                "weights": {label: run.record()["weights"] | {"path": run.path} for label, run in self.runs}}

    def compute(self, ctx: Context) -> Computed:
        runs = {label: run.get(ctx) for label, run in self.runs}
        splits, net, device = get_splits(self.data), self.runs[0][1].net(), ctx.torch_device()
        if isinstance(self.surface, LayerSliceSpec):
            images = splits.train if self.surface.split == "train" else splits.test
            result = layer_slices(net, runs, dict.fromkeys(runs, images), self.surface, device=device,
                                  progress=ctx.reporter("layer-slice"))
            return result.to_store()
        if self.surface.kind == "interp":  # "clean" first, as compute_surfaces reads it
            runs = {"clean": runs["clean"], **{k: v for k, v in runs.items() if k != "clean"}}
        result = compute_surfaces(net, runs, splits, self.surface, device=device,
                                  progress=ctx.reporter("surface"))
        return result.to_store()

    def decode(self, entry: Entry) -> SurfaceSet:
        return SurfaceSet.from_store(entry.meta, entry.arrays)

    def inputs(self) -> tuple[Stage[Any], ...]:
        return tuple(run for _, run in self.runs)
