"""The cross-task stage (DESIGN §5.6): one task model trained on one condition, and the probe assembled from them.

Each (task, condition) run is one store entry, keyed by data, task, training recipe, the (resolved) poison
and SAL, and so is the UD of each poisoned run against its task's clean run; `run_cross_task` only assembles
them, so a re-render or a second CLI call recomputes nothing.
The poisons are crafted against classification exactly as elsewhere (`PoisonStage`, shared cache) and
change the images only; the targets always come from the clean images (`landscape.multitask`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from landscape.config import DataSpec, PoisonSpec, SALSpec, Spec, TrainSpec
from landscape.errors import SpecError
from landscape.multitask import CLEAN, CrossTaskResult, CrossTaskSpec, TaskRun, TaskSpec, task_ud, training_pair
from landscape.sal import SALTracker
from landscape.stages.base import (
    Computed,
    Context,
    Stage,
    StageProgress,
    Version,
    get_splits,
    no_progress,
    resolve_data,
    resolve_poison,
)
from landscape.stages.poison import poison_stages, poisoned_train
from landscape.stages.ud import UD_VERSION
from landscape.store import Entry, Store
from landscape.tasks import get_task
from landscape.train import evaluate_task, train
from landscape.ud import UDReport

STAGE = "crosstask-v1"  # bump when a task's targets, model or metrics change (they are not part of the specs)


@dataclass(frozen=True)
class TaskRunStage(Stage[TaskRun]):
    """The model of one task trained on one condition's images (`TaskRun`: history, metrics, SAL)."""

    folder = STAGE
    data: DataSpec
    task: TaskSpec
    train: TrainSpec
    poison: PoisonSpec
    sal: SALSpec | None

    @classmethod
    def of(cls, spec: CrossTaskSpec, task: str, condition: str) -> TaskRunStage:
        data = resolve_data(spec.data)
        return cls(data, TaskSpec(task, spec.width), spec.train, resolve_poison(spec.poison(condition), data),
                   spec.sal)

    def parts(self) -> tuple[Spec | None, ...]:
        return (self.data, self.task, self.train, self.poison, self.sal)

    def record(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "task": self.task.to_dict(), "train": self.train.to_dict(),
                "poison": self.poison.to_dict(), "sal": None if self.sal is None else self.sal.to_dict()}

    def compute(self, ctx: Context) -> Computed:
        task = get_task(self.task.name)
        condition = CLEAN if self.poison.is_clean else self.poison.method
        stage = f"{task.name} · {condition}"
        splits = get_splits(self.data)
        images, train_targets = training_pair(task, splits.train, poisoned_train(self.data, self.poison, ctx))
        test_targets = task.targets(splits.test.x, splits.test.y)
        model = task.build(splits.image_shape, splits.num_classes, width=self.task.width, seed=self.train.seed)
        tracker = SALTracker(self.sal, loss=task) if self.sal is not None else None
        started = time.perf_counter()
        result = train(model, images, splits.test, self.train, device=ctx.torch_device(),
                       callbacks=[tracker] if tracker else [],
                       progress=ctx.reporter(stage),
                       task=task, train_targets=train_targets, test_targets=test_targets)
        loss, stats = evaluate_task(model, splits.test.x, test_targets, task)
        run = TaskRun(task.name, condition, result.history, {**task.metrics(stats), "loss": loss},
                      tracker.trace() if tracker else None, result.diverged, time.perf_counter() - started)
        return run.to_store()

    def decode(self, entry: Entry) -> TaskRun:
        return TaskRun.from_store(entry.meta, entry.arrays)

    def inputs(self) -> tuple[Stage[Any], ...]:
        return poison_stages(self.data, self.poison)


@dataclass(frozen=True)
class TaskUDStage(Stage[UDReport]):
    """UD of one task's model trained on one poison's images, β from the task's clean model (`UDReport`).

    Stored beside the runs so that showing a probe reads its table instead of fitting KMeans at every epoch of
    every task (and importing scikit-learn and SciPy for it): the Cross-task page's first visit.
    """

    folder = f"{STAGE}-ud"
    data: DataSpec
    task: TaskSpec
    train: TrainSpec
    poison: PoisonSpec
    sal: SALSpec

    @classmethod
    def of(cls, spec: CrossTaskSpec, task: str, method: str) -> TaskUDStage:
        if spec.sal is None:
            raise SpecError("this cross-task probe measures no SAL (CrossTaskSpec.sal is None), so it has no UD; "
                            "give it a SALSpec (on the command line: leave out --no-sal)")
        run = TaskRunStage.of(spec, task, method)
        return cls(run.data, run.task, run.train, run.poison, spec.sal)

    def parts(self) -> tuple[Spec | None, ...]:
        return (*self.runs()[1].parts(), Version(UD_VERSION))  # the poisoned run's key parts

    def record(self) -> dict[str, Any]:
        return self.runs()[1].record()

    def runs(self) -> tuple[TaskRunStage, TaskRunStage]:
        """The task's clean run and its run on the poison's images."""
        clean = TaskRunStage(self.data, self.task, self.train, resolve_poison(PoisonSpec(), self.data), self.sal)
        return clean, TaskRunStage(self.data, self.task, self.train, self.poison, self.sal)

    def compute(self, ctx: Context) -> Computed:
        clean, poisoned = (stage.get(ctx) for stage in self.runs())
        return {"ud": task_ud(clean, poisoned).to_dict()}, {}

    def decode(self, entry: Entry) -> UDReport:
        return UDReport.from_dict(entry.meta["ud"])

    def inputs(self) -> tuple[Stage[Any], ...]:
        return self.runs()


def run_stages(spec: CrossTaskSpec) -> dict[tuple[str, str], TaskRunStage]:
    """The stage of every (task, condition) run of `spec`, by (task, condition) (nothing is computed)."""
    return {(t, c): TaskRunStage.of(spec, t, c) for t in spec.tasks for c in spec.conditions}


def ud_stages(spec: CrossTaskSpec) -> dict[tuple[str, str], TaskUDStage]:
    """The UD stage of every (task, poison method) of `spec`, by (task, method); none if it measures no SAL."""
    if spec.sal is None:
        return {}
    return {(t, m): TaskUDStage.of(spec, t, m) for t in spec.tasks for m in spec.methods}


def missing_runs(spec: CrossTaskSpec, store: Store) -> list[tuple[str, str]]:
    """The (task, condition) runs of `spec` not yet in the store (nothing is computed)."""
    return [run for run, stage in run_stages(spec).items() if not stage.exists(store)]


def load_cross_task(spec: CrossTaskSpec, store: Store) -> CrossTaskResult | None:
    """The stored result of `spec`, or None if any run is missing (nothing is computed)."""
    runs = {}
    for run, stage in run_stages(spec).items():
        loaded = stage.load(store)
        if loaded is None:
            return None
        runs[run] = loaded
    uds = {pair: report for pair, stage in ud_stages(spec).items() if (report := stage.load(store)) is not None}
    return CrossTaskResult(spec, runs, uds)  # a UD not stored (a probe stored before TaskUDStage) is computed


def run_cross_task(spec: CrossTaskSpec, *, store: Store, device: torch.device | str = "cpu",
                   progress: StageProgress = no_progress) -> CrossTaskResult:
    """Train (or load) every (task, condition) model of `spec` and return them together.

    Progress is reported per run as `progress("<task> · <condition>", epoch, epochs)`, plus the crafting
    stages of the poisons, and `progress("cross-task", runs_done, runs_total)` once a run has been computed (a
    probe read whole from the store reports nothing).
    """
    computed = False

    def reporting(stage: str, done: int, total: int) -> None:
        nonlocal computed
        computed = True
        progress(stage, done, total)

    ctx, stages = Context(store, device, reporting), run_stages(spec)
    runs: dict[tuple[str, str], TaskRun] = {}
    for run, stage in stages.items():
        runs[run] = stage.get(ctx)
        if computed:
            progress("cross-task", len(runs), len(stages))
    return CrossTaskResult(spec, runs, {pair: stage.get(ctx) for pair, stage in ud_stages(spec).items()})


def estimate_seconds(spec: CrossTaskSpec, n_runs: int | None = None) -> float:
    """Rough single-thread CPU seconds of `n_runs` runs of `spec` (default: all), crafting not included.

    Measured on digits with the 6-layer task models: ~0.2 s per training epoch over 1437 8x8 images and
    ~2 s per SAL measurement on 512 images; both scaled linearly by the number of input values.
    """
    splits = get_splits(spec.data)
    n_runs = len(spec.tasks) * len(spec.conditions) if n_runs is None else n_runs
    pixels = int(np.prod(splits.image_shape))
    seconds = spec.train.epochs * 0.2 * len(splits.train) * pixels / (1437 * 64)
    if spec.sal is not None:
        epochs = range(1, spec.train.epochs + 1)
        measured = sum(1 for e in epochs if e % spec.sal.every == 0 or e == spec.train.epochs)
        sal_rows = min(spec.sal.eval_size or len(splits.train), len(splits.train))
        seconds += measured * 2.0 * sal_rows * pixels / (512 * 64)
    return n_runs * seconds
