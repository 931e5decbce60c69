"""The app's engine calls, cached per session or process: they ask the stage layer only (never build a key).

`st.cache_resource` holds the store and the device; `st.cache_data` holds results that a rerun asks for
again. Whether something is stored is always the stage layer's answer (`landscape.stages`: resolve -> key ->
exists), so a new session sees what the CLI or another session computed; a positive answer is remembered
for the session (entries are never removed while the app runs, except a corrupt one, which is recomputed).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import streamlit as st

from landscape.config import DataSpec, PoisonSpec
from landscape.errors import LandscapeError, NotAStoreError, PathError
from landscape.store import ENV_VAR, Store, default_root

if TYPE_CHECKING:
    from landscape.app.state import AppSpec
    from landscape.app.widgets import Progress
    from landscape.config import ExperimentSpec, SurfaceSpec
    from landscape.stages.base import Stage


@st.cache_resource(show_spinner=False)
def _store_at(root: str, snapshot: str | None) -> Store:
    return Store(root, snapshots=(snapshot,) if snapshot is not None and Path(snapshot).is_dir() else ())


@dataclass(frozen=True)
class Problem:
    """Something wrong with where the app reads or writes results, as one line naming the path and what to do.

    `fatal`: the page cannot go on (no store to read from); else the page goes on (e.g. read-only: the demo
    and stored results are still shown, and a computation reports that it cannot be saved).
    """

    message: str
    fatal: bool


@st.cache_resource(show_spinner=False, max_entries=8)
def _snapshot_problems(folder: str, signature: tuple[tuple[str, int, int], ...]) -> list[str]:
    from landscape.demo import problems

    return problems(Path(folder))


def _signature(folder: Path) -> tuple[tuple[str, int, int], ...]:
    """Names, sizes and modification times of the snapshot's files: a changed file is checked again."""
    if not folder.is_dir():
        return ()
    return tuple((str(f), (s := f.stat()).st_size, s.st_mtime_ns) for f in sorted(folder.glob("*/*/*")))


def problems() -> list[Problem]:
    """What is wrong with the user's store (`$UE_LANDSCAPE_STORE`) and the demo snapshot, checked on every run.

    A store that cannot be named (``~nosuchuser``, empty) is fatal; a file, a read-only one or a folder of other
    files (the demo is still shown; the last's own error says which folder to give) and a missing, misplaced or
    damaged demo snapshot are not (its check is cached until a file changes).
    """
    from landscape.demo import DEMO_ENV, demo_dir

    fix = f"set {ENV_VAR} to a folder you can write (it is created if missing) and restart the app"
    try:
        store = Store(default_root())
    except PathError as err:
        return [Problem(f"The store cannot be used: {err}. To fix it, {fix}.", fatal=True)]
    found = []
    try:
        store.check_readable().check_writable()
    except PathError as err:
        to = f"set {ENV_VAR} to such a folder and restart the app" if isinstance(err, NotAStoreError) else fix
        found.append(Problem(f"Results cannot be saved: {err}. The shipped demo (and any stored results) is shown; "
                             f"to compute, {to}.", fatal=False))
    try:
        snapshot = demo_dir()
    except PathError as err:
        return [*found, Problem(f"The demo cannot be shown: {err} (set {DEMO_ENV} to a snapshot folder, or \"\" "
                                f"for none).", fatal=False)]
    if snapshot is not None:
        found += [Problem(f"The demo cannot be shown in full: {line}.", fatal=False)
                  for line in _snapshot_problems(str(snapshot), _signature(snapshot))]
    return found


def store() -> Store:
    """The user's store (`$UE_LANDSCAPE_STORE` or the default cache folder) over the shipped demo snapshot.

    Reads ask the snapshot first, then the user's store; everything computed goes to the user's store.
    """
    from landscape.demo import demo_dir

    try:
        snapshot = demo_dir()
    except PathError:  # `problems` tells the user; the app goes on without the demo
        snapshot = None
    return _store_at(str(default_root()), None if snapshot is None else str(snapshot))


@st.cache_resource(show_spinner=False)
def device() -> str:
    """The compute device, chosen once (cuda > mps > cpu)."""
    from landscape.device import resolve_device

    return str(resolve_device("auto"))


def _progress(progress: Progress | None) -> dict[str, Any]:
    return {"progress": progress} if progress is not None else {}


# ------------------------------------------------------------------------------------------------ registries


def registry_names(kind: str) -> list[str]:
    """Registered names of "dataset" (picked by name alone: not npz/folder, named by a path), "model", "method"."""
    from landscape.data import DATASETS
    from landscape.models import MODELS
    from landscape.poisons import POISONS

    if kind == "dataset":
        return [n for n in DATASETS.names() if "syntax" not in DATASETS.meta(n)]
    if kind in ("model", "method"):
        return (MODELS if kind == "model" else POISONS).names()
    raise ValueError(f"unknown registry {kind!r}; valid: dataset, model, method")


def needs_root(dataset: str) -> bool:
    """Whether the data set reads files from a folder the user names in the sidebar (its registry metadata).

    A user data set (``npz:PATH``, ``folder:PATH``) carries its path in its name: no folder to ask for.
    """
    from landscape.data import DATASETS

    return ":" not in dataset and bool(DATASETS.meta(dataset)["needs_root"])


@st.cache_data(show_spinner=False)
def method_defaults(method: str, dataset: DataSpec) -> dict[str, Any]:
    """The method's norm and default budget for the data set `dataset` (from the method class itself)."""
    from landscape.poisons import build

    m = build(PoisonSpec(method=method), dataset=dataset)
    return {"norm": m.norm, "eps": float(m.eps), "granularity": m.granularity, "doc": inspect.getdoc(m) or ""}


# ------------------------------------------------------------------------------------------------ stored?


def stored(stage: Stage[Any]) -> bool:
    """True if the store holds `stage`'s entry (the stage layer's answer; a yes is remembered for the session)."""
    memo = st.session_state.setdefault("_stored", set())
    try:
        key = (stage.folder, stage.key())
        if key in memo:
            return True
        found = stage.exists(store())
    except LandscapeError:
        return False
    if found:
        memo.add(key)
    return found


def origin(stage: Stage[Any]) -> str:
    """Where a stored result comes from, for a caption: the shipped demo snapshot or the user's store."""
    folder = stage.origin(store())
    if folder is None:
        return "not stored"
    if folder in store().snapshots:
        return "the shipped demo snapshot (assets/demo), read-only"
    return f"your store ({folder})"


def poison_stage(spec: AppSpec) -> Stage[Any]:
    from landscape.stages.poison import PoisonStage

    return PoisonStage.of(spec.data(), spec.poison())


def train_stage(spec: AppSpec, method: str) -> Stage[Any]:
    """The stage of one run of `spec`: "clean" or its poison."""
    from landscape.stages.train import TrainStage

    poison = PoisonSpec() if method == "clean" else spec.poison()
    return TrainStage.of(spec.data(), spec.model_spec(), spec.train(), poison)


def surface_stage(spec: AppSpec, surface: SurfaceSpec) -> Stage[Any]:
    from landscape.stages.surface import SurfaceStage

    return SurfaceStage.of(spec.data(), spec.model_spec(), spec.train(), spec.poison(), surface)


def ud_stage(spec: AppSpec) -> Stage[Any]:
    """UD of `spec`'s experiment (stored together with SAL of both runs)."""
    from landscape.stages.ud import UDStage

    return UDStage.of(experiment_spec(spec))


def ready(make: Callable[[], Stage[Any]]) -> bool:
    """True if the stage `make()` builds is stored (False when its specs do not resolve: the page shows why)."""
    try:
        stage = make()
    except LandscapeError:
        return False
    return stored(stage)


def poison_ready(spec: AppSpec) -> bool:
    return ready(lambda: poison_stage(spec))


def runs_to_train(spec: AppSpec) -> int:
    """How many of `spec`'s two runs (clean and poisoned) are not stored (0, 1 or 2)."""
    return sum(not ready(lambda m=m: train_stage(spec, m)) for m in ("clean", spec.method))


def training_ready(spec: AppSpec) -> bool:
    """Both runs of `spec` (clean and poisoned) are stored."""
    return runs_to_train(spec) == 0


def surface_ready(spec: AppSpec, surface: SurfaceSpec) -> bool:
    return ready(lambda: surface_stage(spec, surface))


def experiment_ready(spec: AppSpec) -> bool:
    return ready(lambda: ud_stage(spec))


# ------------------------------------------------------------------------------------------------ results


def training_result(spec: AppSpec, method: str, progress: Progress | None = None) -> Any:
    """The engine's `TrainResult` of one run of `spec` ("clean" or its poison), computed or from the store."""
    from landscape.experiment import get_training

    poison = PoisonSpec() if method == "clean" else spec.poison()
    return get_training(spec.data(), spec.model_spec(), spec.train(), poison, store=store(), device=device(),
                        **_progress(progress))


@st.cache_data(max_entries=32, show_spinner=False)
def training_history(spec: AppSpec, method: str) -> dict[str, np.ndarray]:
    """Per-epoch history arrays of one run (store hit, or computed without progress)."""
    return {k: np.asarray(v) for k, v in training_result(spec, method).history.items()}


@st.cache_data(max_entries=32, show_spinner=False)
def weight_count(spec: AppSpec) -> int:
    """Weights of `spec`'s model on its data set (built, not trained)."""
    from landscape.models import build_model
    from landscape.stages.base import get_splits

    splits = get_splits(spec.data())
    net = build_model(spec.model, splits.image_shape, splits.num_classes, seed=spec.seed)
    return sum(p.numel() for p in net.parameters())


def poisoned_train(spec: AppSpec, progress: Progress | None = None) -> Any:
    """The poisoned training `ImageSet` of `spec` (crafted once, then served by the store)."""
    from landscape.experiment import get_poisoned_train

    return get_poisoned_train(spec.data(), spec.poison(), store=store(), device=device(), **_progress(progress))


@st.cache_data(max_entries=16, show_spinner=False)
def poison_view(spec: AppSpec) -> dict[str, Any]:
    """Sample images and budget figures of the crafted poison of `spec` (store hit; computes if absent).

    Returns the keys of `landscape.figures.poison_sample` (`clean`, `poisoned`, `labels`, `n_changed`,
    `n_train`) plus `class_names`, `budget` (the engine's budget figures stored with the poison) and `meta`.
    """
    from landscape.figures import poison_sample
    from landscape.stages.base import Context, get_splits

    clean = get_splits(spec.data()).train
    crafted = poison_stage(spec).get(Context(store(), device()))
    meta = dict(crafted.meta)
    return {**poison_sample(clean.x, crafted.apply(clean).x, clean.y), "class_names": list(clean.class_names),
            "budget": meta.get("budget", {}), "meta": {k: v for k, v in meta.items() if k != "budget"}}


def surfaces(spec: AppSpec, surface: SurfaceSpec, progress: Progress | None = None) -> Any:
    """The engine's `SurfaceSet` for the clean and the poisoned run of `spec` (trains them if needed)."""
    from landscape.experiment import get_surface

    return get_surface(spec.data(), spec.model_spec(), spec.train(), spec.poison(), surface, store=store(),
                       device=device(), **_progress(progress))


@st.cache_data(max_entries=16, show_spinner=False)
def surface_set(spec: AppSpec, surface: SurfaceSpec) -> Any:
    """`surfaces(spec, surface)` served from the store (computed without progress if absent)."""
    return surfaces(spec, surface)


def experiment_spec(spec: AppSpec) -> ExperimentSpec:
    """The engine's `ExperimentSpec` of the sidebar spec (SAL with the chosen preset)."""
    from landscape.config import ExperimentSpec, SALSpec

    return ExperimentSpec(data=spec.data(), model=spec.model_spec(), train=spec.train(), poison=spec.poison(),
                          sal=SALSpec.preset(spec.sal))


def experiment(spec: AppSpec, progress: Progress | None = None) -> Any:
    """Clean and poisoned training of `spec` with SAL at every epoch, and UD: the engine's `ExperimentResult`.

    The two chains (clean; crafting, then poisoned) run side by side in worker processes, as `run` does by
    default (`landscape.stages.pool`); a rerun or stop of the page terminates them, leaving no partial entry.
    """
    from landscape.experiment import run_experiment
    from landscape.stages.pool import default_workers

    return run_experiment(experiment_spec(spec), store=store(), device=device(), workers=default_workers(),
                          **_progress(progress))


@st.cache_data(max_entries=32, show_spinner=False)
def timing(spec: AppSpec) -> dict[str, float | None]:
    """Median seconds per training epoch ("epoch") and per fast-preset SAL epoch ("sal"), or None.

    Measured on the stored clean run of `spec`'s data set and model at the app's default recipe, if stored.
    """
    from landscape.config import SALSpec
    from landscape.stages.train import sal_stage

    # the default recipe on the same data and model (type(spec): the AppSpec class, without importing the sidebar)
    ref = type(spec)(dataset=spec.dataset, model=spec.model, data_root=spec.data_root, n_train=spec.n_train)
    out: dict[str, float | None] = {"epoch": None, "sal": None}
    try:
        if ready(lambda: train_stage(ref, "clean")):
            out["epoch"] = float(np.median(training_history(ref, "clean")["seconds"]))
        trace = sal_stage(ref.data(), ref.model_spec(), ref.train(), PoisonSpec(), SALSpec.preset("fast")).load(store())
    except LandscapeError:
        return out
    if trace is not None and len(trace.seconds):
        out["sal"] = float(np.median(trace.seconds))
    return out
