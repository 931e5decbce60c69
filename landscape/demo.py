"""The shipped demo: a read-only store snapshot in assets/demo that the app reads before the user's store.

The snapshot is a store folder (`landscape.store`: `<stage>/<key>/{meta.json, arrays.safetensors,
SHA256SUMS}`), filled by computing the stage requests of `requests()` into an empty store, so every entry
is exactly what the store writes, with its checksums. The app opens a `Store` with the snapshot as a
read-only layer (`Store(root, snapshots=(demo_dir(),))`): a request of the demo is served from it, anything
else is computed into the user's store. So the demo and a live run go through the same calls, and the
app's default sidebar (`DEMO_*` below; a test checks they agree) opens on the demo.

`problems(folder)` says what makes a snapshot unusable or damaged (the app shows it on every page, and
shows what is intact).

Add an entry: append the stage of your request to `requests()` (its inputs come with it), rebuild with
`python -m landscape demo` (heavy; an interrupted build resumes from `assets/.demo-build`, see `build`) and
check `python -m landscape demo --check` (every request stored, nothing else, every entry intact, under
`MAX_BYTES`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landscape import config
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, SurfaceSpec, TrainSpec
from landscape.paths import user_path
from landscape.store import ENTRY_FILES, Store

if TYPE_CHECKING:
    from landscape.multitask import CrossTaskSpec
    from landscape.stages.base import Stage

DEMO_DIR = Path(__file__).resolve().parent.parent / "assets" / "demo"
DEMO_ENV = "UE_LANDSCAPE_DEMO"  # another snapshot folder for the app (e.g. a bigger demo of your own); "" = none
MAX_BYTES = 5_000_000  # the budget of the shipped demo (5 MB)

# The app's default sidebar spec: digits, the cnn, clean vs EM at its digits default, the fast SAL preset.
DEMO_DATA = DataSpec()
DEMO_MODEL = ModelSpec(name="cnn")
DEMO_TRAIN = TrainSpec(epochs=10)
DEMO_POISON = PoisonSpec(method="em")
DEMO_SAL = SALSpec.preset("fast")
DEMO_RESOLUTION = 21  # the Landscape page's default grid
DEMO_CURVATURE = config.CurvatureSpec()  # the Curvature page's settings (the engine's defaults, every epoch)
SURFACE_KINDS = ("pca", "random", "interp")


def demo_dir() -> Path | None:
    """The snapshot the app reads: `$UE_LANDSCAPE_DEMO` ("" = none), else assets/demo of the repository."""
    if DEMO_ENV in os.environ:
        return user_path(os.environ[DEMO_ENV], f"${DEMO_ENV}") if os.environ[DEMO_ENV] else None
    return DEMO_DIR


def experiment() -> ExperimentSpec:
    """The demo's clean-vs-EM experiment (what the SAL and UD pages ask for by default)."""
    return ExperimentSpec(data=DEMO_DATA, model=DEMO_MODEL, train=DEMO_TRAIN, poison=DEMO_POISON, sal=DEMO_SAL)


def cross_task() -> CrossTaskSpec:
    """The demo's cross-task probe: what the Cross-task page asks for by default (em, ops, ar; 30 epochs; SAL)."""
    from landscape import multitask

    return multitask.CrossTaskSpec.for_methods(multitask.DEFAULT_METHODS, seed=DEMO_TRAIN.seed, data=DEMO_DATA,
                                               train=multitask.DEFAULT_TRAIN, sal=multitask.DEFAULT_SAL)


def demo_layers() -> list[str]:
    """The weight layers of the demo's model (the rows of its SAL heatmaps), in depth order."""
    from landscape.models import weight_layers
    from landscape.stages.base import build_net

    return weight_layers(build_net(DEMO_MODEL, DEMO_DATA))


def requests() -> list[Stage[Any]]:
    """Every stage the demo holds (each brings its inputs: the poison, both runs, their SAL). One place: add yours.

    What each page opens on: the UD experiment (Overview, Poison, Train, SAL, UD), the surfaces (Landscape), the
    curvature of both runs (Curvature; λ_max and trace of a SAL cell), the 1D slice of every layer at the last
    epoch (the SAL page's cell panel, whose default cell is the first layer there) and the cross-task probe's 16
    task models with the UD of its 12 poisoned ones (Cross-task). tests/test_demo.py checks that each page's
    default request is among these keys.
    """
    from landscape.stages.crosstask import run_stages, ud_stages
    from landscape.stages.curvature import CurvatureStage
    from landscape.stages.surface import LayerSliceStage, SurfaceStage
    from landscape.stages.ud import UDStage

    runs = (DEMO_DATA, DEMO_MODEL, DEMO_TRAIN)
    surfaces = [SurfaceStage.of(*runs, DEMO_POISON, SurfaceSpec(kind=kind, dims=dims, resolution=DEMO_RESOLUTION))
                for kind in SURFACE_KINDS for dims in (2, 1)]
    curvature = [CurvatureStage.of(*runs, poison, DEMO_CURVATURE) for poison in (PoisonSpec(), DEMO_POISON)]
    slices = [LayerSliceStage.of(*runs, DEMO_POISON, config.LayerSliceSpec(layers=(layer,), epoch=DEMO_TRAIN.epochs))
              for layer in demo_layers()]
    return [UDStage.of(experiment()), *surfaces, *curvature, *slices, *run_stages(cross_task()).values(),
            *ud_stages(cross_task()).values()]


def _entries(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*/*") if p.is_dir() and not p.name.startswith("."))


def _unread(folder: Path, stages: list[Stage[Any]]) -> list[tuple[str, str]]:
    """The (stage, key) entries of `folder` that none of `stages` reads (`landscape.stages.base.closure`)."""
    from landscape.stages.base import closure

    needed = closure(stages)
    return [(e.parent.name, e.name) for e in _entries(folder) if (e.parent.name, e.name) not in needed]


def snapshot_bytes(folder: Path) -> int:
    """Bytes of the snapshot's entries."""
    return sum(f.stat().st_size for entry in _entries(folder) for f in entry.iterdir() if f.is_file())


@dataclass
class CheckReport:
    """What `check` found: requests not stored, entries no request reads, entries that are not intact, the size."""

    folder: str
    entries: int
    bytes: int
    missing: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    broken: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (not self.missing and not self.unread and not self.broken and self.entries > 0
                and self.bytes <= MAX_BYTES)

    def describe(self) -> str:
        lines = [f"demo snapshot {self.folder}: {self.entries} entries, {self.bytes / 1e6:.2f} MB "
                 f"({'within' if self.bytes <= MAX_BYTES else 'OVER'} the {MAX_BYTES / 1e6:.0f} MB budget)"]
        lines += [f"missing (rebuild: python -m landscape demo): {m}" for m in self.missing]
        lines += [f"read by no request (a rebuild drops it): {u}" for u in self.unread]
        lines += [f"not intact: {b}" for b in self.broken]
        return "\n".join(lines)


def _broken(folder: Path) -> list[str]:
    """The entries of the snapshot `folder` that are incomplete or fail their integrity check ("stage/key")."""
    import warnings

    with tempfile.TemporaryDirectory() as empty, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Store(empty, snapshots=(folder,))  # read-only: a broken entry is reported, never removed
        return [f"{e.parent.name}/{e.name}" for e in _entries(folder)
                if {p.name for p in e.iterdir()} != set(ENTRY_FILES) or store.origin(e.parent.name, e.name) is None]


def problems(folder: Path) -> list[str]:
    """What makes the snapshot `folder` unusable or damaged, one line each with what to do (empty: it is fine).

    Reads every entry's checksums (a few MB); changes nothing. The app shows these lines on every page.
    """
    fix = (f"rebuild it with `python -m landscape demo --out {folder}`" if folder != DEMO_DIR else
           "restore it with `git checkout assets/demo` or rebuild it with `python -m landscape demo`")
    other = f"or set {DEMO_ENV} to another snapshot folder (\"\" = no demo)"
    if not folder.exists():
        return [f"the demo snapshot {folder} does not exist: {fix}, {other}"]
    if not folder.is_dir():
        return [f"the demo snapshot {folder} is a file, not a snapshot folder: {fix}, {other}"]
    entries = _entries(folder)
    if not entries:
        return [f"the demo snapshot {folder} holds no store entries: {fix}, {other}"]
    broken = _broken(folder)
    if broken:
        return [f"the demo snapshot {folder} is damaged: {len(broken)} of {len(entries)} entries fail their "
                f"integrity check (e.g. {broken[0]}) and are not shown; {fix}, {other}"]
    return []


def check(folder: str | Path = DEMO_DIR) -> CheckReport:
    """Verify a snapshot without changing it: every request stored (same keys), nothing else, intact, the size."""
    import warnings

    folder = Path(folder)
    stages = requests()
    report = CheckReport(str(folder), len(_entries(folder)), snapshot_bytes(folder), broken=_broken(folder),
                         unread=[f"{stage}/{key}" for stage, key in _unread(folder, stages)])
    with tempfile.TemporaryDirectory() as empty, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        store = Store(empty, snapshots=(folder,))
        report.missing = [f"{stage.folder} {stage.record()}" for stage in stages if stage.load(store) is None]
    return report


def build_dir(out: str | Path = DEMO_DIR) -> Path:
    """The build store of the snapshot `out`: `.<name>-build` beside it, kept when a build stops, reused by the next."""
    out = Path(out)
    return out.parent / f".{out.name}-build"


def build(out: str | Path = DEMO_DIR, *, device: str = "cpu",
          progress: Callable[[str, int, int], None] | None = None) -> CheckReport:
    """Compute every request into the build store, then put that store in place of `out` (and `check` it).

    Resumable: the requests are computed into `build_dir(out)`, a store like any other, so a build that stops
    (an error, Ctrl-C, a killed process) keeps every entry it finished there and the next build only computes
    the rest. Only a finished build replaces `out`, by renames (the old snapshot is moved aside first, then
    removed), so `out` is never half a snapshot. Entries of the build store that no request reads any more (a
    request changed since an earlier build) are dropped before it ships (`landscape.stages.base.closure`).
    """
    from landscape.stages.base import Context, no_progress

    out, work = Path(out), build_dir(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    store = Store(work)
    ctx = Context(store, device, progress or no_progress)
    stages = requests()
    for stage in stages:
        stage.get(ctx)
    for stage_name, key in _unread(work, stages):
        store.discard(stage_name, key)
    store.sweep()  # lock files and temporaries are not part of a snapshot
    old = out.parent / f".{out.name}-old-{uuid.uuid4().hex}"
    if out.exists():
        out.rename(old)
    work.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return check(out)
