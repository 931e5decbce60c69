"""The curvature stage: the Hessian of every layer (and of the whole model) at a run's stored epochs.

`landscape.curvature.curvature_trace` on the checkpoints of one training run (`TrainStage`), so one run serves
every curvature setting, as SAL's `SALStage` does. The "train" split is the run's own training set (the poisoned
images for a poisoned run, after the defense's preprocessing): the loss SAL measures.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from landscape.config import CurvatureSpec, DataSpec, DefenseSpec, ModelSpec, PoisonSpec, Spec, TrainSpec
from landscape.curvature import CurvatureTrace, curvature_trace
from landscape.device import resolve_device
from landscape.models import build_model
from landscape.stages.base import Computed, Context, Stage, Version, get_splits
from landscape.stages.train import TrainStage, run_label, training_set
from landscape.store import Entry

CURVATURE_VERSION = "curvature-1"  # bump when the curvature computation changes


@dataclass(frozen=True)
class CurvatureStage(Stage[CurvatureTrace]):
    """λ_max, top-k eigenvalues, trace and spectral density per layer and epoch of one run (`CurvatureTrace`)."""

    folder = "curvature"
    run: TrainStage
    curvature: CurvatureSpec

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poison: PoisonSpec | None,
           curvature: CurvatureSpec, *, defense: DefenseSpec | None = None) -> CurvatureStage:
        return cls(TrainStage.of(data, model, train, poison, defense=defense), curvature)

    @property
    def data(self) -> DataSpec:  # type: ignore[override]
        return self.run.data

    def parts(self) -> tuple[Spec | None, ...]:
        r = self.run
        return (r.data, r.model, r.train, r.poison, r.defense, self.curvature, Version(CURVATURE_VERSION))

    def record(self) -> dict[str, Any]:
        return {**self.run.record(), "curvature": self.curvature.to_dict()}

    def compute(self, ctx: Context) -> Computed:
        r, stage = self.run, f"curvature-{run_label(self.run.poison)}"
        run = r.get(ctx)
        splits = get_splits(r.data)
        images = training_set(r.data, r.poison, r.defense, ctx)[0] if self.curvature.split == "train" else splits.test
        net = build_model(r.model.name, splits.image_shape, splits.num_classes, width=r.model.width,
                          seed=r.train.seed)
        trace = curvature_trace(net, run.checkpoints, run.checkpoint_epochs, images.x, images.y, self.curvature,
                                total_epochs=r.train.epochs, device=resolve_device(str(ctx.device)),
                                progress=lambda done, total: ctx.progress(stage, done, total))
        return trace.to_store()

    def decode(self, entry: Entry) -> CurvatureTrace:
        return CurvatureTrace.from_store(entry.meta, entry.arrays)
