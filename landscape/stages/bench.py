"""The benchmark-cell stage: the summary row of one UD-benchmark cell (method x defense x seed, `landscape.bench`).

A cell trains a clean reference and a poisoned model under the same defense, both with SAL per epoch, and
reports clean test accuracy and UD (Ye, Su, Qian, ICLR 2025). The runs, their SAL and the UD are the
experiment's own stages (shared with every other caller); this stage stores the row built from them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from landscape.config import DataSpec, DefenseSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, Spec, TrainSpec
from landscape.defenses import defense_label
from landscape.experiment import ExperimentResult, run_experiment
from landscape.stages.base import Computed, Context, Stage, Version, resolve_data, resolve_defense, resolve_model
from landscape.stages.ud import UD_VERSION, UDStage, resolve_experiment
from landscape.store import Entry

CELL_VERSION = 2  # bump when the row's fields change
ROW_FIELDS = ("dataset", "model", "method", "defense", "seed", "clean_acc", "poisoned_acc", "ud", "ud_defined",
              "lp_clean", "lp_poisoned", "beta", "w1", "mean_ratio", "epochs", "diverged", "seconds", "cell")


@dataclass(frozen=True)
class Cell(Spec):
    """One benchmark cell: method x defense x seed on fixed data, model, training and SAL settings.

    The seed sets the training seed (initialisation, shuffling, augmentation, the defense's randomness), the
    poison's crafting seed and the SAL seed; the data split is the same for every cell (`data.split_seed`).
    """

    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    sal: SALSpec
    method: str
    defense: DefenseSpec
    seed: int

    @property
    def poison(self) -> PoisonSpec:
        return PoisonSpec(method=self.method, seed=self.seed)

    @property
    def label(self) -> str:
        return f"{self.method}/{defense_label(self.defense)}/seed{self.seed}"

    def experiment(self) -> ExperimentSpec:
        """The cell's experiment: its clean reference and poisoned run share data, model, seed and defense."""
        return ExperimentSpec(data=self.data, model=self.model, train=self.train.replace(seed=self.seed),
                              poison=self.poison, sal=self.sal.replace(seed=self.seed), defense=self.defense)


def summary_row(cell: Cell, result: ExperimentResult) -> dict[str, Any]:
    """The benchmark row of a cell's experiment (the fields of `ROW_FIELDS` but `seconds`)."""
    s = result.summary()
    return {
        "dataset": cell.data.name, "model": cell.model.name, "method": cell.method,
        "defense": defense_label(cell.defense), "seed": cell.seed, "clean_acc": s["clean_test_acc"],
        "poisoned_acc": s["poisoned_test_acc"], "ud": s["ud"], "ud_defined": s["ud_defined"],
        "lp_clean": s["lp_clean"], "lp_poisoned": s["lp_poisoned"], "beta": s["beta"], "w1": s["w1_overall"],
        "mean_ratio": s["mean_ratio_overall"], "epochs": cell.train.epochs,
        "diverged": bool(s["diverged"]["clean"] or s["diverged"]["poisoned"]), "cell": cell.key(),
    }


@dataclass(frozen=True)
class BenchCell(Stage[dict[str, Any]]):
    """The summary row of a cell (`ROW_FIELDS`), from its experiment's stages."""

    folder = "bench-cell"
    cell: Cell

    @classmethod
    def of(cls, cell: Cell) -> BenchCell:
        data = resolve_data(cell.data)
        resolved = cell.replace(data=data, model=resolve_model(cell.model, data),
                                defense=resolve_defense(cell.defense) or DefenseSpec())
        return cls(resolved)

    @property
    def data(self) -> DataSpec:  # type: ignore[override]
        return self.cell.data

    def parts(self) -> tuple[Spec, ...]:
        # The cell names its method only; the poison its experiment runs (eps, every option resolved) keys the
        # row, so a changed default or a new option of the method never serves a row computed under the old one.
        return (self.cell, resolve_experiment(self.cell.experiment()).poison, Version(UD_VERSION),
                Version(f"cell-{CELL_VERSION}"))

    def record(self) -> dict[str, Any]:
        return self.cell.to_dict()

    def compute(self, ctx: Context) -> Computed:
        started = time.perf_counter()
        result = run_experiment(self.cell.experiment(), store=ctx.store, device=ctx.device)
        return {"row": {**summary_row(self.cell, result), "seconds": time.perf_counter() - started}}, {}

    def decode(self, entry: Entry) -> dict[str, Any]:
        return dict(entry.meta["row"])

    def inputs(self) -> tuple[Stage[Any], ...]:
        return (UDStage.of(self.cell.experiment()),)
