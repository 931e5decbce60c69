"""Session state: the sidebar's `AppSpec`, kept across page switches, and small per-session records."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st

from landscape.app import cost, engine
from landscape.app.widgets import guard, stopped_notice
from landscape.config import SAL_PRESETS, DataSpec, ModelSpec, PoisonSpec, TrainSpec
from landscape.spec import plural

DEFAULT_EPOCHS = 10  # the live default: seconds on a laptop CPU for digits + cnn
MAX_LIVE_EPOCHS = 100
RATIO_STEP = 0.05  # the poison ratio slider: its step and its smallest value (ratio 0 poisons no image: refused)
# The unit of the custom budget field, by the method's norm (L0 counts pixels; "none" is a strength, not a norm).
BUDGET_UNITS = {"linf": "L∞, pixel scale [0, 1]", "l2": "L2, pixel scale [0, 1]", "l0": "L0, pixels per image",
                "none": "strength, not norm-bounded"}


@dataclass(frozen=True)
class AppSpec:
    """What the sidebar picks; the engine specs are derived from it (so pages never build specs by hand).

    Attributes:
        dataset: registered data set name, or a user data set as ``npz:PATH`` / ``folder:PATH[?size=N]``.
        model: registered model name, or a user model ``package.module:factory``.
        method: registered poison method (the poisoned run; the clean run always comes with it).
        eps: budget in the method's own units (None = the method's default for the data set).
        ratio: fraction of the training set poisoned.
        epochs: training epochs of both runs.
        seed: seed of training and crafting.
        data_root: folder of the data set's files (for data sets that read files).
        n_train: stratified training subset (None = all), for quick runs on a CPU.
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
        """The data set's spec; a user data set's name carries its path (``npz:PATH``, ``folder:PATH?size=N``)."""
        if ":" in self.dataset:
            return DataSpec.parse(self.dataset, n_train=self.n_train)
        return DataSpec(name=self.dataset, root=self.data_root or None, n_train=self.n_train)

    def model_spec(self) -> ModelSpec:
        return ModelSpec(name=self.model)

    def train(self) -> TrainSpec:
        return TrainSpec(epochs=self.epochs, seed=self.seed)

    def poison(self) -> PoisonSpec:
        return PoisonSpec(method=self.method, eps=self.eps, ratio=self.ratio, seed=self.seed)

    def dataset_label(self) -> str:
        """The data set's name as captions and cost lines show it: an upload as the sidebar does, by its file name.

        (Its copy in the store is named by the hash of its bytes.) Any other name is shown as it is.
        """
        uploads = st.session_state.get("_uploads", {})
        return _label(self.dataset, uploads) if self.dataset in uploads else self.dataset

    def label(self) -> str:
        eps = "default budget" if self.eps is None else f"eps {self.eps:g}"
        sal = "" if self.sal == "fast" else f" / SAL {self.sal} preset"
        return (f"{self.dataset_label()} / {self.model} / {self.method} ({eps}, ratio {self.ratio:g}) / "
                f"{plural(self.epochs, 'epoch')}{sal}")


def persisted(key: str, default: Any, valid: Sequence[Any] | None = None) -> str:
    """Widget key backed by the permanent session key `key`, so the value survives switching pages.

    Streamlit drops a widget's own key when its page is left, so the value lives in `key` and the widget (key
    `_w_{key}`, given `on_change=keep, args=(key,)`) is set from it on every run. A kept value not in `valid`
    (when given: e.g. a layer of another model) is replaced by `default`.
    """
    if key not in st.session_state or (valid is not None and st.session_state[key] not in valid):
        st.session_state[key] = default
    st.session_state[f"_w_{key}"] = st.session_state[key]
    return f"_w_{key}"


def keep(key: str) -> None:
    """A `persisted` widget's `on_change`: copy its value to the permanent key."""
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


def show_problems() -> None:
    """Say on the page what is wrong with the store or the demo (`engine.problems`); stop if nothing can be read."""
    for problem in engine.problems():
        st.error(problem.message, icon="⚠️")
        if problem.fatal:
            st.stop()


def _upload(sb: Any) -> dict[str, str]:
    """The uploader of a `.npz` data set: the session's uploads, data set name (``npz:PATH``) -> the file's name.

    A new upload is checked and kept in the store once, then selected; a refused one is explained and the page
    goes on with the other data sets.
    """
    from landscape import userconfig

    file = sb.file_uploader(f"Your data set (.npz, up to {userconfig.MAX_UPLOAD_BYTES >> 20} MiB)", type=["npz"],
                            key="upload_npz", help="arrays x, y (and x_test, y_test); read without pickle, kept "
                            "in the store by content", max_upload_size=userconfig.MAX_UPLOAD_BYTES >> 20)
    uploads: dict[str, str] = st.session_state.setdefault("_uploads", {})
    kept: set[str] = st.session_state.setdefault("_upload_ids", set())  # file ids already kept (hashed once)
    if file is not None and file.file_id not in kept:
        with guard(stop=False):
            name = userconfig.keep_upload(file.getvalue(), engine.store(), name=file.name).text()
            uploads[name], st.session_state["dataset"] = file.name, name
            kept.add(file.file_id)
    return uploads


def _label(name: str, uploads: dict[str, str]) -> str:
    """A data set's name as the sidebar shows it: user data by kind and file name (an upload by its own name)."""
    kind, sep, path = name.partition(":")
    return f"{kind}: {uploads.get(name) or Path(path.split('?', 1)[0]).name} (yours)" if sep else name


def sidebar() -> AppSpec:
    """Render the shared sidebar and return the current spec (the same on every page).

    Above it: any store or demo problem, and a live run that was stopped on the previous script run.

    It offers the registered data sets and models, the user's configured ones (`landscape.userconfig`) and an
    uploaded `.npz`.
    """
    _leave_legacy_pages_mode()
    show_problems()
    stopped_notice()
    d = AppSpec()
    sb = st.sidebar
    sb.header("Experiment")
    with guard():
        datasets, models, methods = (engine.registry_names(k) for k in ("dataset", "model", "method"))
    from landscape import userconfig

    mine = userconfig.user_config()
    for problem in mine.problems:
        st.error(f"{problem.rstrip('.')}. Left out; the other entries are offered.", icon="⚠️")
    datasets = datasets + [spec.text() for spec in mine.data]
    models = models + list(mine.models)
    uploads = _upload(sb)
    datasets += [n for n in uploads if n not in datasets]
    labels = {n: _label(n, uploads) for n in datasets}

    def pick(widget: Any, label: str, *args: Any, key: str, default: Any, **kwargs: Any) -> Any:
        return widget(label, *args, key=persisted(key, default), on_change=keep, args=(key,), **kwargs)

    dataset = pick(sb.selectbox, "Data set", datasets, key="dataset", default=d.dataset, format_func=labels.get,
                   help="digits ships with scikit-learn, mnist-5k with the [mnist] extra; MNIST, Fashion-MNIST and "
                   f"CIFAR need their files; your own: {userconfig.DATA_VAR}, {userconfig.CONFIG_VAR} or an upload")
    data_root = n_train = None
    if engine.needs_root(dataset):
        data_root = pick(sb.text_input, "Data folder", key="data_root", default="",
                         help="python -m landscape download --dataset ... --root DIR")
        n_train = int(pick(sb.number_input, "Training subset (0 = all)", 0, 50_000, step=500, key="n_train",
                           default=2000)) or None
    model = pick(sb.selectbox, "Model", models, key="model", default=d.model,
                 help=f"your own: package.module:factory in {userconfig.MODELS_VAR} or {userconfig.CONFIG_VAR}")
    method = pick(sb.selectbox, "UE method", methods, key="method", default=d.method,
                  help="the poisoned run; a clean run is always trained beside it")
    eps = None
    with guard():
        info = engine.method_defaults(method, AppSpec(dataset=dataset, data_root=data_root or None).data())
        custom = pick(sb.toggle, f"Custom budget (default {cost.describe_budget(info['norm'], info['eps'])})",
                      key="custom_eps", default=False)
        if custom:
            step, smallest = (1.0, 1.0) if info["norm"] == "l0" else (info["eps"] / 8, 1e-4)  # every budget is > 0
            eps = float(pick(sb.number_input, f"Budget ({BUDGET_UNITS.get(info['norm'], info['norm'])})",
                             min_value=smallest, step=step, format="%.4f", key=f"eps_{dataset}_{method}",
                             default=info["eps"]))
            sb.caption(cost.describe_budget(info["norm"], eps))
    ratio = pick(sb.slider, "Poison ratio", RATIO_STEP, 1.0, step=RATIO_STEP, key="ratio", default=d.ratio,
                 help="fraction of the training images perturbed (above 0: at 0 the run would be the clean one)")
    epochs = int(pick(sb.number_input, "Epochs", 1, MAX_LIVE_EPOCHS, key="epochs", default=d.epochs))
    seed = int(pick(sb.number_input, "Seed", 0, 2**31 - 1, key="seed", default=d.seed))
    sal = pick(sb.radio, "SAL procedure", SAL_PRESETS, key="sal", default=d.sal, horizontal=True,
               help="fast: the engine's default, about 12x cheaper on digits; where SAL carries signal it ranks the "
               "cnn's layers a little less faithfully than the authors' procedure reproduces itself (about one "
               "swapped pair of layers per epoch, bench/README.md); paper: the authors' procedure (10 full SGD "
               "passes per layer and direction), where a single layer's rank matters")
    return AppSpec(dataset, model, method, eps, float(ratio), epochs, seed, data_root or None, n_train, sal)


def remember(kind: str, name: str, value: Any) -> None:
    """Keep a small per-session record (e.g. budgets of crafted methods) for comparison figures."""
    st.session_state.setdefault(f"memo::{kind}", {})[name] = value


def remembered(kind: str) -> dict[str, Any]:
    return dict(st.session_state.get(f"memo::{kind}", {}))
