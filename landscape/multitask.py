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

Each (task, condition) run is one store entry ("crosstask" stage, keyed by data, task, train, poison and
SAL specs); `run_cross_task` only assembles them, so a re-render or a second CLI call recomputes nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from landscape.config import DataSpec, PoisonSpec, SALSpec, Spec, TrainSpec, combined_key, freeze_options
from landscape.data import ImageSet
from landscape.errors import ShapeError, SpecError
from landscape.experiment import get_poisoned_train, get_splits
from landscape.store import Store
from landscape.tasks import TASKS, Task, get_task, tasks_for
from landscape.train import HISTORY_KEYS, evaluate_task, train

StageProgress = Callable[[str, int, int], None]
STAGE = "crosstask-v1"  # bump when a task's targets, model or metrics change (they are not part of the specs)
CLEAN = "clean"
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


def _no_progress(stage: str, done: int, total: int) -> None:
    return None


@dataclass(frozen=True)
class TaskSpec(Spec):
    """Which task, and the width multiplier of its model.

    Args:
        name: a registered task ("classify", "segment", "edges", "reconstruct").
        width: channel multiplier of the task's model (1 = the digits `cnn` widths).
    """

    name: str = "classify"
    width: int = 1

    def __post_init__(self) -> None:
        TASKS.check(self.name)
        if not isinstance(self.width, int) or not 1 <= self.width <= 16:
            raise SpecError(f"TaskSpec.width = {self.width!r} is out of range; expected an integer in [1, 16]")


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
    width: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "tasks", tuple(self.tasks) or tuple(tasks_for(self.data.name)))
        object.__setattr__(self, "poisons", tuple(self.poisons))
        for name in self.tasks:
            task = get_task(name)
            if not task.supports(self.data.name):
                raise SpecError(f"task {name!r} is not defined on {self.data.name!r}; valid tasks there: "
                                f"{', '.join(tasks_for(self.data.name))}")
        methods = [p.method for p in self.poisons]
        if CLEAN in methods:
            raise SpecError("clean training is always included; list only poison methods")
        if len(set(methods)) != len(methods):
            raise SpecError(f"each poison method may appear once, got {methods}")
        if self.train.augment != "none":
            raise SpecError(f"cross-task training needs TrainSpec.augment = 'none' (got {self.train.augment!r}): "
                            "augmentation would move the images but not their dense targets")
        if not isinstance(self.width, int) or not 1 <= self.width <= 16:
            raise SpecError(f"CrossTaskSpec.width = {self.width!r} is out of range; expected an integer in [1, 16]")

    @classmethod
    def for_methods(cls, methods: Sequence[str], *, seed: int = 0, **kwargs: Any) -> CrossTaskSpec:
        """A spec with each method at its default budget for the data set; `seed` seeds poisons and models.

        The defaults are written into each `PoisonSpec` (eps and every option), so the cache key changes
        whenever a method's documented default does.
        """
        train_spec = kwargs.pop("train", DEFAULT_TRAIN).replace(seed=seed)
        dataset = kwargs.get("data", DataSpec()).name
        poisons = tuple(resolved_poison(m, dataset, seed) for m in methods)
        return cls(poisons=poisons, train=train_spec, **kwargs)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CrossTaskSpec:
        sal = data.get("sal")
        return cls(data=DataSpec.from_dict(data["data"]), tasks=tuple(data["tasks"]),
                   poisons=tuple(PoisonSpec(**{**p, "options": tuple(tuple(o) for o in p["options"])})
                                 for p in data["poisons"]),
                   train=TrainSpec.from_dict(data["train"]), sal=None if sal is None else SALSpec.from_dict(sal),
                   width=data["width"])

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


def resolved_poison(method: str, dataset: str, seed: int = 0) -> PoisonSpec:
    """`PoisonSpec(method, seed)` with the method's default budget and options for `dataset` written in."""
    if method == CLEAN:
        raise SpecError("clean training is always included; list only poison methods")
    from landscape.poisons import build

    built = build(PoisonSpec(method=method, seed=seed), dataset=dataset)
    return PoisonSpec(method=method, eps=built.eps, seed=seed, options=freeze_options(built.options))


@dataclass
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
        raise ShapeError("the poisoned training set must be the clean one image for image (same shape and labels)")
    return images, task.targets(clean.x, clean.y)


def get_task_run(data: DataSpec, task_spec: TaskSpec, train_spec: TrainSpec, poison: PoisonSpec,
                 sal_spec: SALSpec | None, *, store: Store, device: torch.device | str = "cpu",
                 progress: StageProgress = _no_progress) -> TaskRun:
    """Train (or load) the model of one task on one condition and return its `TaskRun`."""
    from landscape.device import resolve_device

    task = get_task(task_spec.name)
    condition = CLEAN if poison.method == CLEAN else poison.method
    stage = f"{task.name} · {condition}"

    def compute() -> tuple[dict, dict]:
        import time

        splits = get_splits(data)
        poisoned = get_poisoned_train(data, poison, store=store, device=device, progress=progress)
        images, train_targets = training_pair(task, splits.train, poisoned)
        test_targets = task.targets(splits.test.x, splits.test.y)
        model = task.build(splits.image_shape, splits.num_classes, width=task_spec.width, seed=train_spec.seed)
        callbacks = []
        tracker = None
        if sal_spec is not None:
            from landscape.sal import SALTracker

            tracker = SALTracker(sal_spec, loss=task)
            callbacks.append(tracker)
        started = time.perf_counter()
        result = train(model, images, splits.test, train_spec, device=resolve_device(str(device)),
                       callbacks=callbacks, progress=lambda done, total: progress(stage, done, total),
                       task=task, train_targets=train_targets, test_targets=test_targets)
        loss, stats = evaluate_task(model, splits.test.x, test_targets, task)
        metrics = {**task.metrics(stats), "loss": loss}
        run = TaskRun(task.name, condition, result.history, metrics, tracker.trace() if tracker else None,
                      result.diverged, time.perf_counter() - started)
        return run.to_store()

    key = combined_key(data, task_spec, train_spec, poison, sal_spec)  # = _run_key(...)
    spec = {"data": data.to_dict(), "task": task_spec.to_dict(), "train": train_spec.to_dict(),
            "poison": poison.to_dict(), "sal": None if sal_spec is None else sal_spec.to_dict()}
    entry = store.get_or_compute(STAGE, key, compute, spec=spec)
    return TaskRun.from_store(entry.meta, entry.arrays)


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


@dataclass
class CrossTaskResult:
    """Every run of a cross-task probe, with the table and SAL-similarity views built from them."""

    spec: CrossTaskSpec
    runs: dict[tuple[str, str], TaskRun]

    def run(self, task: str, condition: str) -> TaskRun:
        try:
            return self.runs[(task, condition)]
        except KeyError:
            raise SpecError(f"no run for task {task!r} under {condition!r}; tasks: {', '.join(self.spec.tasks)}; "
                            f"conditions: {', '.join(self.spec.conditions)}") from None

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
                report = task_ud(clean, poisoned)
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


def cosine_similarity(v: np.ndarray) -> np.ndarray:
    """(K, K) cosine similarity of the rows of `v` (K, D); a zero row has similarity NaN with every row."""
    norms = np.linalg.norm(v, axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        unit = v / norms[:, None]
        return np.clip(unit @ unit.T, -1.0, 1.0)


def _run_key(spec: CrossTaskSpec, task: str, condition: str) -> str:
    return combined_key(spec.data, TaskSpec(task, spec.width), spec.train, spec.poison(condition), spec.sal)


def missing_runs(spec: CrossTaskSpec, store: Store) -> list[tuple[str, str]]:
    """The (task, condition) runs of `spec` not yet in the store (nothing is computed)."""
    return [(t, c) for t in spec.tasks for c in spec.conditions if not store.exists(STAGE, _run_key(spec, t, c))]


def load_cross_task(spec: CrossTaskSpec, store: Store) -> CrossTaskResult | None:
    """The stored result of `spec`, or None if any run is missing (nothing is computed)."""
    runs = {}
    for task in spec.tasks:
        for condition in spec.conditions:
            entry = store.load(STAGE, _run_key(spec, task, condition))
            if entry is None:
                return None
            runs[(task, condition)] = TaskRun.from_store(entry.meta, entry.arrays)
    return CrossTaskResult(spec, runs)


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


def run_cross_task(spec: CrossTaskSpec, *, store: Store, device: torch.device | str = "cpu",
                   progress: StageProgress = _no_progress) -> CrossTaskResult:
    """Train (or load) every (task, condition) model of `spec` and return them together.

    Progress is reported per run as `progress("<task> · <condition>", epoch, epochs)`, plus the crafting
    stages of the poisons, and `progress("cross-task", runs_done, runs_total)`.
    """
    runs: dict[tuple[str, str], TaskRun] = {}
    total = len(spec.tasks) * len(spec.conditions)
    for name in spec.tasks:
        task_spec = TaskSpec(name, spec.width)
        for condition in spec.conditions:
            runs[(name, condition)] = get_task_run(spec.data, task_spec, spec.train, spec.poison(condition), spec.sal,
                                                   store=store, device=device, progress=progress)
            progress("cross-task", len(runs), total)
    return CrossTaskResult(spec, runs)


def replace_seed(spec: CrossTaskSpec, seed: int) -> CrossTaskSpec:
    """The same probe with every poison and the training recipe seeded by `seed`."""
    return dataclasses.replace(spec, train=spec.train.replace(seed=seed),
                               poisons=tuple(p.replace(seed=seed) for p in spec.poisons))


__all__ = ["CLEAN", "DEFAULT_TRAIN", "ENCODER_LAYERS", "CrossTaskResult", "CrossTaskSpec", "TaskRun", "TaskSpec",
           "cosine_similarity", "estimate_seconds", "get_task_run", "load_cross_task", "missing_runs", "relative_drop",
           "replace_seed", "resolved_poison", "run_cross_task", "task_ud", "training_pair"]
