"""`python -m landscape demo`: build the small precomputed demo the app opens with, in `assets/demo/`.

The demo is made by the engine calls the app makes (`landscape.experiment`: `get_poisoned_train`,
`get_training`, `get_surface`, `run_experiment`), through the same content-addressed store, and then
exported as a compact bundle the app reads without computing anything:

    assets/demo/demo.json   the manifest: format, the command, creation time, library versions, every spec
                            used, per-run training metadata, crafting metadata and budget figures, the
                            surfaces' metadata (`SurfaceSet.to_store`), SAL traces (`SALTrace.to_dict`) and UD
                            results (the engine's own JSON form), and timings.
    assets/demo/demo.npz    the arrays (no pickles): per-run history (`train/<run>/<key>`), a few clean and
                            poisoned sample images per method (`poison/<method>/...`), the surface grids
                            and projected paths (`surface/<name>/...`, the keys of `SurfaceSet.to_store`)
                            and every weight of the toy `linear` model per checkpoint (`paths/<run>`).

The cnn's checkpoints are not exported (its trajectory alone would exceed the 5 MB budget); the
parameter-paths view uses the paper's toy model instead. Everything a page shows for the demo is in the
bundle. `load_bundle` turns the bundle back into the engine's own objects
(`SurfaceSet`, `SALTrace`, ...), so the pages draw the demo and a live run with the same code. Rerun the
command after changing the engine; `--check` verifies the bundle loads and stays under the size budget.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from landscape.commands import COMMANDS, Command
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, SurfaceSpec, TrainSpec

DEMO_DIR = Path(__file__).resolve().parents[2] / "assets" / "demo"
DEMO_ENV = "UE_LANDSCAPE_DEMO"  # another bundle folder for the app (e.g. a bigger demo of your own)
MANIFEST, ARRAYS = "demo.json", "demo.npz"
FORMAT = 1
MAX_BYTES = 5_000_000  # the budget of the shipped demo (5 MB)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class DemoPlan:
    """What the demo computes: digits, the `cnn`, clean + EM + OPS, three kinds of slices, SAL and UD.

    Attributes:
        data: the embedded digits (all 1437 training / 360 test images).
        model: the digits default `cnn` (6 weight layers).
        train: the digits training default, `epochs` epochs.
        methods: the poisons next to the clean run (every one at its documented digits default).
        sal: how SAL is measured (the engine's fast default, as in the app).
        paths_model: the small model whose every weight is tracked for the parameter-paths view (the
            paper's toy softmax regression), trained clean and on each poison with the same recipe.
        surfaces: (name, spec) of the slices exported.
    """

    data: DataSpec = field(default_factory=DataSpec)
    model: ModelSpec = field(default_factory=lambda: ModelSpec(name="cnn"))
    train: TrainSpec = field(default_factory=lambda: TrainSpec(epochs=15))
    methods: tuple[str, ...] = ("em", "ops")
    sal: SALSpec = field(default_factory=SALSpec)
    paths_model: ModelSpec = field(default_factory=lambda: ModelSpec(name="linear"))
    surfaces: tuple[tuple[str, SurfaceSpec], ...] = field(default_factory=lambda: (
        ("pca-2d", SurfaceSpec(kind="pca", dims=2, resolution=25)),
        ("random-2d", SurfaceSpec(kind="random", dims=2, resolution=21)),
        ("pca-1d", SurfaceSpec(kind="pca", dims=1, resolution=41)),
        ("random-1d", SurfaceSpec(kind="random", dims=1, resolution=41)),
        ("interp-1d", SurfaceSpec(kind="interp", dims=1, resolution=41)),
        ("interp-2d", SurfaceSpec(kind="interp", dims=2, resolution=21)),
    ))

    def poison(self, method: str) -> PoisonSpec:
        return PoisonSpec(method=method, seed=self.train.seed)

    def quick(self, epochs: int = 2, resolution: int = 5) -> DemoPlan:
        """The same plan on a coarse grid and a few epochs: a smoke run of the whole pipeline (not the demo)."""
        return replace(self, train=self.train.replace(epochs=epochs),
                       surfaces=tuple((n, s.replace(resolution=resolution)) for n, s in self.surfaces))

    def experiment(self, method: str) -> ExperimentSpec:
        """The spec `run_experiment` gets for `method` (what the app's SAL/UD pages ask for, with this plan)."""
        return ExperimentSpec(data=self.data, model=self.model, train=self.train, poison=self.poison(method),
                              sal=self.sal)

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "methods": list(self.methods), "poisons": {m: self.poison(m).to_dict() for m in self.methods},
                "sal": self.sal.to_dict(), "paths_model": self.paths_model.to_dict(),
                "surfaces": {name: s.to_dict() for name, s in self.surfaces}}


@dataclass
class Demo:
    """The loaded bundle, as the engine's objects.

    Attributes:
        manifest: the JSON manifest (specs, versions, timings).
        histories: run label -> history arrays (`train_loss`, `test_acc`, ...).
        poison: method -> sample images and budget (the keys of `poison_sample` plus `budget`, `meta`).
        surfaces: slice name ("pca-2d", ...) -> `SurfaceSet`.
        sal: run label -> `SALTrace`.
        ud: method -> the engine's `UDReport` against the clean run.
        paths: run label -> every weight of `plan.paths_model` at every checkpoint, (T, P).
        path_names: a name per weight (P,); path_epochs: the checkpoint epochs (T,).
    """

    manifest: dict[str, Any]
    histories: dict[str, dict[str, np.ndarray]]
    poison: dict[str, dict[str, Any]]
    surfaces: Mapping[str, Any]
    sal: Mapping[str, Any] = field(default_factory=dict)
    ud: Mapping[str, Any] = field(default_factory=dict)
    paths: dict[str, np.ndarray] = field(default_factory=dict)
    path_names: list[str] = field(default_factory=list)
    path_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def methods(self) -> list[str]:
        return list(self.manifest["plan"]["methods"])

    @property
    def runs(self) -> list[str]:
        return ["clean", *self.methods]


def build(plan: DemoPlan, *, store: Any, device: str = "cpu", progress: Progress | None = None) -> Demo:
    """Run the plan through the engine (every stage cached in `store`) and collect the demo."""
    from landscape.app.views.poison import poison_sample
    from landscape.experiment import get_poisoned_train, get_splits, get_surface, get_training, run_experiment
    from landscape.figures import trajectory_matrix
    from landscape.poisons import budget_figures

    progress = progress or (lambda stage, done, total: None)
    started = time.perf_counter()
    splits = get_splits(plan.data)
    histories: dict[str, dict[str, np.ndarray]] = {}
    train_meta: dict[str, Any] = {}
    poison: dict[str, dict[str, Any]] = {}
    for run in ["clean", *plan.methods]:
        spec = PoisonSpec() if run == "clean" else plan.poison(run)
        if run != "clean":
            poisoned = get_poisoned_train(plan.data, spec, store=store, device=device, progress=progress)
            entry = _poison_entry(store, plan.data, spec)
            sample = poison_sample(splits.train.x, poisoned.x, splits.train.y)
            changed = (poisoned.x != splits.train.x).flatten(1).any(1)
            budget = entry.get("budget") or budget_figures(splits.train.x[changed], poisoned.x[changed])
            poison[run] = {**sample, "budget": budget, "class_names": list(splits.train.class_names),
                           "meta": {k: v for k, v in entry.items() if k != "budget"}}
        result = get_training(plan.data, plan.model, plan.train, spec, store=store, device=device, progress=progress)
        histories[run] = {k: np.asarray(v) for k, v in result.history.items()}
        train_meta[run] = {"diverged": result.diverged, "epochs_done": result.epochs_done,
                           "checkpoint_epochs": list(result.checkpoint_epochs)}
    sal: dict[str, Any] = {}
    ud: dict[str, Any] = {}
    for method in plan.methods:  # the app's SAL/UD call: clean vs poisoned with SAL every epoch, then UD
        result = run_experiment(plan.experiment(method), store=store, device=device, progress=progress)
        sal["clean"], sal[method], ud[method] = result.sal_clean, result.sal_poisoned, result.ud
    paths: dict[str, np.ndarray] = {}
    path_names: list[str] = []
    path_epochs = np.zeros(0, dtype=np.int64)
    for run in ["clean", *plan.methods]:  # every weight of the toy model over the epochs, clean vs poisoned
        spec = PoisonSpec() if run == "clean" else plan.poison(run)
        result = get_training(plan.data, plan.paths_model, plan.train, spec, store=store, device=device,
                              progress=progress)
        checkpoints = [{k: v.numpy() for k, v in c.items()} for c in result.checkpoints]
        paths[run], path_names = trajectory_matrix(checkpoints)
        path_epochs = np.asarray(result.checkpoint_epochs, dtype=np.int64)
    poisons = [plan.poison(m) for m in plan.methods]
    surfaces = {}
    for name, surface in plan.surfaces:
        surfaces[name] = get_surface(plan.data, plan.model, plan.train, poisons, surface, store=store, device=device,
                                     progress=progress)
    manifest = {"format": FORMAT, "command": "python -m landscape demo",
                "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "versions": _versions(), "plan": plan.to_dict(),
                "train": train_meta,
                "seconds": time.perf_counter() - started, "device": device}
    return Demo(manifest, histories, poison, surfaces, sal, ud, paths, path_names, path_epochs)


def _poison_entry(store: Any, data: DataSpec, poison: PoisonSpec) -> dict[str, Any]:
    """The crafting metadata the engine stored with the poison (budget figures, seconds, surrogate history)."""
    from landscape.stages.poison import PoisonStage

    crafted = PoisonStage.of(data, poison).load(store)
    return {} if crafted is None else dict(crafted.meta)


def _versions() -> dict[str, str]:
    import plotly
    import sklearn
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
            "sklearn": sklearn.__version__, "plotly": plotly.__version__}


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer, np.floating, np.bool_)):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple):
        return list(obj)
    return str(obj)


def save_bundle(demo: Demo, folder: str | Path) -> dict[str, int]:
    """Write `demo.json` and `demo.npz` into `folder` (atomically per file); returns their sizes in bytes."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    manifest = dict(demo.manifest)
    for run, h in demo.histories.items():
        arrays.update({f"train/{run}/{k}": np.asarray(v) for k, v in h.items()})
    manifest["poison"] = {}
    for method, p in demo.poison.items():
        for k in ("clean", "poisoned", "labels"):
            arrays[f"poison/{method}/{k}"] = np.asarray(p[k])
        manifest["poison"][method] = {k: v for k, v in p.items() if k not in ("clean", "poisoned", "labels")}
    manifest["surfaces"] = {}
    for name, sset in demo.surfaces.items():
        meta, arr = sset.to_store()
        manifest["surfaces"][name] = meta
        arrays.update({f"surface/{name}/{k}": np.asarray(v) for k, v in arr.items()})
    manifest["paths"] = {"runs": list(demo.paths), "names": demo.path_names,
                         "epochs": [int(e) for e in demo.path_epochs]}
    arrays.update({f"paths/{run}": np.asarray(v) for run, v in demo.paths.items()})
    manifest["sal"] = {run: trace.to_dict() for run, trace in demo.sal.items()}
    manifest["ud"] = {m: _to_jsonable(u) for m, u in demo.ud.items()}
    for key, value in list(arrays.items()):  # float64 grids and histories are stored as float32 (half the bytes)
        if value.dtype == np.float64:
            arrays[key] = value.astype(np.float32)
    text = json.dumps(manifest, indent=1, default=_json_default)
    tmp_json, tmp_npz = folder / f".{MANIFEST}.tmp", folder / f".{ARRAYS}.tmp.npz"
    tmp_json.write_text(text)
    np.savez_compressed(tmp_npz, **arrays)
    tmp_json.replace(folder / MANIFEST)
    tmp_npz.replace(folder / ARRAYS)
    return {MANIFEST: (folder / MANIFEST).stat().st_size, ARRAYS: (folder / ARRAYS).stat().st_size}


def _to_jsonable(obj: Any) -> Any:
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    return obj


def load_bundle(folder: str | Path | None = None) -> Demo | None:
    """The demo in `folder` as engine objects, or None if it is not there (the app then says how to build it).

    Raises:
        DataError: the bundle exists but is of another format or unreadable (rebuild it).
    """
    from landscape.errors import DataError

    folder = Path(folder) if folder is not None else demo_dir()
    if not (folder / MANIFEST).exists() or not (folder / ARRAYS).exists():
        return None
    try:
        manifest = json.loads((folder / MANIFEST).read_text())
        with np.load(folder / ARRAYS, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError) as err:
        raise DataError(f"the demo bundle in {folder} is unreadable ({err}); rebuild it: python -m landscape demo") \
            from None
    if manifest.get("format") != FORMAT:
        raise DataError(f"the demo bundle in {folder} has format {manifest.get('format')!r}, this app reads "
                        f"{FORMAT}; rebuild it: python -m landscape demo")

    def section(prefix: str) -> dict[str, np.ndarray]:
        return {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}

    runs = ["clean", *manifest["plan"]["methods"]]
    histories = {run: {k: v.astype(np.float64) for k, v in section(f"train/{run}/").items()} for run in runs}
    poison = {m: {**section(f"poison/{m}/"), **meta} for m, meta in manifest.get("poison", {}).items()}
    # The engine objects are built on first use: the Overview draws the histories without importing torch.
    surfaces = LazyMap({name: functools.partial(_surface_set, meta, section(f"surface/{name}/"))
                        for name, meta in manifest.get("surfaces", {}).items()})
    sal = LazyMap({run: functools.partial(_sal_trace, d) for run, d in manifest.get("sal", {}).items()})
    ud = LazyMap({m: functools.partial(_ud_report, d) for m, d in manifest.get("ud", {}).items()})
    meta = manifest.get("paths") or {"runs": [], "names": [], "epochs": []}
    paths = {run: arrays[f"paths/{run}"].astype(np.float64) for run in meta["runs"]}
    return Demo(manifest, histories, poison, surfaces, sal, ud, paths, list(meta["names"]),
                np.asarray(meta["epochs"], dtype=np.int64))


class LazyMap(Mapping[str, Any]):
    """A read-only mapping whose values are built by their factory on first access (then kept)."""

    def __init__(self, factories: dict[str, Callable[[], Any]]) -> None:
        self._factories = factories
        self._values: dict[str, Any] = {}
        self._lock = threading.Lock()  # the app shares one demo between sessions (threads)

    def __getitem__(self, key: str) -> Any:
        with self._lock:
            if key not in self._values:
                self._values[key] = self._factories[key]()
            return self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._factories)

    def __len__(self) -> int:
        return len(self._factories)


def _surface_set(meta: dict[str, Any], part: dict[str, np.ndarray]) -> Any:
    from landscape.surface import SurfaceSet

    return SurfaceSet.from_store(meta, {k: (v.astype(np.float64) if v.dtype == np.float32 else v)
                                        for k, v in part.items()})


def _sal_trace(data: dict[str, Any]) -> Any:
    from landscape.sal import SALTrace

    return SALTrace.from_dict(data)


def _ud_report(data: dict[str, Any]) -> Any:
    from landscape.ud import UDReport

    return UDReport.from_dict(data)


def demo_dir() -> Path:
    """The bundle folder the app reads: `$UE_LANDSCAPE_DEMO`, else assets/demo of the repository."""
    return Path(os.environ[DEMO_ENV]).expanduser() if os.environ.get(DEMO_ENV) else DEMO_DIR


def bundle_size(folder: str | Path = DEMO_DIR) -> int:
    """Bytes of the bundle files in `folder`."""
    return sum((Path(folder) / f).stat().st_size for f in (MANIFEST, ARRAYS) if (Path(folder) / f).exists())


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=str(DEMO_DIR), help="bundle folder (default: assets/demo of the repository)")
    p.add_argument("--epochs", type=int, default=DemoPlan().train.epochs, help="training epochs of every run")
    p.add_argument("--methods", default=",".join(DemoPlan().methods), help="comma-separated poison methods")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--store", default=None, help="store folder (default: $UE_LANDSCAPE_STORE or ~/.cache/ue-landscape)")
    p.add_argument("--check", action="store_true", help="only load the existing bundle and report its size")
    p.add_argument("--quick", action="store_true", help="2 epochs on 5-point grids: a smoke run, not the demo")


def run(a: argparse.Namespace) -> int:
    from landscape.commands.common import tqdm_progress
    from landscape.device import resolve_device
    from landscape.store import Store

    if a.check:
        demo = load_bundle(a.out)
        if demo is None:
            print(f"no demo bundle in {a.out}; build it with: python -m landscape demo")
            return 1
        size = bundle_size(a.out)
        print(f"demo bundle {a.out}: {size / 1e6:.2f} MB ({'within' if size <= MAX_BYTES else 'OVER'} the "
              f"{MAX_BYTES / 1e6:.1f} MB budget); runs {', '.join(demo.runs)}; surfaces {', '.join(demo.surfaces)}; "
              f"SAL for {', '.join(demo.sal) or 'none'}; UD for {', '.join(demo.ud) or 'none'}")
        return 0 if size <= MAX_BYTES else 1
    base = DemoPlan()
    plan = DemoPlan(train=base.train.replace(epochs=a.epochs),
                    methods=tuple(m.strip() for m in a.methods.split(",") if m.strip()))
    if a.quick:
        plan = plan.quick()
    device = str(resolve_device(a.device))
    with tqdm_progress() as progress:
        demo = build(plan, store=Store(a.store), device=device, progress=progress)
    sizes = save_bundle(demo, a.out)
    total = sum(sizes.values())
    print(f"wrote {a.out}: " + ", ".join(f"{k} {v / 1e3:.0f} kB" for k, v in sizes.items())
          + f" = {total / 1e6:.2f} MB in {demo.manifest['seconds']:.0f} s on {device}")
    if total > MAX_BYTES:
        print(f"warning: the bundle is over the {MAX_BYTES / 1e6:.0f} MB budget; lower the surface resolutions")
        return 1
    return 0


COMMANDS.register("demo")(Command("build the precomputed demo the app opens with (assets/demo)", add_arguments, run))
