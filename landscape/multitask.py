"""The cross-task probe (DESIGN §5.6): do unlearnable examples crafted against classification stop other tasks?

For every task of `landscape.tasks` defined on the data set and every condition (clean, then each poison
of the spec), one model is trained from scratch with the one trainer (`landscape.train.train`) on the
condition's training images, with that task's targets computed from the *clean* training images; SAL is
measured per layer and epoch with the task's own loss; every model is evaluated on the clean test set.
The poisons are crafted against classification exactly as elsewhere in the app
(`landscape.experiment.get_poisoned_train`, shared cache) and change the images only.

Why one model per task and not a shared backbone with task heads: the question is whether the poison stops
*learning of task T*; a shared backbone would mix in the classification gradient (the task the poison
targets) and a task-weighting choice, and the paper itself attributes its multi-task result partly to task
conflicts. Separate models isolate the effect, give each task a clean reference for UD (β from that task's
clean model) and are cached and re-used independently. The dense models share the `cnn`'s conv
architecture (and initial weights) so SAL vectors line up by depth for the cosine-similarity view (the
paper's Fig. 5).

Each (task, condition) run is one store entry of the stage layer (`landscape.stages.crosstask`, which also
runs and loads the whole probe); this module holds the specs, the run record and the views built from runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from landscape.config import CLEAN, DataSpec, PoisonSpec, SALSpec, Spec, TrainSpec, bounded
from landscape.data import ImageSet
from landscape.display import listed, number
from landscape.errors import ShapeError, SpecError
from landscape.spec import plural
from landscape.tasks import TASKS, Task, get_task, tasks_for
from landscape.train import HISTORY_KEYS

# The dense task models and the `cnn` share their first four weight layers' architecture (the encoder).
ENCODER_LAYERS = 4
# One recipe for every task and condition, chosen on the clean digits runs only (every task's clean test
# metric near its plateau in 30 epochs; SGD at the classification default (lr 0.05) left edges and reconstruction
# far from it).
DEFAULT_TRAIN = TrainSpec(epochs=30, batch_size=64, optimizer="adam", lr=3e-3, weight_decay=0.0)
DEFAULT_METHODS = ("em", "ops", "ar")
# SAL with the project's default engine on a fixed 512-image subset, every 5th epoch (and the last): the
# whole digits probe (4 tasks x 4 conditions) then stays within minutes on a laptop CPU.
DEFAULT_SAL = SALSpec().replace(eval_size=512, every=5)


@dataclass(frozen=True)
class TaskSpec(Spec):
    """Which task, and the width multiplier of its model.

    Args:
        name: a registered task ("classify", "segment", "edges", "reconstruct").
        width: channel multiplier of the task's model (1 = the digits `cnn` widths).
    """

    name: str = "classify"
    width: int = bounded(1, 1, 16)

    def check(self) -> None:
        TASKS.check(self.name)


@dataclass(frozen=True)
class CrossTaskSpec(Spec):
    """A whole cross-task probe: data, tasks, the poisons (crafted against classification), training and SAL.

    Args:
        data: the data set.
        tasks: task names; () = every task defined on the data set.
        poisons: the poisons to compare with clean training (each crafted against classification; `seed`
            as given). Build the usual ones with `CrossTaskSpec.for_methods`.
        train: the training recipe of every task model (augmentation must be "none": dense targets would
            not move with the images).
        sal: how SAL is measured per epoch (None = no SAL, hence no UD).
        width: width multiplier of every task model.
    """

    data: DataSpec = field(default_factory=DataSpec)
    tasks: tuple[str, ...] = ()
    poisons: tuple[PoisonSpec, ...] = field(default_factory=lambda: tuple(PoisonSpec(method=m)
                                                                          for m in DEFAULT_METHODS))
    train: TrainSpec = DEFAULT_TRAIN
    sal: SALSpec | None = DEFAULT_SAL
    width: int = bounded(1, 1, 16)

    def check(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks) or tuple(tasks_for(self.data.name)))
        object.__setattr__(self, "poisons", tuple(self.poisons))
        for name in self.tasks:
            task = get_task(name)
            if not task.supports(self.data.name):
                raise SpecError(f"task {name!r} is not defined on {self.data.name!r}; valid tasks there: "
                                f"{', '.join(tasks_for(self.data.name))}")
        methods = [p.method for p in self.poisons]
        if not methods:
            raise SpecError("a cross-task probe needs at least one poison method (e.g. em,tap,ar); none was given")
        if CLEAN in methods:
            raise SpecError(f"clean training is always included; list only poison methods, got {methods}: "
                            f"leave out {CLEAN!r}")
        if len(set(methods)) != len(methods):
            raise SpecError(f"each poison method may appear once, got {methods}")
        if self.train.augment != "none":
            raise SpecError(f"cross-task training needs TrainSpec.augment = 'none' (got {self.train.augment!r}): "
                            "augmentation would move the images but not their dense targets")

    @classmethod
    def for_methods(cls, methods: Sequence[str], *, seed: int = 0, **kwargs: Any) -> CrossTaskSpec:
        """A spec with each method at its default budget for the data set; `seed` seeds poisons and models.

        The stage layer fills in each method's defaults (eps and every option) before keying a run
        (`landscape.stages.crosstask`), so the cache key changes whenever a method's documented default does.
        """
        train_spec = kwargs.pop("train", DEFAULT_TRAIN).replace(seed=seed)
        return cls(poisons=tuple(PoisonSpec(method=m, seed=seed) for m in methods), train=train_spec, **kwargs)

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(p.method for p in self.poisons)

    @property
    def conditions(self) -> tuple[str, ...]:
        """"clean", then every poison method."""
        return (CLEAN, *self.methods)

    def poison(self, condition: str) -> PoisonSpec:
        """The poison spec of a condition ("clean" gives `PoisonSpec()`)."""
        if condition == CLEAN:
            return PoisonSpec()
        for p in self.poisons:
            if p.method == condition:
                return p
        raise SpecError(f"no condition {condition!r}; valid: {', '.join(self.conditions)}")


@dataclass(repr=False)
class TaskRun:
    """One trained task model: per-epoch history, final clean-test metrics and SAL.

    Attributes:
        task: task name.
        condition: "clean" or the poison method the training images carry.
        history: the trainer's per-epoch arrays; `train_acc`/`test_acc` hold the task's primary metric.
        metrics: every metric of the final model on the clean test set, plus its mean test "loss".
        sal: the SAL trace (None if SAL was not measured).
        diverged: None, or why training stopped early.
        seconds: wall time of training (SAL included).
    """

    task: str
    condition: str
    history: dict[str, np.ndarray]
    metrics: dict[str, float]
    sal: Any | None = None
    diverged: str | None = None
    seconds: float = 0.0

    def __repr__(self) -> str:
        shown = ", ".join(f"{k} {number(v)}" for k, v in list(self.metrics.items())[:4])
        sal = "no SAL" if self.sal is None else repr(self.sal)
        epochs = plural(len(self.history.get("train_loss", ())), "epoch")
        return (f"TaskRun({self.task} under {self.condition}, {epochs}: {shown or 'no metrics'}; {sal}"
                + (", diverged)" if self.diverged else ")"))

    def to_store(self) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
        meta = {"task": self.task, "condition": self.condition, "metrics": self.metrics, "diverged": self.diverged,
                "seconds": self.seconds, "sal": None if self.sal is None else self.sal.to_dict()}
        return meta, {f"history/{k}": np.asarray(v) for k, v in self.history.items()}

    @classmethod
    def from_store(cls, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> TaskRun:
        from landscape.sal import SALTrace

        sal = None if meta["sal"] is None else SALTrace.from_dict(meta["sal"])
        history = {k: arrays[f"history/{k}"] for k in HISTORY_KEYS}
        return cls(meta["task"], meta["condition"], history, dict(meta["metrics"]), sal, meta["diverged"],
                   float(meta["seconds"]))


def training_pair(task: Task, clean: ImageSet, images: ImageSet) -> tuple[ImageSet, torch.Tensor]:
    """The images a task model trains on and their targets, computed from the clean set only.

    Args:
        task: the task.
        clean: the clean training split (the source of the targets).
        images: the same split as the model sees it (clean or poisoned), aligned one to one with `clean`.

    Returns:
        (`images`, targets of `clean`).
    """
    if images.x.shape != clean.x.shape or not torch.equal(images.y, clean.y):
        why = (f"images {tuple(images.x.shape)} vs clean {tuple(clean.x.shape)}" if images.x.shape != clean.x.shape
               else f"{int((images.y != clean.y).sum())} of {len(clean.y)} labels differ")
        raise ShapeError(f"the poisoned training set must be the clean one image for image (same shape and labels): "
                         f"{why}")
    return images, task.targets(clean.x, clean.y)


def relative_drop(clean: float, poisoned: float, higher_is_better: bool) -> float:
    """How much worse the poisoned-trained metric is, as a fraction of the clean one (> 0 = worse, < 0 = better)."""
    if not np.isfinite(clean) or clean == 0:
        return float("nan")
    change = (clean - poisoned) if higher_is_better else (poisoned - clean)
    return float(change / abs(clean))


def task_ud(clean: TaskRun, poisoned: TaskRun) -> Any | None:
    """The `UDReport` of a task's poisoned run, β from that task's clean run (None without SAL)."""
    if clean.sal is None or poisoned.sal is None:
        return None
    from landscape.ud import unlearnable_distance

    return unlearnable_distance(clean.sal, poisoned.sal)


@dataclass(repr=False)
class CrossTaskResult:
    """Every run of a cross-task probe, with the table and SAL-similarity views built from them."""

    spec: CrossTaskSpec
    runs: dict[tuple[str, str], TaskRun]
    # (task, poison method) -> its `UDReport`, as stored by the stage layer (`TaskUDStage`); `ud` fills a missing one
    uds: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        metric, entries = self.metric_names(), []
        for (task, method), run in self.runs.items():
            clean = self.runs.get((task, CLEAN))
            if method == CLEAN or clean is None:
                continue
            name, report = metric.get(task, "metric"), self.uds.get((task, method))  # a repr computes no UD
            ud = "" if report is None else f", UD {number(report.ud, '.3f')}"
            entries.append(f"{task}/{method} {name} {number(clean.metrics.get(name))} clean vs "
                           f"{number(run.metrics.get(name))}{ud}")
        tasks, conditions = plural(len(self.spec.tasks), "task"), plural(len(self.spec.conditions), "condition")
        runs = plural(len(self.runs), "run")
        return f"CrossTaskResult({tasks} x {conditions}, {runs}: {listed(entries, 2, '; ') or 'none'})"

    def run(self, task: str, condition: str) -> TaskRun:
        try:
            return self.runs[(task, condition)]
        except KeyError:
            raise SpecError(f"no run for task {task!r} under {condition!r}; tasks: {', '.join(self.spec.tasks)}; "
                            f"conditions: {', '.join(self.spec.conditions)}") from None

    def ud(self, task: str, method: str) -> Any | None:
        """The `UDReport` of `task` under `method` (None without SAL): the stored one, else computed here once."""
        if (task, method) not in self.uds:
            self.uds[(task, method)] = task_ud(self.run(task, CLEAN), self.run(task, method))
        return self.uds[(task, method)]

    def table(self) -> list[dict[str, Any]]:
        """One row per (task, poison method): clean- and poisoned-trained primary metric, relative drop, UD.

        `sal_ratio` (ours, threshold-free) is the mean poisoned SAL over the mean clean SAL of the task.
        """
        rows = []
        for name in self.spec.tasks:
            task = get_task(name)
            clean = self.run(name, CLEAN)
            for method in self.spec.methods:
                poisoned = self.run(name, method)
                c, p = clean.metrics[task.primary], poisoned.metrics[task.primary]
                report = self.ud(name, method)
                rows.append({"task": name, "metric": task.primary, "higher_is_better": task.higher_is_better,
                             "method": method, "clean": c, "poisoned": p,
                             "drop": relative_drop(c, p, task.higher_is_better),
                             "ud": float("nan") if report is None else report.ud,
                             "sal_ratio": float("nan") if report is None else report.mean_ratio_overall,
                             "diverged": poisoned.diverged or clean.diverged})
        return rows

    def curves(self) -> dict[str, dict[str, np.ndarray]]:
        """Per task, per condition: the task's primary clean-test metric per epoch."""
        return {t: {c: self.run(t, c).history["test_acc"] for c in self.spec.conditions} for t in self.spec.tasks}

    def metric_names(self) -> dict[str, str]:
        """The name of each task's primary metric."""
        return {t: get_task(t).primary for t in self.spec.tasks}

    def similarities(self, *, layers: int | None = None) -> dict[str, np.ndarray]:
        """Per condition, the (K, K) cosine similarity of the tasks' SAL vectors (in `spec.tasks` order)."""
        return {c: self.sal_similarity(c, layers=layers)[1] for c in self.spec.conditions}

    def sal_vectors(self, condition: str, *, layers: int | None = None) -> tuple[list[str], np.ndarray]:
        """(tasks, (K, T*L') matrix): each task's SAL over (epochs x its first `layers` weight layers), flattened."""
        names, vectors = [], []
        for name in self.spec.tasks:
            trace = self.run(name, condition).sal
            if trace is None:
                raise SpecError("SAL was not measured (CrossTaskSpec.sal is None); no SAL vectors to compare")
            names.append(name)
            vectors.append(np.asarray(trace.sal, dtype=np.float64)[:, :layers].ravel())
        if len({len(v) for v in vectors}) > 1:
            raise ShapeError(f"SAL vectors differ in length across tasks ({[len(v) for v in vectors]}); "
                             "compare tasks measured on the same epochs and layer count")
        return names, np.stack(vectors)

    def sal_similarity(self, condition: str, *, layers: int | None = None) -> tuple[list[str], np.ndarray]:
        """(tasks, (K, K) cosine similarity of the tasks' SAL vectors) under one condition (the paper's Fig. 5)."""
        names, v = self.sal_vectors(condition, layers=layers)
        return names, cosine_similarity(v)


# The plain-language verdict on the paper's Fig. 1 finding, from the relative drops and these declared thresholds
# (fixed with the cross-task bench, before its grid ran; nothing is tuned toward an outcome).
KEEPS = 0.10  # a task "keeps its clean performance" if its mean relative drop is below 10 %
COLLAPSES = 0.50  # classification "collapses" if its mean relative drop is at least 50 %


def mean_drop(rows: Sequence[dict[str, Any]], task: str, method: str) -> float:
    """The mean relative drop of `task` under `method` over `CrossTaskResult.table` rows (any seeds; NaN if none)."""
    finite = [float(r["drop"]) for r in rows
              if r["task"] == task and r["method"] == method and np.isfinite(r["drop"])]
    return float(np.mean(finite)) if finite else float("nan")


def verdict(rows: Sequence[dict[str, Any]], methods: Sequence[str], tasks: Sequence[str]) -> list[str]:
    """One plain sentence per method: does classification collapse, do the other tasks keep their performance."""
    if "classify" not in tasks:
        raise SpecError(f"the verdict compares the other tasks with classification; tasks {list(tasks)} lack "
                        f"'classify': add it to the tasks (the UEs are crafted against it)")
    lines = []
    for m in methods:
        drop = {t: mean_drop(rows, t, m) for t in tasks}
        c = "collapses" if drop["classify"] >= COLLAPSES else "does NOT collapse"
        others = [t for t in tasks if t != "classify"]
        kept = [t for t in others if drop[t] < KEEPS]
        hurt = [t for t in others if drop[t] >= KEEPS]
        parts = ", ".join(f"{t} {100 * drop[t]:+.1f}%" for t in others)
        status = "all keep" if not hurt else f"kept: {', '.join(kept) or 'none'}; hurt: {', '.join(hurt)};"
        lines.append(f"{m}: classification {c} (drop {100 * drop['classify']:.1f}%); other tasks: {parts} -> "
                     f"{status} their clean performance (threshold {100 * KEEPS:.0f}% drop)")
    return lines


def finding_holds(rows: Sequence[dict[str, Any]], method: str, tasks: Sequence[str]) -> bool:
    """The paper's Fig. 1 finding for `method`: classification collapses, every other task keeps its performance.

    Mean drops against `COLLAPSES` and `KEEPS`; False without another task than classification.
    """
    others = [t for t in tasks if t != "classify"]
    return bool(others) and mean_drop(rows, "classify", method) >= COLLAPSES and all(
        mean_drop(rows, t, method) < KEEPS for t in others)


def cosine_similarity(v: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of the rows of `v` (K, D); a zero row has similarity NaN with every row."""
    norms = np.linalg.norm(v, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = v / norms[:, None]
        return np.clip(unit @ unit.T, -1.0, 1.0)


__all__ = ["CLEAN", "COLLAPSES", "DEFAULT_TRAIN", "ENCODER_LAYERS", "KEEPS", "CrossTaskResult", "CrossTaskSpec",
           "TaskRun", "TaskSpec", "cosine_similarity", "finding_holds", "mean_drop", "relative_drop", "task_ud",
           "training_pair", "verdict"]
