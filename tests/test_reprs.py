"""The result classes' reprs in a notebook: a line or two of sizes and headline numbers, never the arrays.

Large objects (21 layers x 100 epochs, 101 x 101 surfaces) are built directly from arrays; the last test runs a
real two-epoch study and reads its repr and HTML with the store gone.
"""

from __future__ import annotations

import dataclasses
import shutil
from html.parser import HTMLParser

import numpy as np
import pytest
import torch

from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, SurfaceSpec, TrainSpec
from landscape.curvature import BlockCurvature, Curvature, CurvatureTrace
from landscape.experiment import ExperimentResult
from landscape.multitask import CrossTaskResult, CrossTaskSpec, TaskRun
from landscape.poisons.base import Crafted
from landscape.sal import ARRAY_FIELDS, SALTrace
from landscape.seeds import Spread
from landscape.stages.weights import ImportedRun, WeightsFile
from landscape.store import Store
from landscape.study import Session, Study, WeightsStudy, analyse_weights, run_study
from landscape.surface_results import ProjectedPath, Surface, SurfaceSet
from landscape.train import HISTORY_KEYS, TrainResult
from landscape.ud import unlearnable_distance
from tests.fixtures import factory, quadrant_images

LONGEST = 300  # characters of any repr
L, T = 21, 100  # layers x epochs of the large objects
LAYERS = tuple(f"features.block{j}.conv.weight" for j in range(L))


def _short(obj: object) -> str:
    text = repr(obj)
    assert len(text) <= LONGEST and "array(" not in text and "tensor(" not in text, (len(text), text[:400])
    return text


class _Text(HTMLParser):
    """The text of an HTML fragment, checking that every element opened is closed."""

    def __init__(self) -> None:
        super().__init__()
        self.open: list[str] = []
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open.pop() == tag, f"</{tag}> closes nothing open"

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def _html_text(markup: str) -> str:
    parser = _Text()
    parser.feed(markup)
    parser.close()
    assert not parser.open, f"unclosed {parser.open}"
    return " ".join(parser.parts)


def _sal(seed: int, scale: float = 1.0, epochs: int = T) -> SALTrace:
    rng = np.random.default_rng(seed)
    values = {name: rng.uniform(1e-4, scale, size=(epochs, L)) for name in ARRAY_FIELDS}
    return SALTrace(LAYERS, np.arange(1, epochs + 1), **values, seconds=np.ones(epochs), spec=SALSpec())


def _run(seed: int, acc: float) -> TrainResult:
    rng = np.random.default_rng(seed)
    history = {k: rng.uniform(0, 1, T) for k in HISTORY_KEYS}
    history["test_acc"][-1] = acc
    state = {name: torch.zeros(3, 3) for name in LAYERS}
    return TrainResult(history, list(range(T + 1)), [dict(state) for _ in range(T + 1)])


def _experiment(seed: int = 0) -> ExperimentResult:
    spec = ExperimentSpec(data=DataSpec("digits"), model=ModelSpec("cnn"), train=TrainSpec(epochs=T, seed=seed),
                          poison=PoisonSpec(method="em"))
    clean, poisoned = _sal(seed), _sal(seed + 1, scale=0.5)
    return ExperimentResult(spec, _run(seed, 0.97), _run(seed + 1, 0.35), clean, poisoned,
                            unlearnable_distance(clean, poisoned))


def _surface(side: int = 101) -> Surface:
    grid = np.linspace(-1, 1, side)
    loss = 1.0 + np.add.outer(grid**2, grid**2)
    paths = {run: ProjectedPath(*(np.arange(T + 1.0) for _ in ProjectedPath.FIELDS)) for run in ("clean", "em")}
    return Surface(grid, grid, loss, loss, loss, loss, np.isfinite(loss), np.stack([loss] * 4), np.stack([loss] * 4),
                   np.full(4, 64), kind="pca", center="clean", paths=paths)


@pytest.fixture(scope="module")
def experiment() -> ExperimentResult:
    return _experiment()


def test_sal_trace(experiment):
    trace = experiment.sal_clean
    text = _short(trace)
    assert text.startswith("SALTrace(21 layers x 100 epochs, preset fast")
    assert f"{trace.sal.min():.3g}..{trace.sal.max():.3g}" in text


def test_train_result():
    run = _run(0, 0.97)
    text = _short(run)
    assert "100 epochs" in text and "101 checkpoints" in text and "test acc 0.97" in text
    assert f"train loss {run.history['train_loss'][-1]:.3g}" in text
    run.diverged = ("training diverged at epoch 7, batch 3: loss is nan; kept the 6 finished epoch(s). Lower the "
                    "learning rate (TrainSpec.lr = 0.5) or the budget." * 5)
    assert "diverged: training diverged at epoch 7" in _short(run)


def test_ud_report(experiment):
    ud = experiment.ud
    text = _short(ud)
    assert text.startswith(f"UDReport(UD {ud.ud:.3f}, β {ud.beta:.3g}, #LP {ud.lp_clean:.3g} clean vs "
                           f"{ud.lp_poisoned:.3g} poisoned, 21 layers x 100 epochs")
    assert f"W1 {ud.w1_overall:.3g}" in text
    flat = np.ones((T, L))
    undefined = unlearnable_distance(flat, flat)  # every layer equal: no learnable clean layer, one note per epoch
    text = _short(undefined)
    assert "UD n/a (UD is undefined" in text and "100 notes" in text


def test_experiment_result(experiment):
    s, text = experiment.summary(), _short(experiment)
    assert text.startswith("ExperimentResult(digits / cnn / em, 100 epochs, SAL preset fast: ")
    assert f"UD {s['ud']:.3f}, β {s['beta']:.3g}" in text
    assert f"#LP {s['lp_clean']:.3g} clean vs {s['lp_poisoned']:.3g} em" in text
    assert "test acc 0.97 clean vs 0.35 em" in text
    page = _html_text(experiment._repr_html_())
    assert f"{s['ud']:.3f}" in page and f"{s['beta']:.4g}" in page and "result.sal_table()" in page


def test_study_with_seeds_and_its_html(tmp_path):
    results = [_experiment(seed) for seed in range(3)]
    surfaces = SurfaceSet({"shared": _surface()})
    study = Study(results[0].spec, results[0], surfaces, Session(Store(tmp_path), torch.device("cpu"), False),
                  results)
    text, ud = _short(study), study.ud
    assert text.startswith(f"Study(digits / cnn / em, 100 epochs, SAL preset fast: UD {ud.ud:.3f}, β {ud.beta:.3g}")
    assert f"over seeds UD {Spread(tuple(r.ud.ud for r in results)).text()}" in text
    assert "3 seeds" in text and "surfaces shared" in text
    page = _html_text(study._repr_html_())
    assert f"{ud.ud:.3f}" in page and "study.figures()" in page and "UD over seeds" in page
    one = dataclasses.replace(study, seed_results=[])
    assert _short(one).endswith("; 1 seed; surfaces shared)")
    assert "from a single seed is unstable" in _html_text(one._repr_html_())  # the project's one-seed warning
    assert one == dataclasses.replace(study, seed_results=[])  # equality and fields are the dataclass's


def test_weights_study(tmp_path):
    sal = _sal(0, epochs=1)
    run = ImportedRun(DataSpec("digits"), ModelSpec("cnn"), WeightsFile("ab" * 32), "/data/<mine> & co.pt")
    weights = WeightsStudy(run, sal, SurfaceSet({"imported": _surface()}),
                           Session(Store(tmp_path), torch.device("cpu"), False))
    top = int(np.argmax(sal.sal[0]))
    text = _short(weights)
    assert "cnn on digits" in text and "weights abababababab" in text and "21 layers" in text
    assert f"largest {LAYERS[top]} {sal.sal[0, top]:.2g}" in text and "surfaces imported" in text
    markup = weights._repr_html_()
    assert "<mine>" not in markup  # escaped
    page = _html_text(markup)
    assert "/data/<mine> & co.pt" in page and f"{LAYERS[top]}: {sal.sal[0, top]:.4g}" in page
    assert ".figures()" in page


def test_curvature_trace():
    rng = np.random.default_rng(0)
    lam = rng.uniform(0.5, 40.0, (T, L))

    def block(value: float) -> BlockCurvature:
        return BlockCurvature(size=9, eigenvalues=np.array([value]), residuals=np.zeros(1), trace=2 * value,
                              trace_se=0.1, trace_krylov=value, esd_nodes=np.full((2, 30), value),
                              esd_weights=np.full((2, 30), 1 / 30), steps=30, converged=True, hvps=60, seconds=0.0)

    trace = CurvatureTrace(np.arange(1, T + 1), [Curvature({n: block(v) for n, v in zip(LAYERS, row, strict=True)},
                                                           block(99.0)) for row in lam])
    text = _short(trace)
    assert text.startswith("CurvatureTrace(21 layers x 100 epochs")
    assert f"λ_max {lam.min():.3g}..{lam.max():.3g}" in text and f"trace {2 * lam.min():.3g}" in text
    assert "whole model λ_max 99" in text


def test_surfaces():
    surface = _surface()
    text = _short(surface)
    assert text == "Surface(pca 2D 101 x 101 around clean, loss 1..3, paths clean, em)"
    many = SurfaceSet({f"s{i}": _surface() for i in range(6)})
    text = _short(many)
    assert text.startswith("SurfaceSet(s0: pca 2D 101 x 101") and text.endswith("; and s2, s3, s4 + 1 more)")


def test_cross_task_result():
    spec = CrossTaskSpec.for_methods(["em", "tap"])
    primary = {"classify": "accuracy", "segment": "miou", "edges": "mse", "reconstruct": "psnr"}
    runs = {(t, c): TaskRun(t, c, {k: np.zeros(T) for k in HISTORY_KEYS},
                            {primary[t]: 0.9 if c == "clean" else 0.25, "loss": 0.1}, _sal(1))
            for t in spec.tasks for c in spec.conditions}
    stored = unlearnable_distance(_sal(1), _sal(2))
    result = CrossTaskResult(spec, runs, {("classify", "em"): stored})
    text = _short(result)
    assert text.startswith("CrossTaskResult(4 tasks x 3 conditions, 12 runs: classify/em accuracy 0.9 clean vs 0.25"
                           f", UD {stored.ud:.3f}; classify/tap accuracy 0.9 clean vs 0.25")
    assert result.uds.keys() == {("classify", "em")}  # the repr computed no UD
    assert _short(runs[("segment", "em")]).startswith("TaskRun(segment under em, 100 epochs: miou 0.25, loss 0.1;")


def test_crafted():
    mask = torch.zeros(1000, dtype=torch.bool)
    mask[:400] = True
    meta = {"method": "em", "dataset": "digits", "eps": 8 / 255, "norm": "linf", "seconds": 12.34,
            "budget": {"linf": 0.0313, "l2_mean": 0.2}}
    text = _short(Crafted(torch.zeros(1000, 1, 8, 8), mask, meta))
    assert text == "Crafted(em on digits: 400 of 1000 images (1, 8, 8) perturbed, linf eps 8/255, largest change " \
                   "0.0313, 12.3 s)"


def test_spread():
    spread = Spread(tuple(np.linspace(0.2, 0.8, 100)))
    assert _short(spread) == f"Spread({spread.text()})" and "100 seeds" in repr(spread)
    assert spread == Spread(tuple(np.linspace(0.2, 0.8, 100)))


def test_a_real_study_reads_nothing_of_the_store(tmp_path, monkeypatch):
    """repr and HTML of a real study and imported weights: from memory, with the store folder deleted."""
    x, y = quadrant_images(160)
    quick = dict(sal=SALSpec(rounds=1), progress=False)
    store = Store(tmp_path / "store")
    study = run_study(factory, (x, y), poison="random", epochs=2, training=TrainSpec(batch_size=32), store=store,
                      surface=SurfaceSpec(kind="pca", resolution=5, n_eval=40), **quick)
    path = study.export_weights(tmp_path / "poisoned.safetensors")
    weights = analyse_weights(factory, path, (x, y), store=store, surface=None, **quick)
    shutil.rmtree(store.root)
    for name in ("load", "exists", "save", "get_or_compute", "keys"):
        monkeypatch.setattr(Store, name, lambda *a, **k: pytest.fail("a repr used the store"))
    ud = study.ud
    text = _short(study)
    assert f"UD {ud.ud:.3f}" in text and "2 epochs" in text and "surfaces shared" in text
    assert f"{ud.ud:.3f}" in _html_text(study._repr_html_())
    assert f"SAL of 5 layers {weights.sal.sal.min():.3g}" in _short(weights)
    assert "SHA-256" in _html_text(weights._repr_html_())
    for part in (study.result, study.clean, study.result.sal_clean, ud, study.surfaces, study.surfaces["shared"]):
        _short(part)
