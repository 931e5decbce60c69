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


CAVEAT_END = ", so every layer's S_min carries that gap (in both runs); SAL's baseline='fresh' compares like with like"


def running_baseline_caveat(spec: ExperimentSpec) -> str | None:
    """The note UD carries when SAL's running L_0 and its L_min/L_max see different images; None when they do not.

    SAL's running L_0 (the authors' baseline) is the epoch's running loss over the batches the trainer learnt from,
    while L_min and L_max are evaluated on the SAL engine's own images; the gap enters every layer's S_min alike,
    in both runs. Two things make those images differ:

    - a batch defense (cutout, mixup, adversarial training) transforms the trainer's batches; no SAL engine does;
    - a training recipe that augments (`TrainSpec.augment` != "none"): the trainer's batches are randomly cropped
      (and flipped), while the "batched" engine (the default) evaluates the unaugmented images, as does the
      "reference" engine unless `SALSpec.augment` (the paper preset's setting) applies the trainer's augmentation.

    `baseline="fresh"` evaluates L_0 on the same images as L_min and L_max, so it never gets the note.
    """
    if spec.sal.baseline != "running":
        return None
    causes = []
    if not spec.defense.is_none and DEFENSES.get(spec.defense.name).kind == "batch":
        causes.append(f"defense {defense_label(spec.defense)}: SAL's running L_0 is the loss of the defended "
                      "batches, while L_min and L_max are evaluated on the untransformed training images")
    t = spec.train
    if t.augment != "none" and not (spec.sal.engine == "reference" and spec.sal.augment):
        engine = "batched engine" if spec.sal.engine == "batched" else "reference engine without SALSpec.augment"
        causes.append(f"training augmentation {t.augment} (random crop after {t.crop_padding}-px padding"
                      f"{', horizontal flip' if t.augment == 'crop_flip' else ''}): SAL's running L_0 is the loss "
                      f"of the augmented batches, while the {engine} evaluates L_min and L_max on the unaugmented "
                      "training images")
    if not causes:
        return None
    return "; ".join(causes) + CAVEAT_END


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
        ctx.progress("ud", 0, 1)  # reported only when computed: a stored UD is read without a word
        report = unlearnable_distance(clean, poisoned).to_dict()
        ctx.progress("ud", 1, 1)
        return {"ud": report}, {}

    def decode(self, entry: Entry) -> UDReport:
        """The stored report with today's caveat of its spec (`running_baseline_caveat`), not the one stored with it.

        The caveat follows from the spec alone, so it is added on loading: an entry stored before a caveat changed
        (e.g. before the augmenting recipe's note) reads as a new one does, under the same key.
        """
        report = UDReport.from_dict(entry.meta["ud"])
        report.notes = [n for n in report.notes if not n.endswith(CAVEAT_END)]  # an older entry's stored caveat
        caveat = running_baseline_caveat(self.spec)
        if caveat is not None:
            report.notes.append(caveat)
        return report

    def inputs(self) -> tuple[Stage[Any], ...]:
        return (self.sal(PoisonSpec()), self.sal(self.spec.poison))
