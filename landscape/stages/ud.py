"""The UD stage: the Unlearnable Distance of a clean-vs-poisoned experiment (`landscape.ud`, Ye et al. 2025)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from landscape.config import DataSpec, DefenseSpec, ExperimentSpec, PoisonSpec, Spec
from landscape.defenses import DEFENSES, defense_label
from landscape.sal import SALTrace
from landscape.stages.base import (
    Computed,
    Context,
    Stage,
    Version,
    resolve_data,
    resolve_defense,
    resolve_model,
    resolve_poison,
)
from landscape.stages.train import TrainStage, sal_stage
from landscape.store import Entry
from landscape.ud import UDReport, unlearnable_distance

UD_VERSION = "ud-1"  # bump when the UD computation changes, so cached UD entries are recomputed


def resolve_experiment(spec: ExperimentSpec) -> ExperimentSpec:
    """`spec` with its data set and model checked, its poison and defense filled in with their defaults."""
    data = resolve_data(spec.data)
    return spec.replace(data=data, model=resolve_model(spec.model, data), poison=resolve_poison(spec.poison, data),
                        defense=resolve_defense(spec.defense) or DefenseSpec())


def running_baseline_caveat(spec: ExperimentSpec) -> str | None:
    """The note UD carries when SAL's running L_0 and its L_min/L_max see different images (a batch defense).

    A batch defense (cutout, mixup, adversarial training) transforms the batches the trainer learns from, so the
    epoch's running loss (the authors' L_0) is the defended loss, while L_min and L_max are evaluated on the
    untransformed training images: the gap enters every layer's S_min alike, in both runs.
    """
    if spec.sal.baseline != "running" or spec.defense.is_none or DEFENSES.get(spec.defense.name).kind != "batch":
        return None
    return (f"defense {defense_label(spec.defense)}: SAL's running L_0 is the loss of the defended batches, while "
            "L_min and L_max are evaluated on the untransformed training images, so every layer's S_min carries "
            "that gap (in both runs); SAL's baseline='fresh' compares like with like")


@dataclass(frozen=True)
class UDStage(Stage[UDReport]):
    """β, the per-epoch learnable-layer counts of both runs, UD and our continuous measures (`UDReport`)."""

    folder = "ud"
    spec: ExperimentSpec

    @classmethod
    def of(cls, spec: ExperimentSpec) -> UDStage:
        return cls(resolve_experiment(spec))

    @property
    def data(self) -> DataSpec:  # type: ignore[override]
        return self.spec.data

    def parts(self) -> tuple[Spec, ...]:
        return (self.spec, Version(UD_VERSION))

    def record(self) -> dict[str, Any]:
        return self.spec.to_dict()

    def run(self, poison: PoisonSpec) -> TrainStage:
        """The training run of the experiment on `poison` (the clean run for `PoisonSpec()`)."""
        s = self.spec
        return TrainStage.of(s.data, s.model, s.train, poison, defense=s.defense)

    def sal(self, poison: PoisonSpec) -> Stage[SALTrace]:
        """Where SAL of the run on `poison` lives."""
        s = self.spec
        return sal_stage(s.data, s.model, s.train, poison, s.sal, defense=s.defense)

    def compute(self, ctx: Context) -> Computed:
        clean, poisoned = (self.sal(p).get(ctx) for p in (PoisonSpec(), self.spec.poison))
        ctx.progress("ud", 0, 1)
        report = unlearnable_distance(clean, poisoned)
        caveat = running_baseline_caveat(self.spec)
        if caveat is not None:
            report.notes.append(caveat)
        return {"ud": report.to_dict()}, {}

    def decode(self, entry: Entry) -> UDReport:
        return UDReport.from_dict(entry.meta["ud"])

    def inputs(self) -> tuple[Stage[Any], ...]:
        return (self.sal(PoisonSpec()), self.sal(self.spec.poison))
