"""Streamlit glue for the app: the one engine-side module that imports streamlit.

Everything a page needs that is not a widget call or a figure builder lives here: the sidebar spec
shared by all pages (kept in session state so it survives page switches), the cached engine calls
(`st.cache_data` for results, `st.cache_resource` for the store and the demo bundle), running
expensive work behind a button with a cost estimate and live progress, turning `LandscapeError` into
`st.error`, and the download buttons under every figure and table. `import landscape` never loads this
module; only the pages do.
"""

from __future__ import annotations

import contextlib
import json
import math
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from landscape.config import SAL_PRESETS, DataSpec, ModelSpec, PoisonSpec, TrainSpec
from landscape.errors import LandscapeError
from landscape.store import Store, default_root

if TYPE_CHECKING:
    import pandas as pd

T = TypeVar("T")


def _pd() -> Any:
    """pandas, imported on first use (it is only needed for tables; the first chart should not wait for it)."""
    import pandas

    return pandas
Progress = Callable[[str, int, int], None]

DEFAULT_EPOCHS = 10  # the live default: seconds on a laptop CPU for digits + cnn
MAX_LIVE_EPOCHS = 100
# Cost of the paper SAL preset relative to the fast one (digits cnn, bench/sal_speed.py: 499 s vs 41 s).
PAPER_SAL_COST = 12.0


# ------------------------------------------------------------------------------------------------ the spec


@dataclass(frozen=True)
class AppSpec:
    """What the sidebar picks; the engine specs are derived from it (so pages never build specs by hand).

    Attributes:
        dataset: registered data set name.
        model: registered model name.
        method: registered poison method (the poisoned run; the clean run always comes with it).
        eps: budget in the method's own units (None = the method's default for the data set).
        ratio: fraction of the training set poisoned.
        epochs: training epochs of both runs.
        seed: seed of training and crafting.
        data_root: folder of the CIFAR files (ignored for digits).
        n_train: stratified training subset (None = all), for quick CIFAR runs on a CPU.
        sal: SAL procedure, a `SALSpec` preset: "fast" (the engine's default) or "paper" (the authors').
    """

    dataset: str = "digits"
    model: str = "cnn"
    method: str = "em"
    eps: float | None = None
    ratio: float = 1.0
    epochs: int = DEFAULT_EPOCHS
    seed: int = 0
    data_root: str | None = None
    n_train: int | None = None
    sal: str = "fast"

    def data(self) -> DataSpec:
        return DataSpec(name=self.dataset, root=self.data_root or None, n_train=self.n_train)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(name=self.model)

    def train(self) -> TrainSpec:
        return TrainSpec(epochs=self.epochs, seed=self.seed)

    def poison(self) -> PoisonSpec:
        return PoisonSpec(method=self.method, eps=self.eps, ratio=self.ratio, seed=self.seed)

    def label(self) -> str:
        eps = "default budget" if self.eps is None else f"eps {self.eps:g}"
        sal = "" if self.sal == "fast" else f" / SAL {self.sal} preset"
        return (f"{self.dataset} / {self.model} / {self.method} ({eps}, ratio {self.ratio:g}) / {self.epochs} epochs"
                f"{sal}")


def _registry_names(kind: str) -> list[str]:
    if kind == "dataset":
        from landscape.data import DATASETS

        return DATASETS.names()
    if kind == "model":
        from landscape.models import MODELS

        return MODELS.names()
    if kind == "method":
        from landscape.poisons import POISONS

        return POISONS.names()
    raise ValueError(f"unknown registry {kind!r}; valid: dataset, model, method")


def _needs_root(dataset: str) -> bool:
    """Whether the data set reads files from a folder the user names (its registry metadata)."""
    from landscape.data import DATASETS

    return bool(DATASETS.meta(dataset)["needs_root"])


@st.cache_data(show_spinner=False)
def method_defaults(method: str, dataset: str) -> dict[str, Any]:
    """The method's norm and default budget for `dataset` (from the method class itself)."""
    from landscape.poisons import build

    m = build(PoisonSpec(method=method), dataset=dataset)
    return {"norm": m.norm, "eps": float(m.eps), "granularity": m.granularity, "doc": (type(m).__doc__ or "").strip()}


def describe_budget(norm: str, eps: float) -> str:
    """Human form of a budget: L∞ in /255 units, L2 as a radius, L0 in pixels."""
    if norm == "linf":
        return f"L∞ {eps * 255:.3g}/255 = {eps:.4g}"
    if norm == "l2":
        return f"L2 {eps:.4g}"
    if norm == "l0":
        return f"L0 {int(eps)} pixel(s)"
    return f"strength {eps:.4g} (not norm-bounded)"


def _persisted(key: str, default: Any) -> str:
    """Widget key backed by a permanent session key, so the value survives switching pages."""
    if key not in st.session_state:
        st.session_state[key] = default
    st.session_state[f"_w_{key}"] = st.session_state[key]
    return f"_w_{key}"


def _keep(key: str) -> None:
    st.session_state[key] = st.session_state[f"_w_{key}"]


def _leave_legacy_pages_mode() -> None:
    """Make a page opened by URL on a fresh server run inside app.py's `st.navigation`, not on its own.

    Streamlit starts a server in its legacy multipage mode when a `pages/` folder sits next to the main
    script, and leaves it only once `st.navigation` is called. The first request of a fresh server for
    `/poison` would then run pages/poison.py without app.py (no page config, the folder's own navigation).
    Switching the flag and rerunning routes it through app.py, which opens the page that was asked for.
    This is done once per session: the flag is process-wide, so later runs are routed by app.py anyway
    (except under `AppTest`, which resets the flag before every run; its runs then stay as they were).
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # a future Streamlit without the legacy mode
        return
    if getattr(PagesManager, "uses_pages_directory", False) and not st.session_state.get("_routed"):
        st.session_state["_routed"] = True
        PagesManager.uses_pages_directory = False
        st.rerun()


def sidebar() -> AppSpec:
    """Render the shared sidebar and return the current spec (the same on every page)."""
    _leave_legacy_pages_mode()
    d = AppSpec()
    sb = st.sidebar
    sb.header("Experiment")
    with guard():
        datasets, models, methods = (_registry_names(k) for k in ("dataset", "model", "method"))
    dataset = sb.selectbox("Data set", datasets, key=_persisted("dataset", d.dataset), on_change=_keep,
                           args=("dataset",), help="digits ships with scikit-learn, mnist-5k with the [mnist] extra; "
                           "MNIST, Fashion-MNIST and CIFAR need their files")
    data_root = n_train = None
    if _needs_root(dataset):
        data_root = sb.text_input("Data folder", key=_persisted("data_root", ""), on_change=_keep,
                                  args=("data_root",), help="python -m landscape download --dataset ... --root DIR")
        n_train = int(sb.number_input("Training subset (0 = all)", 0, 50_000, step=500,
                                      key=_persisted("n_train", 2000), on_change=_keep, args=("n_train",))) or None
    model = sb.selectbox("Model", models, key=_persisted("model", d.model), on_change=_keep, args=("model",))
    method = sb.selectbox("UE method", methods, key=_persisted("method", d.method), on_change=_keep,
                          args=("method",), help="the poisoned run; a clean run is always trained beside it")
    eps = None
    with guard():
        info = method_defaults(method, dataset)
        custom = sb.toggle(f"Custom budget (default {describe_budget(info['norm'], info['eps'])})",
                           key=_persisted("custom_eps", False), on_change=_keep, args=("custom_eps",))
        if custom:
            step = 1.0 if info["norm"] == "l0" else info["eps"] / 8
            key = f"eps_{dataset}_{method}"
            eps = float(sb.number_input(f"Budget ({info['norm']}, pixel scale [0, 1])", min_value=0.0, step=step,
                                        format="%.4f", key=_persisted(key, info["eps"]), on_change=_keep,
                                        args=(key,)))
            sb.caption(describe_budget(info["norm"], eps))
    ratio = sb.slider("Poison ratio", 0.0, 1.0, step=0.05, key=_persisted("ratio", d.ratio), on_change=_keep,
                      args=("ratio",), help="fraction of the training images perturbed")
    epochs = int(sb.number_input("Epochs", 1, MAX_LIVE_EPOCHS, key=_persisted("epochs", d.epochs), on_change=_keep,
                                 args=("epochs",)))
    seed = int(sb.number_input("Seed", 0, 2**31 - 1, key=_persisted("seed", d.seed), on_change=_keep,
                               args=("seed",)))
    sal = sb.radio("SAL procedure", SAL_PRESETS, key=_persisted("sal", d.sal), on_change=_keep, args=("sal",),
                   horizontal=True, help="fast: the engine's default, about 12x cheaper on digits and as close to the "
                   "authors' procedure as that procedure is to itself with another seed; paper: the authors' "
                   "procedure (10 full SGD passes per layer and direction), for checking a result")
    return AppSpec(dataset, model, method, eps, float(ratio), epochs, seed, data_root or None, n_train, sal)


# ------------------------------------------------------------------------------------------------ errors


@contextlib.contextmanager
def guard(stop: bool = True) -> Iterator[None]:
    """Show an engine error as `st.error` with the engine's message (no stack trace); stop the page."""
    try:
        yield
    except LandscapeError as err:
        st.error(str(err), icon="⚠️")
        if stop:
            st.stop()


# ------------------------------------------------------------------------------------------------ store


@st.cache_resource(show_spinner=False)
def _store_at(root: str) -> Store:
    return Store(root)


def store() -> Store:
    """The store of `$UE_LANDSCAPE_STORE` (or the default cache folder), one object per root."""
    return _store_at(str(default_root()))


@st.cache_resource(show_spinner=False)
def device() -> str:
    """The compute device, chosen once (cuda > mps > cpu)."""
    from landscape.device import resolve_device

    return str(resolve_device("auto"))


# ------------------------------------------------------------------------------------------------ downloads


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-").lower() or "figure"


def show_figure(fig: go.Figure, name: str, *, key: str | None = None) -> None:
    """Render a figure with a download button for a self-contained HTML file (built only on click)."""
    key = key or _slug(name)
    st.plotly_chart(fig, key=f"fig-{key}", config={"displaylogo": False,
                                                    "toImageButtonOptions": {"filename": _slug(name)}})
    st.download_button("Download figure (HTML)", data=lambda: fig.to_html(include_plotlyjs=True, full_html=True),
                       file_name=f"{_slug(name)}.html", mime="text/html", key=f"dl-{key}", on_click="ignore",
                       icon=":material/download:")


def table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    """The table as CSV or JSON (records) bytes."""
    if fmt == "csv":
        return df.to_csv(index=False).encode()
    if fmt == "json":
        return df.to_json(orient="records", indent=1).encode()
    raise ValueError(f"unknown table format {fmt!r}; valid: csv, json")


def show_table(df: pd.DataFrame, name: str, *, key: str | None = None) -> None:
    """Render a table with CSV and JSON download buttons."""
    key = key or _slug(name)
    st.dataframe(df, hide_index=True, key=f"tbl-{key}")
    left, right = st.columns(2)
    left.download_button("Download CSV", data=table_bytes(df, "csv"), file_name=f"{_slug(name)}.csv",
                         mime="text/csv", key=f"csv-{key}", on_click="ignore", icon=":material/download:")
    right.download_button("Download JSON", data=table_bytes(df, "json"), file_name=f"{_slug(name)}.json",
                          mime="application/json", key=f"json-{key}", on_click="ignore", icon=":material/download:")


def json_download(obj: Any, name: str, *, key: str | None = None) -> None:
    """A JSON download of a plain object (numpy arrays become lists)."""
    text = json.dumps(obj, indent=1, default=lambda o: o.tolist() if isinstance(o, np.ndarray) else str(o))
    st.download_button(f"Download {name} (JSON)", data=text, file_name=f"{_slug(name)}.json",
                       mime="application/json", key=f"json-{key or _slug(name)}", on_click="ignore",
                       icon=":material/download:")


# ------------------------------------------------------------------------------------------------ progress


class StatusProgress:
    """A `(stage, done, total)` callback drawing one progress bar per stage inside an `st.status` box."""

    def __init__(self, box: Any) -> None:
        self.box = box
        self.bars: dict[str, Any] = {}
        self.started = time.perf_counter()

    def __call__(self, stage: str, done: int, total: int) -> None:
        bar = self.bars.get(stage)
        if bar is None:
            bar = self.bars[stage] = self.box.progress(0.0, text=stage)
        fraction = min(max(done / total, 0.0), 1.0) if total else 1.0
        bar.progress(fraction, text=f"{stage}: {done}/{total}  ({time.perf_counter() - self.started:.0f} s)")


def run_with_progress(label: str, work: Callable[[Progress], T]) -> T | None:
    """Run `work(progress)` inside an `st.status` box with live bars; engine errors become `st.error`."""
    with st.status(label, expanded=True) as box:
        progress = StatusProgress(box)
        try:
            result = work(progress)
        except LandscapeError as err:
            box.update(label=f"{label}: failed", state="error")
            st.error(str(err), icon="⚠️")
            return None
        box.update(label=f"{label}: done in {time.perf_counter() - progress.started:.1f} s", state="complete",
                   expanded=False)
    return result


def format_seconds(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "unknown"
    if seconds < 90:
        return f"{max(seconds, 1):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


# ------------------------------------------------------------------------------------------------ training


def training_result(spec: AppSpec, method: str, progress: Progress | None = None) -> Any:
    """The engine's `TrainResult` of one run of `spec` ("clean" or its poison), computed or from the store."""
    from landscape.experiment import get_training

    poison = PoisonSpec() if method == "clean" else spec.poison()
    kwargs = {"progress": progress} if progress is not None else {}
    return get_training(spec.data(), spec.model_spec(), spec.train(), poison, store=store(), device=device(),
                        **kwargs)


@st.cache_data(max_entries=32, show_spinner=False)
def training_history(spec: AppSpec, method: str) -> dict[str, np.ndarray]:
    """Per-epoch history arrays of one run (store hit, or computed without progress)."""
    return {k: np.asarray(v) for k, v in training_result(spec, method).history.items()}


def _done_key(kind: str, spec: AppSpec) -> str:
    return f"done::{kind}::{spec}"


def mark_done(kind: str, spec: AppSpec) -> None:
    st.session_state[_done_key(kind, spec)] = True


def is_done(kind: str, spec: AppSpec) -> bool:
    """True if this session already computed `kind` for `spec` (the store then serves it instantly)."""
    return bool(st.session_state.get(_done_key(kind, spec)))


def dataframe_of_history(histories: dict[str, dict[str, np.ndarray]]) -> pd.DataFrame:
    """Long table run x epoch of the training history."""
    rows = []
    for run, h in histories.items():
        for i in range(len(h["train_loss"])):
            rows.append({"run": run, "epoch": i + 1, **{k: float(v[i]) for k, v in h.items()}})
    return _pd().DataFrame(rows)


ASSETS = Path(__file__).resolve().parent.parent / "assets"


# ------------------------------------------------------------------------------------------------ poisons


def poisoned_train(spec: AppSpec, progress: Progress | None = None) -> Any:
    """The poisoned training `ImageSet` of `spec` (crafted once, then served by the store)."""
    from landscape.experiment import get_poisoned_train

    kwargs = {"progress": progress} if progress is not None else {}
    return get_poisoned_train(spec.data(), spec.poison(), store=store(), device=device(), **kwargs)


def crafting_estimate(spec: AppSpec) -> dict[str, Any]:
    """The method's own cost estimate (gradient evaluations, CPU seconds) for the training set of `spec`."""
    from landscape.experiment import get_splits
    from landscape.poisons import build

    train = get_splits(spec.data()).train
    method = build(spec.poison(), dataset=spec.dataset, device=device())
    n = int(round(spec.ratio * len(train)))
    return method.estimate_cost(n, train.image_shape)


def _poison_entry_meta(spec: AppSpec) -> dict[str, Any] | None:
    """The crafting metadata the engine stored with the poison (budget figures, seconds), if stored."""
    from landscape.stages.poison import PoisonStage

    with contextlib.suppress(LandscapeError):
        crafted = PoisonStage.of(spec.data(), spec.poison()).load(store())
        return None if crafted is None else dict(crafted.meta)
    return None


@st.cache_data(max_entries=16, show_spinner=False)
def poison_view(spec: AppSpec) -> dict[str, Any]:
    """Sample images and budget figures of the crafted poison of `spec` (store hit; computes if absent).

    Returns the keys of `landscape.commands.demo.poison_sample` (`clean`, `poisoned`, `labels`, `n_changed`,
    `n_train`) plus `class_names`, `budget` (the engine's budget figures over the poisoned images) and `meta`;
    the demo bundle holds the same keys for its methods.
    """
    from landscape.commands.demo import poison_sample
    from landscape.experiment import get_splits
    from landscape.poisons import budget_figures

    clean = get_splits(spec.data()).train
    poisoned = poisoned_train(spec)
    sample = poison_sample(clean.x, poisoned.x, clean.y)
    meta = _poison_entry_meta(spec) or {}
    changed = (poisoned.x != clean.x).flatten(1).any(1)
    budget = meta.get("budget") or budget_figures(clean.x[changed], poisoned.x[changed])
    return {**sample, "class_names": list(clean.class_names), "budget": budget,
            "meta": {k: v for k, v in meta.items() if k != "budget"}}


def _ready(kind: str, spec: AppSpec, stored: Callable[[], bool]) -> bool:
    """True if this session computed `kind` for `spec`, or the store already holds it (remembered once seen)."""
    if is_done(kind, spec):
        return True
    try:
        found = stored()
    except LandscapeError:
        return False
    if found:
        mark_done(kind, spec)
    return found


def poison_ready(spec: AppSpec) -> bool:
    from landscape.stages.poison import PoisonStage

    return _ready("poison", spec, lambda: PoisonStage.of(spec.data(), spec.poison()).exists(store()))


def training_ready(spec: AppSpec) -> bool:
    from landscape.stages.train import TrainStage

    d, m, t = spec.data(), spec.model_spec(), spec.train()
    return _ready("train", spec, lambda: all(TrainStage.of(d, m, t, p).exists(store())
                                             for p in (PoisonSpec(), spec.poison())))


def budget_table(rows: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per method of the engine's budget figures (pixel scale [0, 1]; L∞ also in /255)."""
    out = []
    for method, b in rows.items():
        out.append({"method": method, "linf": b.get("linf"), "linf_x255": None if b.get("linf") is None
                    else b["linf"] * 255, "l2_mean": b.get("l2_mean"), "l2_max": b.get("l2_max"),
                    "l0_mean": b.get("l0_mean"), "psnr_db": b.get("psnr"), "n_changed": b.get("n_changed")})
    return _pd().DataFrame(out)


def budget_for_figure(b: dict[str, Any]) -> dict[str, float]:
    """The engine's budget dict in the keys `figures.budget_figure` draws (L2 = per-image mean)."""
    return {"linf": b.get("linf", np.nan), "l2": b.get("l2_mean", np.nan), "l0": b.get("l0_mean", np.nan),
            "psnr": np.nan if b.get("psnr") is None else b["psnr"]}


def remember(kind: str, name: str, value: Any) -> None:
    """Keep a small per-session record (e.g. budgets of crafted methods) for comparison figures."""
    st.session_state.setdefault(f"memo::{kind}", {})[name] = value


def remembered(kind: str) -> dict[str, Any]:
    return dict(st.session_state.get(f"memo::{kind}", {}))


# ------------------------------------------------------------------------------------------------ surfaces

SURFACE_KINDS = {
    "pca": "PCA plane of both trajectories (paths drawn)",
    "random": "Random filter-normalised plane around each model",
    "interp": "Clean ↔ poisoned line (or plane through both and the initialisation)",
}


def surface_request(kind: str, dims: int, resolution: int) -> Any:
    """The engine's `SurfaceSpec` for the page's choices (the rest at the engine's defaults)."""
    from landscape.config import SurfaceSpec

    return SurfaceSpec(kind=kind, dims=dims, resolution=resolution)


def surfaces(spec: AppSpec, surface: Any, progress: Progress | None = None) -> Any:
    """The engine's `SurfaceSet` for the clean and the poisoned run of `spec` (trains them if needed)."""
    from landscape.experiment import get_surface

    kwargs = {"progress": progress} if progress is not None else {}
    return get_surface(spec.data(), spec.model_spec(), spec.train(), spec.poison(), surface, store=store(),
                       device=device(), **kwargs)


@st.cache_data(max_entries=16, show_spinner=False)
def surface_set(spec: AppSpec, surface: Any) -> Any:
    """`surfaces(spec, surface)` served from the store (computed without progress if absent)."""
    return surfaces(spec, surface)


def surface_ready(spec: AppSpec, surface: Any) -> bool:
    from landscape.stages.surface import SurfaceStage

    return _ready(f"surface-{surface.key()}", spec, lambda: SurfaceStage.of(
        spec.data(), spec.model_spec(), spec.train(), spec.poison(), surface).exists(store()))


@st.cache_data(max_entries=32, show_spinner=False)
def surface_estimate(spec: AppSpec, surface: Any) -> str:
    """The engine's cost estimate of the grid(s) (calibrated on this machine), plus training if not stored."""
    from landscape.experiment import get_splits
    from landscape.models import build_model
    from landscape.surface import estimate_cost, eval_subset

    splits = get_splits(spec.data())
    images = splits.test if surface.split == "test" else splits.train
    net = build_model(spec.model, splits.image_shape, splits.num_classes, seed=spec.seed)
    cost = estimate_cost(net, surface.points, eval_subset(images, surface.n_eval, surface.seed),
                         batch_size=surface.batch_size, device=device())
    grids = 2 if surface.kind == "random" or (surface.kind == "pca" and surface.plane == "own") else 1
    text = f"{grids} grid(s) of {cost.describe()}"
    if not training_ready(spec):
        text += f"; first trains 2 x {spec.epochs} epochs (and crafts `{spec.method}` if needed)"
    return text


def path_views(surface: Any, metric: str = "loss") -> dict[str, Any]:
    """The engine's projected paths as `figures.PathView`s (surface value = loss or accuracy at the projection)."""
    from landscape.figures import PathView

    out = {}
    for name, p in surface.paths.items():
        real, plane = (p.real_loss, p.plane_loss) if metric == "loss" else (p.real_acc, p.plane_acc)
        out[name] = PathView(epochs=p.epochs, a=p.alpha, b=p.beta, real_loss=real, surface_loss=plane,
                             residual=p.residual)
    return out


def surface_table(sset: Any) -> pd.DataFrame:
    """Long table of every grid point of every surface (label, alpha, beta, loss, accuracy, standard errors)."""
    rows = []
    for label, s in sset.surfaces.items():
        aa, bb = np.meshgrid(s.alpha, s.beta, indexing="ij")
        rows.append(_pd().DataFrame({"surface": label, "kind": s.kind, "alpha": aa.ravel(), "beta": bb.ravel(),
                                  "loss": s.loss.ravel(), "loss_se": s.loss_se.ravel(), "acc": s.acc.ravel(),
                                  "acc_se": s.acc_se.ravel()}))
    return _pd().concat(rows, ignore_index=True) if rows else _pd().DataFrame()


def paths_table(sset: Any) -> pd.DataFrame:
    """Long table of every projected checkpoint: coordinates, off-plane residual, real vs on-plane loss."""
    rows = []
    for label, s in sset.surfaces.items():
        for name, p in s.paths.items():
            for i in range(len(p.epochs)):
                rows.append({"surface": label, "run": name, "epoch": int(p.epochs[i]), "alpha": float(p.alpha[i]),
                             "beta": float(p.beta[i]), "residual": float(p.residual[i]),
                             "relative_residual": float(p.relative_residual[i]), "real_loss": float(p.real_loss[i]),
                             "plane_loss": float(p.plane_loss[i]), "real_acc": float(p.real_acc[i]),
                             "plane_acc": float(p.plane_acc[i])})
    return _pd().DataFrame(rows)


def parameter_trajectories(spec: AppSpec, method: str, max_weights: int = 2000) -> dict[str, Any]:
    """Each weight's value at every checkpoint of the clean and the poisoned run (small models only).

    Returns `epochs` (T,), `clean` and `poisoned` (T, P) and `names` (P,); models with more than
    `max_weights` weights keep the `max_weights` whose final clean and poisoned values differ most.
    """
    from landscape.figures import diverging_parameters, trajectory_matrix

    runs = {r: training_result(spec, r) for r in ("clean", method)}
    to_numpy = [[{k: v.numpy() for k, v in c.items()} for c in runs[r].checkpoints] for r in ("clean", method)]
    (clean, names), (poisoned, _) = trajectory_matrix(to_numpy[0]), trajectory_matrix(to_numpy[1])
    t = min(len(clean), len(poisoned))  # a diverged run keeps fewer checkpoints
    clean, poisoned = clean[:t], poisoned[:t]
    epochs = np.asarray(runs["clean"].checkpoint_epochs[:t])
    if clean.shape[1] > max_weights:
        keep = np.sort(diverging_parameters(clean, poisoned, max_weights))
        clean, poisoned, names = clean[:, keep], poisoned[:, keep], [names[i] for i in keep]
    return {"epochs": epochs, "clean": clean, "poisoned": poisoned, "names": names}


parameter_paths_cached = st.cache_data(max_entries=8, show_spinner=False)(parameter_trajectories)


def live_parameter_paths(spec: AppSpec) -> dict[str, Any] | None:
    """Parameter paths of the live clean and poisoned runs of a small model (after they were trained)."""
    if not training_ready(spec):
        return None
    with guard():
        return {**parameter_paths_cached(spec, spec.method), "model": spec.model, "method": spec.method}


def demo_parameter_paths(method: str) -> dict[str, Any] | None:
    """The demo's toy-model parameter paths, clean vs `method`."""
    d = demo()
    if d is None or method not in d.paths:
        return None
    return {"epochs": d.path_epochs, "clean": d.paths["clean"], "poisoned": d.paths[method], "names": d.path_names,
            "model": f"{d.manifest['plan']['paths_model']['name']}, the paper's toy model", "method": method}


def render_surfaces(sset: Any, *, metric: str, log: bool, poisoned: str, name: str) -> None:
    """Figures of a `SurfaceSet`: 1D curves, or contour + 3D (+ side by side and difference), and fidelity."""
    from landscape import figures

    label = "loss" if metric == "loss" else "accuracy"

    def values(s: Any) -> np.ndarray:
        return s.loss if metric == "loss" else s.acc

    surfaces = dict(sset.surfaces)
    first = next(iter(surfaces.values()))
    if first.ndim == 1:
        markers = {n: a for n, (a, _b) in first.anchors.items()} if len(surfaces) == 1 else {}
        xlabel = "interpolation coefficient (0 = first model, 1 = second)" if first.kind == "interp" \
            else "step along the direction (filter-normalised units)" if first.kind == "random" \
            else "coordinate along PC1"
        show_figure(figures.slice_1d(first.alpha, {k: values(s)[:, 0] for k, s in surfaces.items()}, xlabel=xlabel,
                                     ylabel=label, log=log, markers=markers), f"slice-1d-{name}")
    elif len(surfaces) == 1:
        s = first
        markers = dict(s.anchors) if s.kind == "interp" else None
        # One view at a time (not tabs): a 3D scene is only built when asked for, so the page opens fast.
        view = st.radio("View", ["2D contour with paths", "3D surface"], horizontal=True, key="ls_view_one")
        if view.startswith("2D"):
            show_figure(figures.contour(s.alpha, s.beta, values(s), paths=path_views(s, metric), markers=markers,
                                        log=log, label=label, title=f"{label} on the {s.kind} plane"),
                        f"contour-{name}")
        else:
            show_figure(figures.surface_3d(s.alpha, s.beta, values(s), paths=path_views(s, metric), log=log,
                                           label=label, title=f"{label} on the {s.kind} plane"), f"surface3d-{name}")
    else:
        panels = {k: figures.Panel(s.alpha, s.beta, values(s), path_views(s, metric)) for k, s in surfaces.items()}
        view = st.radio("View", ["Side by side (shared scale)", "Difference", "3D surfaces"], horizontal=True,
                        key="ls_view_many")
        if view.startswith("Side"):
            show_figure(figures.contours_side_by_side(panels, log=log, label=label), f"side-by-side-{name}")
        elif view == "Difference":
            a, b = "clean", poisoned if poisoned in surfaces else next(k for k in surfaces if k != "clean")
            same_grid = np.array_equal(surfaces[a].alpha, surfaces[b].alpha) and np.array_equal(
                surfaces[a].beta, surfaces[b].beta)
            if same_grid:
                st.caption("Same coordinates around each model (each direction filter-normalised to its model).")
                show_figure(figures.difference_contour(surfaces[b].alpha, surfaces[b].beta, values(surfaces[b]),
                                                       values(surfaces[a]), names=(b, a), log=log, label=label),
                            f"difference-{name}")
            else:
                st.info("The two surfaces use different coordinate ranges, so there is no point-wise difference.")
        else:
            lo, hi = figures.shared_range(*(values(s) for s in surfaces.values()), log=log)
            for col, (k, s) in zip(st.columns(len(surfaces)), surfaces.items(), strict=True):
                with col:
                    show_figure(figures.surface_3d(s.alpha, s.beta, values(s), paths=path_views(s, metric),
                                                   zrange=(lo, hi), log=log, label=label, title=f"around {k}"),
                                f"surface3d-{name}-{k}")
    with st.expander("How faithful is this view? Explained variance, off-plane residuals, real vs surface loss",
                     expanded=first.kind == "pca"):
        variance = {k: s.explained_variance for k, s in surfaces.items() if len(s.explained_variance)}
        if variance:
            show_figure(figures.explained_variance(variance), f"explained-variance-{name}")
        paths = {f"{k}: {p}" if len(surfaces) > 1 else p: v for k, s in surfaces.items()
                 for p, v in path_views(s, metric).items()}
        if paths:
            show_figure(figures.path_fidelity(paths), f"path-fidelity-{name}")
        info = {k: {key: v for key, v in s.info.items() if isinstance(v, (int, float, str, bool))}
                for k, s in surfaces.items()}
        st.json(info, expanded=False)
    st.markdown("**Tables**")
    show_table(surface_table(sset), f"surface-grid-{name}")
    if any(s.paths for s in surfaces.values()):
        show_table(paths_table(sset), f"surface-paths-{name}")


# ------------------------------------------------------------------------------------------------ sources


def source_picker(page: str, live_ready: bool | None = None) -> str:
    """"demo" (the shipped precomputed results) or "live" (the sidebar spec), as a radio on the page."""
    options = ["demo", "live"]
    labels = {"demo": "Shipped demo (instant)", "live": "Live run (sidebar spec)"}
    key = f"source_{page}"
    if key not in st.session_state:
        st.session_state[key] = "live" if live_ready else "demo"
    if demo() is None:
        st.warning("The shipped demo is missing (assets/demo); run `python -m landscape demo` to rebuild it.")
        st.session_state[key] = "live"
    return st.radio("Results", options, format_func=labels.get, key=key, horizontal=True)


# ------------------------------------------------------------------------------------------------ the demo


@st.cache_resource(show_spinner=False)
def _demo_at(folder: str, stamp: float) -> Any:
    from landscape.commands.demo import load_bundle

    return load_bundle(folder)


def demo() -> Any:
    """The shipped demo bundle (`landscape.commands.demo.Demo`), or None if missing; loaded once per file version.

    Shared across sessions: treat it as read-only.
    """
    from landscape.commands.demo import MANIFEST, demo_dir

    folder = demo_dir()
    path = folder / MANIFEST
    stamp = path.stat().st_mtime if path.exists() else 0.0
    try:
        return _demo_at(str(folder), stamp)
    except LandscapeError as err:
        st.warning(str(err))
        return None


def demo_surfaces(kind: str, dims: int) -> tuple[Any, str]:
    """The demo's `SurfaceSet` for (kind, dims) and the poisoned run the page compares with, or (None, "")."""
    d = demo()
    if d is None:
        return None, ""
    sset = d.surfaces.get(f"{kind}-{dims}d")
    if sset is None:
        return None, ""
    choices = d.methods
    poisoned = (st.selectbox("Poisoned run of the demo", choices, key="demo_poisoned") if len(choices) > 1
                else choices[0])
    return sset, poisoned


def demo_label() -> str:
    d = demo()
    if d is None:
        return "no demo"
    plan = d.manifest["plan"]
    return (f"{plan['data']['name']} / {plan['model']['name']} / clean + {', '.join(plan['methods'])} / "
            f"{plan['train']['epochs']} epochs, built by `{d.manifest['command']}`")


# ------------------------------------------------------------------------------------------------ overview

QUICK_EPOCHS = 8


def quick_spec() -> AppSpec:
    """The Overview's live demo: digits, the cnn, clean vs EM at its digits default, a few epochs."""
    return AppSpec(dataset="digits", model="cnn", method="em", epochs=QUICK_EPOCHS, seed=0)


def epoch_seconds(spec: AppSpec) -> float | None:
    """Seconds per training epoch measured when the demo was built, if it used the same data set and model."""
    d = demo()
    if d is None:
        return None
    plan = d.manifest["plan"]
    if plan["data"]["name"] != spec.dataset or plan["model"]["name"] != spec.model:
        return None
    seconds = np.concatenate([h["seconds"] for h in d.histories.values() if "seconds" in h])
    return float(np.median(seconds)) if seconds.size else None


def training_estimate(spec: AppSpec, runs: int = 2) -> str:
    """A cost line for training `runs` models of `spec` (from the demo's measured epoch time, if comparable)."""
    per_epoch = epoch_seconds(spec)
    if per_epoch is None:
        return f"{runs} x {spec.epochs} epochs of `{spec.model}` (no timing reference for this data set and model)"
    return (f"{runs} x {spec.epochs} epochs of `{spec.model}`, about {format_seconds(runs * spec.epochs * per_epoch)} "
            f"at the demo machine's {per_epoch:.2f} s per epoch")


def sal_estimate(spec: AppSpec, runs: int = 2) -> str:
    """A cost line for SAL at every epoch of `runs` runs (from the demo's measured SAL time, if comparable)."""
    d = demo()
    comparable = d is not None and d.sal and d.manifest["plan"]["data"]["name"] == spec.dataset and \
        d.manifest["plan"]["model"]["name"] == spec.model
    if not comparable:
        return f"SAL of every layer at every epoch ({spec.sal} preset; no timing reference for this data set and model)"
    per_epoch = float(np.median(np.concatenate([t.seconds for t in d.sal.values()])))  # the demo: fast preset
    if spec.sal == "paper":
        per_epoch *= PAPER_SAL_COST
    return (f"SAL of every layer at every epoch ({spec.sal} preset), about "
            f"{format_seconds(runs * spec.epochs * per_epoch)} at the demo machine's {per_epoch:.1f} s per epoch")


def quick_estimate(spec: AppSpec) -> str:
    try:
        craft = crafting_estimate(spec)
    except LandscapeError as err:
        return f"(no estimate: {err})"
    return (f"Cost: crafting about {craft['gradient_evals']:,} image-gradient evaluations "
            f"(~{format_seconds(craft['cpu_seconds'])} on one CPU thread), then {training_estimate(spec)}, "
            f"plus {sal_estimate(spec)}.")


def quick_demo(spec: AppSpec, progress: Progress | None = None) -> Study:
    """The quick demo is the experiment of `spec`: clean and poisoned training with SAL per epoch, and UD."""
    return experiment(spec, progress)


def demo_metrics(d: Any) -> None:
    """Clean test accuracy of every demo run (and UD of every method when the demo has it)."""
    cols = st.columns(len(d.runs))
    for col, run in zip(cols, d.runs, strict=True):
        acc = d.histories[run]["test_acc"]
        col.metric(f"{run}: clean test accuracy", f"{acc[-1]:.1%}")
        ud_metric(col, run, d.ud.get(run))


def quick_metrics(study: Study) -> None:
    cols = st.columns(len(study.histories))
    for col, (run, h) in zip(cols, study.histories.items(), strict=True):
        col.metric(f"{run}: clean test accuracy", f"{h['test_acc'][-1]:.1%}")
        ud_metric(col, run, study.ud.get(run))


def ud_metric(col: Any, run: str, report: Any) -> None:
    """The UD of a poisoned run as a metric, with #LP and β in its help (nothing for the clean run)."""
    if report is None:
        return
    col.metric(f"UD ({run})", f"{report.ud:.3f}" if report.ud_defined else "undefined",
               help=f"#LP {report.lp_poisoned:.2f} poisoned vs {report.lp_clean:.2f} clean, β = {report.beta:.3g}")


# ------------------------------------------------------------------------------------------------ SAL and UD


@dataclass
class Study:
    """What the SAL and UD pages draw, from the demo or a live run: SAL per run, UD per poisoned run.

    Attributes:
        sal: run label ("clean", method...) -> the engine's `SALTrace`.
        ud: method -> the engine's `UDReport` (against the clean run).
        histories: run label -> training history arrays.
        dataset: data set name (the digits caveat is shown for "digits").
        label: where the numbers come from, for captions.
    """

    sal: dict[str, Any]
    ud: dict[str, Any]
    histories: dict[str, dict[str, np.ndarray]]
    dataset: str
    label: str

    @property
    def methods(self) -> list[str]:
        return [m for m in self.ud]


def demo_study() -> Study | None:
    d = demo()
    if d is None or not d.sal:
        return None
    return Study(dict(d.sal), dict(d.ud), d.histories, d.manifest["plan"]["data"]["name"],
                 f"shipped demo: {demo_label()}")


def experiment_ready(spec: AppSpec) -> bool:
    from landscape.stages.ud import UDStage

    return _ready("experiment", spec, lambda: UDStage.of(experiment_spec(spec)).exists(store()))


def experiment_spec(spec: AppSpec) -> Any:
    """The engine's `ExperimentSpec` of the sidebar spec (SAL with the chosen preset)."""
    from landscape.config import ExperimentSpec, SALSpec

    return ExperimentSpec(data=spec.data(), model=spec.model_spec(), train=spec.train(), poison=spec.poison(),
                          sal=SALSpec.preset(spec.sal))


def study_of(result: Any, label: str) -> Study:
    """A `Study` of the engine's `ExperimentResult` (one clean and one poisoned run)."""
    method = result.spec.poison.method
    histories = {"clean": {k: np.asarray(v) for k, v in result.clean.history.items()},
                 method: {k: np.asarray(v) for k, v in result.poisoned.history.items()}}
    return Study({"clean": result.sal_clean, method: result.sal_poisoned}, {method: result.ud}, histories,
                 result.spec.data.name, label)


def experiment(spec: AppSpec, progress: Progress | None = None) -> Study:
    """Clean and poisoned training of `spec` with SAL at every epoch, and UD: the engine's `run_experiment`."""
    from landscape.experiment import run_experiment

    kwargs = {"progress": progress} if progress is not None else {}
    result = run_experiment(experiment_spec(spec), store=store(), device=device(), **kwargs)
    return study_of(result, f"live run: {spec.label()}")


@st.cache_data(max_entries=16, show_spinner=False)
def experiment_cached(spec: AppSpec) -> Study:
    return experiment(spec)


def study_or_stop(page: str, spec: AppSpec) -> Study:
    """The Study the page shows: the demo, or the live run of `spec` (behind a button with a cost estimate)."""
    source = source_picker(page, experiment_ready(spec))
    if source == "demo":
        study = demo_study()
        if study is None:
            st.info("The shipped demo has no SAL/UD results; rebuild it with `python -m landscape demo`, or run live.")
            st.stop()
        return study
    if not experiment_ready(spec):
        with guard():
            st.info(f"Cost: {training_estimate(spec)} (if not stored yet), plus {sal_estimate(spec)}, after crafting "
                    f"`{spec.method}` if it is not stored yet.")
        if not st.button("Train with SAL and compute UD", type="primary", key=f"{page}_run"):
            st.stop()
        if run_with_progress("SAL and UD", lambda p: experiment(spec, p)) is None:
            st.stop()
        mark_done("experiment", spec)
    with guard():
        return experiment_cached(spec)


def sal_table(study: Study) -> pd.DataFrame:
    """Long table run x epoch x layer of SAL, its two sides and the accuracy variant."""
    rows = []
    for run, trace in study.sal.items():
        for t, epoch in enumerate(trace.epochs):
            for j, layer in enumerate(trace.layers):
                rows.append({"run": run, "epoch": int(epoch), "layer": layer, "sal": float(trace.sal[t, j]),
                             "s_max": float(trace.s_max[t, j]), "s_min": float(trace.s_min[t, j]),
                             "baseline_loss": float(trace.baseline[t, j]),
                             "acc_variant_pp": float(trace.acc_variant[t, j])})
    return _pd().DataFrame(rows)


def ud_table(study: Study) -> pd.DataFrame:
    """One row per poisoned run: UD, β, #LP of both runs, and our continuous measures."""
    rows = []
    for method, r in study.ud.items():
        rows.append({"method": method, "ud": r.ud, "beta": r.beta, "lp_clean": r.lp_clean, "lp_poisoned": r.lp_poisoned,
                     "w1_overall (ours)": r.w1_overall, "mean_sal_ratio (ours)": r.mean_ratio_overall,
                     "clean_test_acc": float(study.histories["clean"]["test_acc"][-1]),
                     "poisoned_test_acc": float(study.histories[method]["test_acc"][-1])
                     if method in study.histories else None})
    return _pd().DataFrame(rows)


def counts_table(study: Study, method: str) -> pd.DataFrame:
    r = study.ud[method]
    rows = [{"run": "clean", "epoch": int(e), "learnable_layers": float(c)}
            for e, c in zip(r.epochs_clean, r.counts_clean, strict=True)]
    rows += [{"run": method, "epoch": int(e), "learnable_layers": float(c)}
             for e, c in zip(r.epochs_poisoned, r.counts_poisoned, strict=True)]
    return _pd().DataFrame(rows)


def layer_table(study: Study, method: str) -> pd.DataFrame:
    """Per layer: how often it is learnable in each run, and our threshold-free distances."""
    r = study.ud[method]
    layers = list(r.layers or study.sal["clean"].layers)
    return _pd().DataFrame({"layer": layers, "learnable_epochs_clean": r.flags_clean.sum(0),
                         "learnable_epochs_poisoned": r.flags_poisoned.sum(0),
                         "w1_distance (ours)": r.w1_layers, "mean_sal_ratio (ours)": r.mean_ratio_layers})


def digits_caveat(study: Study, method: str) -> None:
    """DESIGN §5.5: why UD barely separates clean and poisoned on 8x8 digits, with this study's own numbers."""
    if study.dataset != "digits":
        return
    h_c, h_p = study.histories.get("clean"), study.histories.get(method)
    r = study.ud.get(method)
    numbers = ""
    if h_c is not None and h_p is not None and r is not None:
        ud = f"{r.ud:.3f}" if r.ud_defined else "undefined"
        numbers = (f" In this run the engine measured: final training loss {h_c['train_loss'][-1]:.3g} (clean) vs "
                   f"{h_p['train_loss'][-1]:.3g} ({method}), clean test accuracy {h_c['test_acc'][-1]:.1%} vs "
                   f"{h_p['test_acc'][-1]:.1%}, UD = {ud}.")
    st.info("**Reading UD on 8x8 digits.** The paper's UD ≪ 1 for unlearnable examples comes from CIFAR-scale "
            "data, where clean training keeps a non-zero loss for many epochs while the poisoned model's layers go "
            "flat. On the embedded digits, clean training also reaches a near-zero training loss within a few "
            "epochs, so the clean model's layers flatten too and the learnable-layer count no longer tracks how "
            "much a poison hurts: UD barely separates clean from poisoned training here (it can land near, below "
            "or above 1) even when clean test accuracy drops. The app shows what the engine computes; nothing is "
            "tuned to reproduce the paper." + numbers,
            icon=":material/info:")


def benchmark_files() -> list[Path]:
    """Benchmark tables shipped in assets/benchmarks (CSV, Markdown or the benchmark's JSON)."""
    folder = ASSETS / "benchmarks"
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix in (".csv", ".md", ".json"))


def show_benchmark(path: Path) -> None:
    """Render one benchmark file: CSV and JSON rows as a downloadable table, Markdown as text."""
    if path.suffix == ".csv":
        show_table(_pd().read_csv(path), path.stem, key=f"bench-{path.name}")
    elif path.suffix == ".json":
        from landscape.bench import read_summary

        data = read_summary(path)
        rows = data.get("rows") if isinstance(data, dict) else None
        if rows:
            show_table(_pd().DataFrame(rows), path.stem, key=f"bench-{path.name}")
        else:
            json_download(data, path.stem, key=f"bench-{path.name}")
    else:
        st.markdown(path.read_text())
