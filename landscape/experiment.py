"""The one orchestrator: spec -> data -> poison -> train -> (SAL, surfaces, UD), each stage cached in the store.

Pages, the CLI and the Python API call these functions (or ask the stage layer, `landscape.stages`, whether
a result is stored), so a result seen in the app is the result the CLI prints. Every function resolves its
specs, keys and caches through the stage layer. Progress is reported as `progress(stage, done, total)`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from landscape.config import (
    CurvatureSpec,
    DataSpec,
    DefenseSpec,
    ExperimentSpec,
    LayerSliceSpec,
    ModelSpec,
    PoisonSpec,
    SALSpec,
    SurfaceSpec,
    TrainSpec,
)
from landscape.curvature import CurvatureTrace
from landscape.data import ImageSet
from landscape.display import experiment_line, experiment_rows, experiment_title, html_table
from landscape.sal import SALTrace
from landscape.stages.base import Context, StageProgress, get_splits, no_progress
from landscape.stages.curvature import CurvatureStage
from landscape.stages.poison import poisoned_train
from landscape.stages.pool import compute_concurrently, parse_workers
from landscape.stages.surface import LayerSliceStage, SurfaceStage
from landscape.stages.train import TrainStage, sal_stage
from landscape.stages.ud import UDStage
from landscape.store import Store
from landscape.surface_results import SurfaceSet
from landscape.train import TrainResult
from landscape.ud import UDReport, import_dependencies

__all__ = ["ExperimentResult", "get_curvature", "get_layer_slices", "get_poisoned_train", "get_splits", "get_surface",
           "get_training", "run_experiment"]


def get_poisoned_train(data: DataSpec, poison: PoisonSpec, *, store: Store, device: torch.device | str = "cpu",
                       progress: StageProgress = no_progress) -> ImageSet:
    """The training split with the poison of `poison` applied (the clean split when `method == "clean"`)."""
    return poisoned_train(data, poison, Context(store, device, progress))


def get_training(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec | None = None, *,
                 store: Store, device: torch.device | str = "cpu",
                 progress: StageProgress = no_progress, sal: SALSpec | None = None,
                 defense: DefenseSpec | None = None) -> TrainResult:
    """Train `model` on the (poisoned) training split and return its trajectory, cached by all four specs.

    With `sal`, SAL of every weight layer is measured after each `sal.every`-th epoch (and the last) and
    returned with the run: `landscape.sal.SALTrace.from_dict(result.extras["sal"])`. SAL is a cached stage of its
    own ("sal-<method>", `landscape.stages.train.sal_stage`) and the run is the same entry with or without it,
    shared with surfaces, curvature and every other caller. When the run keeps every epoch's float32 weights
    (`checkpoint_every=1`, the default), SAL is measured on the stored checkpoints after training, so one run
    serves every SAL setting. Otherwise a trainer callback measures it while the run trains, and that training
    stores the run too (so it is trained once); the numbers are bit-identical either way (tested).
    With a `defense` other than "none" (`landscape.defenses`), its preprocessing is applied to the (poisoned)
    training images once before training and its batch transform to every batch; the key then includes it.
    """
    ctx = Context(store, device, progress)
    stage = TrainStage.of(data, model, train_spec, poison, defense=defense)
    if sal is None:
        return stage.get(ctx)
    trace = sal_stage(data, model, train_spec, poison, sal, defense=defense).get(ctx)  # first: it may train the run
    run = stage.get(ctx)
    run.extras["sal"] = trace.to_dict()
    return run


def get_surface(data: DataSpec, model: ModelSpec, train_spec: TrainSpec,
                poisons: PoisonSpec | Sequence[PoisonSpec] | None, surface: SurfaceSpec, *, store: Store,
                device: torch.device | str = "cpu", progress: StageProgress = no_progress) -> SurfaceSet:
    """Loss/accuracy surfaces of the clean run and the poisoned run(s), cached by every spec involved.

    Trains (or loads) the clean run and one run per poison, then slices by `surface.kind` (see
    `landscape.stages.surface.SurfaceStage`). Progress stages: the training stages, then "surface" in
    point-batches.
    """
    return SurfaceStage.of(data, model, train_spec, poisons, surface).get(Context(store, device, progress))


def get_curvature(data: DataSpec, model: ModelSpec, train_spec: TrainSpec, poison: PoisonSpec | None,
                  curvature: CurvatureSpec, *, store: Store, device: torch.device | str = "cpu",
                  progress: StageProgress = no_progress, defense: DefenseSpec | None = None) -> CurvatureTrace:
    """λ_max, trace and spectral density of every layer (and the whole model) at the run's stored epochs.

    Trains (or loads) the run, then measures its checkpoints (`landscape.stages.curvature.CurvatureStage`).
    Progress stages: the training stages, then "curvature-<run>" in Hessian blocks.
    """
    stage = CurvatureStage.of(data, model, train_spec, poison, curvature, defense=defense)
    return stage.get(Context(store, device, progress))


def get_layer_slices(data: DataSpec, model: ModelSpec, train_spec: TrainSpec,
                     poisons: PoisonSpec | Sequence[PoisonSpec] | None, layer_slice: LayerSliceSpec, *, store: Store,
                     device: torch.device | str = "cpu", progress: StageProgress = no_progress,
                     defense: DefenseSpec | None = None) -> SurfaceSet:
    """Slices along one layer's directions of the clean run and the poisoned run(s) at one stored epoch.

    One surface per run, labelled "clean" and by poison method, on one grid of normalised coordinates with the SAL
    ball in `info["sal_ball"]` (`landscape.layer_slices`). Progress stages: the training stages, then "layer-slice".
    """
    stage = LayerSliceStage.of(data, model, train_spec, poisons, layer_slice, defense=defense)
    return stage.get(Context(store, device, progress))


@dataclass(repr=False)
class ExperimentResult:
    """Everything one clean-vs-poisoned experiment produced.

    Attributes:
        spec: the experiment's spec.
        clean, poisoned: the two training runs (history, checkpoints); `poisoned is clean` for method "clean".
        sal_clean, sal_poisoned: SAL of every weight layer at every measured epoch, (T, L) arrays.
        ud: β, per-epoch learnable counts and flags of both runs, UD and the continuous measures.
    """

    spec: ExperimentSpec
    clean: TrainResult
    poisoned: TrainResult
    sal_clean: SALTrace
    sal_poisoned: SALTrace
    ud: UDReport

    def summary(self) -> dict[str, Any]:
        """Headline numbers: final accuracies, β, #LP, UD, per-epoch counts and the continuous measures."""
        def final(run: TrainResult, key: str) -> float | None:
            values = run.history[key]
            return float(values[-1]) if len(values) else None

        return {
            "dataset": self.spec.data.name, "model": self.spec.model.name, "method": self.spec.poison.method,
            "sal": self.spec.sal.preset_name, "epochs": self.spec.train.epochs,
            "clean_test_acc": final(self.clean, "test_acc"), "poisoned_test_acc": final(self.poisoned, "test_acc"),
            "clean_train_acc": final(self.clean, "train_acc"),
            "poisoned_train_acc": final(self.poisoned, "train_acc"),
            "diverged": {"clean": self.clean.diverged, "poisoned": self.poisoned.diverged},
            **self.ud.summary(),
            "counts_clean": self.ud.counts_clean.tolist(), "counts_poisoned": self.ud.counts_poisoned.tolist(),
            "layers": list(self.sal_clean.layers),
            "w1_layers": None if self.ud.w1_layers is None else self.ud.w1_layers.tolist(),
            "mean_ratio_layers": None if self.ud.mean_ratio_layers is None else self.ud.mean_ratio_layers.tolist(),
            "notes": list(self.ud.notes),
            "sal_seconds": float(self.sal_clean.seconds.sum() + (0.0 if self.poisoned is self.clean
                                                                  else self.sal_poisoned.seconds.sum())),
        }

    def sal_table(self) -> list[dict[str, Any]]:
        """Rows run x measured epoch x layer: each run's `SALTrace.table` (the app's SAL table) with UD's view of it.

        The columns added to `SALTrace.table`'s:

        - ``learnable``: the layer counts as learnable at that epoch (SAL > β, `UDReport.flags_clean` /
          ``flags_poisoned``; False at an epoch UD leaves out);
        - ``beta_t``: that epoch's midpoint of the clean run's SAL (`UDReport.betas`; None where the clean run has
          no finite SAL at that epoch);
        - ``beta``: β, the mean of the β_t, the threshold ``learnable`` compares with.

        The runs are "clean" and the poison's method (the clean run only when the method is "clean").
        """
        ud = self.ud
        beta_t = {int(e): float(b) for e, b in zip(ud.epochs_clean, ud.betas, strict=True) if np.isfinite(b)}
        runs = [("clean", self.sal_clean, ud.flags_clean)]
        if self.poisoned is not self.clean:
            runs.append((self.spec.poison.method, self.sal_poisoned, ud.flags_poisoned))
        rows = []
        for run, trace, flags in runs:
            t_of = {int(e): t for t, e in enumerate(trace.epochs)}
            j_of = {layer: j for j, layer in enumerate(trace.layers)}
            rows.extend({**row, "learnable": bool(flags[t_of[row["epoch"]], j_of[row["layer"]]]),
                         "beta_t": beta_t.get(row["epoch"]), "beta": ud.beta} for row in trace.table(run))
        return rows

    def __repr__(self) -> str:
        return f"ExperimentResult({experiment_line(self.summary())})"

    def _repr_html_(self) -> str:
        s = self.summary()
        return html_table(f"ExperimentResult: {experiment_title(s)}", experiment_rows(s),
                          "Figures: landscape.figures.experiment_figures(result); rows per run, epoch and layer: "
                          "result.sal_table()")


def run_experiment(spec: ExperimentSpec, *, store: Store, device: torch.device | str = "cpu",
                   progress: StageProgress = no_progress, workers: int = 1) -> ExperimentResult:
    """Data -> (craft the UE) -> train clean and poisoned with SAL every epoch -> UD, every stage cached.

    Progress stages: "craft" (if the poison is not cached), "train-clean", "train-<method>" (one step per
    epoch), "sal-clean", "sal-<method>" (one step per measured epoch; none when the runs do not keep every
    epoch's weights: SAL is then measured while they train), "ud". Only stages that compute report: with every
    stage stored, nothing is reported.

    With `workers` > 1 the two independent chains, the clean run with its SAL and (crafting the poison, then)
    the poisoned run with its SAL, are computed side by side in worker processes on the CPU
    (`landscape.stages.pool`), then loaded here; the numbers are those of `workers=1`, bit for bit (tested).
    """
    def run(poison: PoisonSpec) -> TrainResult:
        return get_training(spec.data, spec.model, spec.train, poison, store=store, device=device,
                            progress=progress, sal=spec.sal, defense=spec.defense)

    ud = UDStage.of(spec)  # resolves every name and option first: a bad one fails before the clean run trains
    if parse_workers(workers) > 1:
        chains = [ud.sal(ud.spec.poison), ud.sal(PoisonSpec())]  # the longer chain (crafting first) starts first
        compute_concurrently(chains, Context(store, device, progress), workers, meanwhile=import_dependencies)
    clean = run(PoisonSpec())
    poisoned = clean if spec.poison.is_clean else run(spec.poison)
    report = ud.get(Context(store, device, progress))
    return ExperimentResult(spec, clean, poisoned, SALTrace.from_dict(clean.extras["sal"]),
                            SALTrace.from_dict(poisoned.extras["sal"]), report)
