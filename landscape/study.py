"""The Python API: your model and your data through the same study the CLI and the app run.

For notebooks and scripts::

    from landscape.study import run_study
    study = run_study(factory, (x_train, y_train), (x_test, y_test), poison="em", epochs=10)
    study.ud.ud, study.figures()["sal"]

`run_study` takes

- a model: a factory ``factory(image_shape, num_classes) -> nn.Module`` (the contract of
  `landscape.models.user`), an `nn.Module` (every run starts from a copy of its weights), a registered model
  name or ``package.module:factory``;
- data: an (images, labels) pair of torch tensors or NumPy arrays, a `torch.utils.data.Dataset` of (image,
  label) items, a `DataSpec` or its text (``"digits"``, ``"npz:PATH"``, ``"folder:PATH?size=32"``). Images
  are (N, H, W), (N, C, H, W) or (N, H, W, C) with C = 1 or 3, uint8 0..255 or float in [0, 1] (the rules of
  `landscape.data.npz`); labels are class indices 0..K-1. Without a test set a seeded, stratified 80/20 split
  is made;
- a poison: a method name or `PoisonSpec` crafted on your training images (its defaults chosen by image size and
  channels, `landscape.data.user`), or your own poisoned training images (`poisoned=`, aligned with the
  training images; ``PoisonSpec(method="provided")``).

and returns a `Study`: the clean and poisoned runs, SAL of every layer at every epoch, UD (Ye, Su, Qian, ICLR
2025), loss surfaces, as the result objects the app shows, with Plotly figures from `landscape.figures` and
a safetensors export of any run's weights. Everything goes through the stage layer, so it is cached in the
store: your arrays are written once into the store's ``inputs`` folder as a content-named ``.npz`` (the key
of every result holds its content and the fingerprint of your model's code and architecture), and the same
call returns at once the second time. `analyse_weights` does the same for weights trained elsewhere: SAL at
that point and surfaces around it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from landscape.config import (
    CurvatureSpec,
    DataSpec,
    ExperimentSpec,
    LayerSliceSpec,
    ModelSpec,
    PoisonSpec,
    SALSpec,
    SurfaceSpec,
    TrainSpec,
)
from landscape.curvature import CurvatureTrace
from landscape.data import npz
from landscape.data.user import split_indices
from landscape.device import resolve_device
from landscape.display import experiment_line, experiment_rows, experiment_title, html_table, listed, number, span
from landscape.errors import DataError, SpecError
from landscape.experiment import ExperimentResult, get_curvature, get_layer_slices, get_surface
from landscape.models.user import adopt
from landscape.progress import tqdm_progress
from landscape.sal import SALTrace
from landscape.seeds import API_ADVICE, Spread, run_seeds, seed_summary, spread_over_seeds
from landscape.stages.base import Context, StageProgress
from landscape.stages.ud import resolve_experiment
from landscape.stages.weights import ImportedCurvatureStage, ImportedRun, ImportedSALStage, ImportedSurfaceStage
from landscape.store import Store
from landscape.store_names import INPUTS, refuse_a_non_store
from landscape.surface_results import SurfaceSet
from landscape.train import TrainResult
from landscape.ud import UDReport
from landscape.weights import save_weights

ModelLike = str | Callable[[tuple[int, int, int], int], nn.Module] | nn.Module
DataLike = DataSpec | str | tuple[Any, Any] | torch.utils.data.Dataset
DEFAULT_SURFACE = SurfaceSpec(kind="pca", resolution=21)
DEFAULT_POISON = "em"
DEFAULT_WEIGHTS_SURFACE = SurfaceSpec(kind="random", resolution=21)


# ------------------------------------------------------------------------------------------------ inputs


def _numpy(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    array = np.asarray(value)
    if array.dtype.hasobject:
        raise DataError(f"{what} are not numbers (a {type(value).__name__} of {type(array.flat[0]).__name__}); give "
                        f"a tensor or array")
    return array


def _pair(data: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(images, labels) arrays of an (images, labels) pair or a Dataset of (image, label) items."""
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return _numpy(data[0], f"the {what} images"), _numpy(data[1], f"the {what} labels")
    if isinstance(data, torch.utils.data.Dataset):
        try:
            items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        except TypeError:
            raise DataError(f"the {what} Dataset has no len() or indexing; give an (images, labels) pair") from None
        shapes = {np.shape(_numpy(image, f"the {what} images")) for image, _ in items}
        if len(shapes) > 1:
            raise DataError(f"the {what} Dataset yields images of {len(shapes)} shapes ({sorted(shapes)[:3]}); "
                            f"resize them to one")
        images = np.stack([_numpy(image, f"the {what} images") for image, _ in items])
        return images, np.asarray([int(label) for _, label in items])
    raise SpecError(f"the {what} data must be an (images, labels) pair of tensors or arrays, a torch Dataset, a "
                    f"DataSpec or a data set name like 'digits' or 'npz:PATH'; got a {type(data).__name__}")


def _canonical(x: np.ndarray, what: str) -> np.ndarray:
    """Images checked by the npz rules and laid out (N, C, H, W), kept uint8 when given so."""
    checked = npz.to_nchw(x, what, "the data handed to the API")
    if x.dtype == np.uint8:
        return (checked * 255).round().astype(np.uint8)
    return checked


def as_data(train: DataLike, test: DataLike | None = None, *, poisoned: Any = None,
            class_names: tuple[str, ...] | None = None, split_seed: int = 0,
            folder: str | os.PathLike[str] | None = None) -> tuple[DataSpec, Path | None]:
    """The `DataSpec` of data handed to the API, and the file of poisoned training images if `poisoned` is given.

    A spec or its text is parsed and returned. Arrays are checked, written once as a content-named ``.npz`` in
    `folder` (default: the store's ``inputs`` folder) and named ``npz:<file>``, so their content enters every key.
    With `poisoned` and no test set the seeded split is made here, so the poisoned images stay aligned with
    the clean training images they replace.
    """
    if isinstance(train, (DataSpec, str)):
        if test is not None or poisoned is not None:
            raise SpecError("a named data set brings its own test split; give test= and poisoned= with arrays only")
        return (train if isinstance(train, DataSpec) else DataSpec.parse(train)), None
    if folder is None:
        root = Store().root
        refuse_a_non_store(root)  # the arrays are kept in its inputs folder: a folder of other files is none
        folder = root / INPUTS
    x, y = _pair(train, "training")
    arrays: dict[str, np.ndarray] = {"x": _canonical(x, "the training images"), "y": y}
    x_p = None if poisoned is None else _canonical(_numpy(poisoned, "the poisoned images"), "the poisoned images")
    if x_p is not None and x_p.shape != arrays["x"].shape:
        raise DataError(f"the poisoned images have shape {x_p.shape} (N, C, H, W) but the training images "
                        f"{arrays['x'].shape}; give one poisoned image per training image, in the same order")
    if test is not None:
        x_test, y_test = _pair(test, "test")
        arrays |= {"x_test": _canonical(x_test, "the test images"), "y_test": y_test}
    elif x_p is not None:
        labels = arrays["y"].astype(np.int64)
        names = class_names or tuple(str(c) for c in range(int(labels.max()) + 1))
        train_idx, test_idx = split_indices(labels, names, "the training set", split_seed)
        arrays = {"x": arrays["x"][train_idx], "y": labels[train_idx], "x_test": arrays["x"][test_idx],
                  "y_test": labels[test_idx]}
        x_p = x_p[train_idx]
    if class_names is not None:
        arrays["class_names"] = np.asarray(class_names, dtype=str)
    spec = DataSpec("npz", root=str(npz.keep(npz.encode(arrays), folder)), split_seed=split_seed)
    images = None if x_p is None else npz.keep(npz.encode({"x": x_p}), folder)
    return spec, images


def as_poison(poison: str | PoisonSpec | None, images: Path | None) -> PoisonSpec:
    """The poison spec of `poison` (a method name or spec; None = EM), or of the user's poisoned images file."""
    if images is not None:
        if poison not in (None, "provided") and not (isinstance(poison, PoisonSpec) and poison.method == "provided"):
            raise SpecError(f"give either poison={poison!r} (crafted on your images) or poisoned= (your own poisoned "
                            f"images), not both")
        given = poison if isinstance(poison, PoisonSpec) else PoisonSpec(method="provided")
        return given.replace(options=(("images", str(images)),))  # an eps or a ratio of `poison` is refused later
    if poison is None:
        return PoisonSpec(method=DEFAULT_POISON)
    return poison if isinstance(poison, PoisonSpec) else PoisonSpec(method=poison)


# ------------------------------------------------------------------------------------------------ results


def _surface_figures(surfaces: SurfaceSet | None) -> dict[str, Any]:
    from landscape import figures

    out: dict[str, Any] = {}
    for label, s in (surfaces.surfaces.items() if surfaces is not None else ()):
        if s.ndim == 2:
            out[f"surface-{label}"] = figures.contour(s.alpha, s.beta, s.loss, paths=figures.path_views(s),
                                                      title=f"loss surface ({s.kind}, {label})")
        else:
            out[f"surface-{label}"] = figures.slice_1d(s.alpha, {label: s.loss[:, 0]})
    return out


CURVATURE_FIGURES = ("lambda-max", "trace", "sal", "rank-agreement", "density")  # curvature_figures' order


def _analysis_figures(curvature: Mapping[str, CurvatureTrace] | None, sal: Mapping[str, SALTrace],
                      layer_slice: SurfaceSet | None) -> dict[str, Any]:
    """Figures of curvature traces (by run, SAL beside them) and of a layer slice, by name."""
    from landscape import figures

    out: dict[str, Any] = {}
    if curvature:
        out |= {f"curvature-{name}": fig for name, fig in
                zip(CURVATURE_FIGURES, figures.curvature_figures(curvature, sal), strict=True)}
    if layer_slice is not None:
        made = figures.layer_slice_figures(layer_slice)
        names = (["layer-slice"] if len(made) == 1 else
                 [f"layer-slice-{run}-{what}" for run in layer_slice.surfaces for what in ("loss", "accuracy")])
        out |= dict(zip(names, made, strict=True))
    return out


def _layer_slice_spec(layers: str | Sequence[str] | LayerSliceSpec, options: Mapping[str, Any]) -> LayerSliceSpec:
    if isinstance(layers, LayerSliceSpec):
        return layers.replace(**options) if options else layers
    return LayerSliceSpec(layers=(layers,) if isinstance(layers, str) else tuple(layers), **options)


@dataclass(frozen=True)
class Session:
    """Where a study's stages compute: the store, the device and how progress is shown."""

    store: Store
    device: torch.device
    progress: bool | StageProgress = True

    @contextmanager
    def context(self) -> Iterator[Context]:
        """A stage `Context` whose progress is tqdm bars (progress=True), none (False), or the callback."""
        if callable(self.progress):
            yield Context(self.store, self.device, self.progress)
            return
        with tqdm_progress(disable=not self.progress, notebook=True) as report:
            yield Context(self.store, self.device, report)


@dataclass(repr=False)
class Study:
    """One clean-vs-poisoned study (what `run_study` returns).

    Attributes:
        spec: the experiment's resolved spec (`ExperimentSpec`: data, model with its code fingerprint, training,
            poison with its defaults filled in, SAL), the one every key is taken from.
        result: the runs, SAL traces and UD (`ExperimentResult`, the object behind the app's pages).
        surfaces: the loss surfaces (`SurfaceSet`), or None if none were asked for.
        session: the store the results are cached in, the device and the progress display (of later calls too).
        seed_results: the experiment at every seed asked for (`landscape.seeds`; the first is `result`).
    """

    spec: ExperimentSpec
    result: ExperimentResult
    surfaces: SurfaceSet | None
    session: Session
    seed_results: list[ExperimentResult] = field(default_factory=list)

    @property
    def ud(self) -> UDReport:
        """β, the learnable-layer counts and UD (`UDReport`)."""
        return self.result.ud

    @property
    def clean(self) -> TrainResult:
        return self.result.clean

    @property
    def poisoned(self) -> TrainResult:
        return self.result.poisoned

    def summary(self) -> dict[str, Any]:
        """The headline numbers the CLI prints with ``--json``: the first seed's, the seed count and the spreads.

        Read from the results and the study's resolved spec: nothing is read from the store or the data.
        """
        return {**self.result.summary(), **seed_summary(self.seed_results or [self.result], advice=API_ADVICE,
                                                        resolved=True)}

    def spread(self) -> dict[str, Spread]:
        """UD, β, #LP and the threshold-free measures over the seeds (`landscape.seeds.Spread`)."""
        return spread_over_seeds([r.summary() for r in self.seed_results or [self.result]])

    def runs(self) -> dict[str, PoisonSpec]:
        """The study's runs by label: "clean", and the poisoned one by its method (none when it is clean)."""
        return {"clean": PoisonSpec(), **({} if self.spec.poison.is_clean else {self.spec.poison.method:
                                                                               self.spec.poison})}

    def curvature(self, spec: CurvatureSpec | None = None) -> dict[str, CurvatureTrace]:
        """Per-layer curvature of the clean and the poisoned run at their stored epochs, by run label.

        λ_max, the top-k eigenvalues, the trace (with its standard error) and the spectral density of every weight
        layer's Hessian block and of the whole model (`landscape.curvature`: Lanczos and deflated Hutchinson,
        PyHessian's quantities, Yao et al. 2020), on each run's own training set (``spec.split = "test"``: the
        clean test set), at every ``spec.every``-th epoch and the last. The runs come from the store, not
        retrained; the traces are cached too. Figures: ``study.figures(curvature=...)``.
        """
        s, spec = self.spec, spec or CurvatureSpec()
        with self.session.context() as ctx:
            return {label: get_curvature(s.data, s.model, s.train, poison, spec, store=ctx.store, device=ctx.device,
                                         progress=ctx.progress, defense=s.defense)
                    for label, poison in self.runs().items()}

    def layer_slice(self, layers: str | Sequence[str] | LayerSliceSpec, **options: Any) -> SurfaceSet:
        """The loss along directions that move one layer's weights (or a group) only, clean beside poisoned.

        Args:
            layers: a weight layer of the model (one of ``study.result.sal_clean.layers``, e.g.
                ``"block.branch_a.0.weight"``), several (moved together), or a `LayerSliceSpec`.
            **options: `LayerSliceSpec` fields: ``epoch`` (a stored epoch; default the last), ``dims`` (1 or 2),
                ``resolution``, ``alpha_range``, ``n_eval``, ``split``, ``seed``, ...

        Returns:
            One `Surface` per run on one grid of filter-normalised coordinates (Li et al. 2018, restricted to the
            layer), SAL's ball (Ye et al., ICLR 2025) in ``info["sal_ball"]`` (`landscape.layer_slices`).
            Figures: ``study.figures(layer_slice=...)``.
        """
        s = self.spec
        with self.session.context() as ctx:
            return get_layer_slices(s.data, s.model, s.train, s.poison, _layer_slice_spec(layers, options),
                                    store=ctx.store, device=ctx.device, progress=ctx.progress, defense=s.defense)

    def figures(self, *, curvature: Mapping[str, CurvatureTrace] | None = None,
                layer_slice: SurfaceSet | None = None) -> dict[str, Any]:
        """Plotly figures by name.

        Always: training, sal, sal-distribution, learnable-layers, ud-counts, surface-<label>. With the result of
        `curvature`: curvature-lambda-max, curvature-trace, curvature-sal, curvature-rank-agreement (per-epoch
        Spearman agreement of SAL with λ_max and with the trace), curvature-density; with a `layer_slice`:
        layer-slice (1D) or layer-slice-<run>-loss / -accuracy (2D).
        """
        from landscape import figures

        r, label = self.result, self.spec.poison.method
        sal = {"clean": r.sal_clean, **({label: r.sal_poisoned} if label in self.runs() else {})}
        return {
            **figures.experiment_figures(r),
            **_surface_figures(self.surfaces),
            **_analysis_figures(curvature, sal, layer_slice),
        }

    def export_weights(self, path: str | os.PathLike[str], run: str = "poisoned", epoch: int | None = None) -> Path:
        """Write the weights of the "clean" or "poisoned" run at `epoch` (default: the last) as safetensors."""
        if run not in ("clean", "poisoned"):
            raise SpecError(f"run = {run!r} is not valid; choose clean or poisoned")
        result = self.result.clean if run == "clean" else self.result.poisoned
        epoch = result.checkpoint_epochs[-1] if epoch is None else epoch
        if epoch not in result.checkpoint_epochs:
            raise SpecError(f"epoch {epoch} has no checkpoint; the run keeps epochs {result.checkpoint_epochs}")
        spec = self.spec if run == "poisoned" else self.spec.replace(poison=PoisonSpec())
        return save_weights(result.checkpoints[result.checkpoint_epochs.index(epoch)], path,
                            metadata={"experiment": spec.to_dict(), "run": run, "epoch": epoch})

    def __repr__(self) -> str:
        seeds = f"; over seeds UD {self.spread()['ud'].text()}" if len(self.seed_results) > 1 else "; 1 seed"
        surfaces = f"; surfaces {listed(list(self.surfaces))}" if self.surfaces else ""
        return f"Study({experiment_line(self.result.summary())}{seeds}{surfaces})"

    def _repr_html_(self) -> str:
        s = self.result.summary()  # not `summary()`: its one-seed note resolves the spec, reading the data file
        rows = experiment_rows(s)
        if len(self.seed_results) > 1:
            spreads = self.spread()
            rows += [("UD over seeds", spreads["ud"].text()), ("β over seeds", spreads["beta"].text(".4g")),
                     ("seeds", listed([r.spec.train.seed for r in self.seed_results], 10))]
        else:
            rows += [("seeds", "1: UD from a single seed is unstable; run_study(..., seeds=3) gives its spread")]
        rows += [("surfaces", listed(list(self.surfaces), 10))] if self.surfaces else []
        return html_table(f"Study: {experiment_title(s)}", rows,
                          "Figures: study.figures() (Plotly, by name); rows per run, epoch and layer: "
                          "study.result.sal_table(); every number: study.summary()")


def run_study(model: ModelLike, train: DataLike, test: DataLike | None = None, *,
              poison: str | PoisonSpec | None = None, poisoned: Any = None, epochs: int | None = None,
              training: TrainSpec | None = None, sal: SALSpec | None = None,
              surface: SurfaceSpec | None = DEFAULT_SURFACE, class_names: tuple[str, ...] | None = None,
              split_seed: int = 0, store: Store | str | os.PathLike[str] | None = None, device: str = "auto",
              progress: bool | StageProgress = True, seeds: int = 1) -> Study:
    """Craft a UE on your data (or take your poisoned images), train clean and poisoned, SAL, UD and surfaces.

    Args:
        model: a factory(image_shape, num_classes) -> nn.Module, an nn.Module, or a model name (see the module doc).
        train: the training set: (images, labels), a Dataset, a DataSpec or its text.
        test: the clean test set (same kinds); None = a seeded stratified 80/20 split of `train`.
        poison: the UE method crafted on `train` (name or `PoisonSpec`; None = EM, Huang et al. 2021); "clean"
            for none.
        poisoned: your own poisoned training images instead (aligned with `train`'s images); then leave `poison`.
        epochs: training epochs (overrides `training.epochs`).
        training: the recipe of both runs (default `TrainSpec()`).
        sal: how SAL is measured (default `SALSpec()`, the fast preset; `SALSpec.preset("paper")` the authors').
        surface: the loss surface to compute (default a 21x21 PCA plane with both paths); None for none.
        class_names: names of the classes (arrays only).
        split_seed: seed of the test split (when `test` is None).
        store: the store (a `Store` or its folder; default `$UE_LANDSCAPE_STORE` or the user cache).
        device: "auto", "cpu", "cuda" or "mps".
        progress: tqdm bars (True), none (False), or a `progress(stage, done, total)` callback.
        seeds: run the experiment at this many seeds (`landscape.seeds.seed_specs`; surfaces for the first only);
            `Study.spread()` and `summary()` then give UD's mean ± std over them.
    """
    session = _session(store, device, progress)
    data, images = as_data(train, test, poisoned=poisoned, class_names=class_names, split_seed=split_seed,
                           folder=session.store.root / INPUTS)
    training = training or TrainSpec()
    if epochs is not None:
        training = training.replace(epochs=epochs)
    spec = resolve_experiment(ExperimentSpec(data=data, model=ModelSpec(adopt(model)), train=training,
                                             poison=as_poison(poison, images), sal=sal or SALSpec()))
    with session.context() as ctx:
        results = run_seeds(spec, seeds, store=ctx.store, device=ctx.device, progress=ctx.progress)
        surfaces = None if surface is None else get_surface(data, spec.model, training, spec.poison, surface,
                                                            store=ctx.store, device=ctx.device,
                                                            progress=ctx.progress)
    return Study(spec, results[0], surfaces, session, results)


def _session(store: Store | str | os.PathLike[str] | None, device: str, progress: bool | StageProgress) -> Session:
    """The session of a call: a folder of other files given as the store is refused before any work."""
    store = store if isinstance(store, Store) else Store(store)
    refuse_a_non_store(store.root)
    return Session(store, resolve_device(device), progress)


@dataclass(repr=False)
class WeightsStudy:
    """SAL at imported weights and the surfaces around them (what `analyse_weights` returns).

    Attributes:
        run: the imported weights SAL is measured at (`ImportedRun`: data and model specs, the file's hash).
        sal: SAL of every weight layer at the weights (`SALTrace` with one "epoch", 0).
        surfaces: surfaces around the weights (`SurfaceSet`), or None.
        session: as `Study.session`.
    """

    run: ImportedRun
    sal: SALTrace
    surfaces: SurfaceSet | None
    session: Session

    @property
    def data(self) -> DataSpec:
        return self.run.data

    @property
    def model(self) -> ModelSpec:
        """The architecture, with its code fingerprint."""
        return self.run.model

    def curvature(self, spec: CurvatureSpec | None = None) -> CurvatureTrace:
        """λ_max, top-k eigenvalues, trace and spectral density of every layer's Hessian block at the weights.

        `landscape.curvature` (Lanczos and deflated Hutchinson; PyHessian's quantities, Yao et al. 2020) on the
        data's training split (`spec.split = "test"`: the test split); one "epoch", 0. Cached like every stage.
        """
        with self.session.context() as ctx:
            return ImportedCurvatureStage(self.run, spec or CurvatureSpec()).get(ctx)

    def layer_slice(self, layers: str | Sequence[str] | LayerSliceSpec, **options: Any) -> SurfaceSet:
        """The loss along directions that move one layer's weights only, around the weights.

        As `Study.layer_slice`, on the data's training split; the weights' one stored "epoch" is 0.
        """
        with self.session.context() as ctx:
            return ImportedSurfaceStage.of(self.data, self.model, {"imported": self.run.path},
                                           _layer_slice_spec(layers, options)).get(ctx)

    def figures(self, *, curvature: CurvatureTrace | None = None,
                layer_slice: SurfaceSet | None = None) -> dict[str, Any]:
        """Plotly figures by name: sal, surface-<label>, and those of `curvature` and `layer_slice` results.

        The names are those of `Study.figures`; the one run is labelled "imported".
        """
        from landscape import figures

        return {"sal": figures.sal_heatmaps({"imported": self.sal.sal}, self.sal.layers, self.sal.epochs),
                **_surface_figures(self.surfaces),
                **_analysis_figures(None if curvature is None else {"imported": curvature}, {"imported": self.sal},
                                    layer_slice)}

    def _top_layer(self) -> tuple[str, float] | None:
        """The layer of the largest finite SAL at the weights and that SAL (None if none is finite)."""
        values = self.sal.sal[0] if len(self.sal.epochs) else np.zeros(0)
        finite = np.flatnonzero(np.isfinite(values))
        if not finite.size:
            return None
        j = int(finite[np.argmax(values[finite])])
        return self.sal.layers[j], float(values[j])

    def __repr__(self) -> str:
        top = self._top_layer()
        most = f", largest {top[0]} {number(top[1], '.2g')}" if top else ""
        surfaces = f"; surfaces {listed(list(self.surfaces))}" if self.surfaces else ""
        return (f"WeightsStudy({self.model.name} on {self.data.name}, weights {self.run.weights.sha256[:12]}: SAL of "
                f"{len(self.sal.layers)} layers {span(self.sal.sal)}{most}{surfaces})")

    def _repr_html_(self) -> str:
        top = self._top_layer()
        rows = [("model / data", f"{self.model.name} / {self.data.name}"), ("weights", self.run.path),
                ("weights SHA-256", self.run.weights.sha256), ("layers", str(len(self.sal.layers))),
                (f"SAL (preset {self.sal.spec.preset_name}, baseline {self.sal.spec.baseline})",
                 span(self.sal.sal, ".4g")),
                ("largest SAL", "n/a" if top is None else f"{top[0]}: {number(top[1], '.4g')}")]
        rows += [("surfaces", listed(list(self.surfaces), 10))] if self.surfaces else []
        return html_table("WeightsStudy: SAL at imported weights", rows,
                          "Figures: .figures() of this WeightsStudy (Plotly, by name); per layer: "
                          ".sal.table('imported')")


def analyse_weights(model: ModelLike, weights: str | os.PathLike[str] | Mapping[str, str | os.PathLike[str]],
                    data: DataLike, test: DataLike | None = None, *, sal: SALSpec | None = None,
                    surface: SurfaceSpec | None = DEFAULT_WEIGHTS_SURFACE,
                    store: Store | str | os.PathLike[str] | None = None, device: str = "auto",
                    progress: bool | StageProgress = True) -> WeightsStudy:
    """SAL at weights trained elsewhere and the loss surfaces around them, cached like every study.

    Args:
        model: the architecture the weights belong to (as in `run_study`).
        weights: a safetensors or state-dict file (`landscape.weights.read_weights`), or files by label (the
            first is the one SAL is measured at; an "interp" surface runs from "clean" to the next).
        data: the data the weights were trained on (as `train` in `run_study`); SAL uses its training split.
        test: its test set (None = the seeded split).
        sal: how SAL is measured (L_0 is evaluated at the weights: there is no running loss).
        surface: a "random" or "interp" surface, or None.
        store: as in `run_study`.
        device: as in `run_study`.
        progress: as in `run_study`.
    """
    session = _session(store, device, progress)
    spec, _ = as_data(data, test, folder=session.store.root / INPUTS)
    files = {"imported": weights} if isinstance(weights, (str, os.PathLike)) else dict(weights)
    model_spec = ModelSpec(adopt(model))
    with session.context() as ctx:
        first = ImportedRun.of(spec, model_spec, next(iter(files.values())))
        trace = ImportedSALStage.of(first, sal or SALSpec()).get(ctx)
        surfaces = None if surface is None else ImportedSurfaceStage.of(spec, model_spec, files, surface).get(ctx)
    return WeightsStudy(first, trace, surfaces, session)


__all__ = ["Session", "Study", "WeightsStudy", "analyse_weights", "as_data", "as_poison", "run_study"]
