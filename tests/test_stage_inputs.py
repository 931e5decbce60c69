"""Every stage declares the stages it reads (`Stage.inputs`): computing a stage into an empty store stores exactly
the entries of its `closure`, for every concrete stage class. The demo snapshot ships that closure and nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import landscape.stages
from landscape import demo
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.multitask import CrossTaskSpec
from landscape.stages.base import Context, Stage, closure
from landscape.store import Store
from landscape.weights import save_weights

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = DataSpec(n_train=120, n_test=60)
MODEL = ModelSpec(name="cnn")
TRAIN = TrainSpec(epochs=2, batch_size=32)
POISON = PoisonSpec(method="random")
SAL = SALSpec(eval_size=64)
EXPERIMENT = ExperimentSpec(data=DATA, model=MODEL, train=TRAIN, poison=POISON, sal=SAL)
CROSS_TASK = CrossTaskSpec(data=DATA, tasks=("classify",), poisons=(POISON,), train=TRAIN, sal=SAL)


def _weights(folder: Path) -> dict[str, Path]:
    """Two weights files (the final states of a clean and a poisoned run), trained in a store of their own."""
    from landscape.stages.train import TrainStage

    ctx = Context(Store(folder / "trained"))
    return {label: save_weights(TrainStage.of(DATA, MODEL, TRAIN, poison).get(ctx).final_state,
                                folder / f"{label}.safetensors")
            for label, poison in (("clean", PoisonSpec()), ("random", POISON))}


def _imported(folder: Path) -> Any:
    from landscape.stages.weights import ImportedRun

    return ImportedRun.of(DATA, MODEL, _weights(folder)["clean"])


def _stages() -> dict[str, Callable[[Path], Stage[Any]]]:
    """One small instance of every kind of stage, by name, each built by a function of a scratch folder."""
    from landscape.config import CurvatureSpec, DefenseSpec, LayerSliceSpec, SurfaceSpec
    from landscape.stages.bench import BenchCell, Cell
    from landscape.stages.channels import ChannelSALStage
    from landscape.stages.crosstask import TaskRunStage, TaskUDStage
    from landscape.stages.curvature import CurvatureStage
    from landscape.stages.poison import PoisonStage
    from landscape.stages.surface import LayerSliceStage, SurfaceStage
    from landscape.stages.train import TrainStage, sal_stage
    from landscape.stages.ud import UDStage
    from landscape.stages.weights import ImportedCurvatureStage, ImportedSALStage, ImportedSurfaceStage

    curvature = CurvatureSpec(n_data=32, top_k=1, min_steps=2, max_steps=4, probes=2)
    layer = LayerSliceSpec(layers=("0.weight",), epoch=TRAIN.epochs, resolution=3, n_eval=32)
    sparse = TRAIN.replace(checkpoint_every=2)  # not every epoch kept: SAL is measured inside the trainer
    return {
        "poison": lambda _: PoisonStage.of(DATA, POISON),
        "train (poisoned)": lambda _: TrainStage.of(DATA, MODEL, TRAIN, POISON),
        "SAL on checkpoints": lambda _: sal_stage(DATA, MODEL, TRAIN, POISON, SAL),
        "SAL in the trainer": lambda _: sal_stage(DATA, MODEL, sparse, POISON, SAL),
        "UD": lambda _: UDStage.of(EXPERIMENT),
        "UD, SAL in the trainer": lambda _: UDStage.of(EXPERIMENT.replace(train=sparse)),
        "surface": lambda _: SurfaceStage.of(DATA, MODEL, TRAIN, POISON, SurfaceSpec(kind="random", dims=1,
                                                                                     resolution=3, n_eval=32)),
        "layer slice": lambda _: LayerSliceStage.of(DATA, MODEL, TRAIN, POISON, layer),
        "curvature": lambda _: CurvatureStage.of(DATA, MODEL, TRAIN, POISON, curvature),
        "channel SAL": lambda _: ChannelSALStage.of(DATA, MODEL, TRAIN, POISON, SAL, "0.weight"),
        "cross-task run": lambda _: TaskRunStage.of(CROSS_TASK, "classify", "random"),
        "cross-task UD": lambda _: TaskUDStage.of(CROSS_TASK, "classify", "random"),
        "benchmark cell": lambda _: BenchCell.of(Cell(DATA, MODEL, TRAIN, SAL, "random", DefenseSpec(), 0)),
        "imported weights": _imported,
        "imported SAL": lambda folder: ImportedSALStage.of(_imported(folder), SAL),
        "imported curvature": lambda folder: ImportedCurvatureStage(_imported(folder), curvature),
        "imported surface": lambda folder: ImportedSurfaceStage.of(
            DATA, MODEL, _weights(folder), SurfaceSpec(kind="interp", dims=1, resolution=3, n_eval=32)),
    }


def _concrete_stage_classes() -> set[type]:
    for module in pkgutil.iter_modules(landscape.stages.__path__):
        importlib.import_module(f"landscape.stages.{module.name}")
    found, todo = set(), [Stage]
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if not getattr(cls, "__abstractmethods__", None) and cls.__module__.startswith("landscape."):
            found.add(cls)
    return found


def _entries(root: Path) -> set[tuple[str, str]]:
    return {(p.parent.name, p.name) for p in root.glob("*/*") if p.is_dir() and not p.name.startswith(".")}


def test_the_cases_cover_every_concrete_stage_class(tmp_path):
    built = {type(make(tmp_path)) for make in _stages().values()}
    assert built == _concrete_stage_classes()  # a new kind of stage: add a case to `_stages`


@pytest.mark.parametrize("name", list(_stages()))
def test_computing_a_stage_stores_exactly_its_closure(tmp_path, name):
    stage = _stages()[name](tmp_path)
    store = Store(tmp_path / "store")
    stage.get(Context(store))
    assert _entries(store.root) == set(closure([stage]))


def test_closure_lists_each_entry_once_and_follows_inputs_of_inputs(tmp_path):
    from landscape.stages.poison import PoisonStage
    from landscape.stages.ud import UDStage

    ud = UDStage.of(EXPERIMENT)
    found = closure([ud, ud.sal(POISON)])
    assert sorted(folder for folder, _ in found) == ["poison", "sal", "sal", "train", "train", "ud"]
    assert (PoisonStage.folder, PoisonStage.of(DATA, POISON).key()) in found


def test_demo_check_finds_an_entry_no_request_reads_and_build_drops_it(tmp_path):
    copy, key = tmp_path / "demo", "0" * 64
    shutil.copytree(demo.DEMO_DIR, copy)
    Store(copy).get_or_compute("train", key, lambda: ({"x": 1}, {}))  # e.g. the entry of a request since changed
    report = demo.check(copy)
    assert not report.ok and report.unread == [f"train/{key}"] and not report.missing
    assert "read by no request" in report.describe()

    # a resumed build (its build store holds every request already, plus the stale entry) ships without it
    shutil.copytree(copy, demo.build_dir(tmp_path / "out"))
    rebuilt = demo.build(tmp_path / "out")
    assert rebuilt.ok, rebuilt.describe()
    assert not (tmp_path / "out" / "train" / key).exists()
    assert _entries(tmp_path / "out") == _entries(demo.DEMO_DIR)


@pytest.mark.parametrize("change", ["default budget", "revision"])
@pytest.mark.parametrize("name", [n for n in _stages() if not n.startswith("imported")])
def test_a_changed_poison_default_changes_the_key_of_every_stage_that_reads_the_poison(tmp_path, name, change,
                                                                                      monkeypatch):
    """A new default, or a fix of the method on this family (`PoisonMethod.revisions`), gives every stage that
    reads the poison a new key; a fix on another family does not."""
    from landscape.poisons import POISONS
    from landscape.stages.poison import PoisonStage

    before = _stages()[name](tmp_path)
    assert any(isinstance(s, PoisonStage) for s in closure([before]).values())  # every case reads the poison
    key = before.key()
    method = POISONS.get(POISON.method)
    if change == "revision":
        monkeypatch.setattr(method, "revisions", {"cifar": 3})  # another family's fix: digits results stay valid
        assert _stages()[name](tmp_path).key() == key
        monkeypatch.setattr(method, "revisions", {"digits": 1})
    else:
        monkeypatch.setattr(method, "budgets", {**method.budgets, "digits": method.budgets["digits"] / 2})
    assert _stages()[name](tmp_path).key() != key  # a row or run of the old default is never served
