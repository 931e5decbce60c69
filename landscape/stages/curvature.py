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
from landscape.stages.base import Computed, Context, OnRun, Version, build_net, get_splits
from landscape.stages.train import TrainStage, run_label, training_set
from landscape.store import Entry

CURVATURE_VERSION = "curvature-1"  # bump when the curvature computation changes


@dataclass(frozen=True)
class CurvatureStage(OnRun[CurvatureTrace]):
    """λ_max, top-k eigenvalues, trace and spectral density per layer and epoch of one run (`CurvatureTrace`)."""

    folder = "curvature"
    run: TrainStage
    curvature: CurvatureSpec

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poison: PoisonSpec | None,
           curvature: CurvatureSpec, *, defense: DefenseSpec | None = None) -> CurvatureStage:
        return cls(TrainStage.of(data, model, train, poison, defense=defense), curvature)

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
        trace = curvature_trace(build_net(r.model, r.data, r.train.seed), run.checkpoints, run.checkpoint_epochs,
                                images.x, images.y, self.curvature, total_epochs=r.train.epochs,
                                device=ctx.torch_device(), progress=ctx.reporter(stage))
        return trace.to_store()

    def decode(self, entry: Entry) -> CurvatureTrace:
        return CurvatureTrace.from_store(entry.meta, entry.arrays)
