"""Curvature and layer slices of trained runs: their stages (against the engine called directly) and their CLI."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from landscape.cli import main
from landscape.config import CurvatureSpec, DataSpec, LayerSliceSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.curvature import curvature_trace, sal_agreement
from landscape.errors import SpecError
from landscape.experiment import get_curvature, get_layer_slices, get_poisoned_train, get_splits, get_training
from landscape.export import read_curvature
from landscape.models import build_model
from landscape.sal import SALTrace
from landscape.stages.curvature import CurvatureStage
from landscape.stages.surface import LayerSliceStage
from landscape.store import Store
from landscape.train import evaluate
from tests.test_export import read_vtk

pytestmark = pytest.mark.usefixtures("one_thread")

DATA, MODEL, TRAIN = DataSpec(n_train=100, n_test=30), ModelSpec(name="mlp"), TrainSpec(epochs=2)
RANDOM = PoisonSpec(method="random")
CURV = CurvatureSpec(n_data=64, min_steps=5, max_steps=20, probes=4)
COMMON = ["--dataset", "digits", "--n-train", "100", "--n-test", "30", "--model", "mlp", "--epochs", "2"]
CURV_FLAGS = ["--n-data", "64", "--min-steps", "5", "--max-steps", "20", "--probes", "4"]


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Store:
    """One store for the module: the two tiny runs are trained once."""
    return Store(tmp_path_factory.mktemp("curvature-store"))


def test_curvature_stage_equals_the_engine_on_the_runs_own_training_set(shared):
    trace = get_curvature(DATA, MODEL, TRAIN, RANDOM, CURV, store=shared)
    run = get_training(DATA, MODEL, TRAIN, RANDOM, store=shared)
    images = get_poisoned_train(DATA, RANDOM, store=shared)  # the poisoned images: the loss SAL measures
    splits = get_splits(DATA)
    net = build_model("mlp", splits.image_shape, splits.num_classes, seed=TRAIN.seed)
    direct = curvature_trace(net, run.checkpoints, run.checkpoint_epochs, images.x, images.y, CURV,
                             total_epochs=TRAIN.epochs)
    assert trace.epochs.tolist() == [1, 2] and trace.layers == direct.layers
    np.testing.assert_array_equal(trace.lambda_max, direct.lambda_max)  # same inputs, same numbers, bit for bit
    np.testing.assert_array_equal(trace.trace, direct.trace)
    np.testing.assert_array_equal(trace.whole("lambda_max"), direct.whole("lambda_max"))
    test_split = get_curvature(DATA, MODEL, TRAIN, RANDOM, CURV.replace(split="test"), store=shared)
    assert not np.array_equal(test_split.lambda_max, trace.lambda_max)  # another split, another entry


def test_curvature_stage_keys_and_store(shared):
    stage = CurvatureStage.of(DATA, MODEL, TRAIN, RANDOM, CURV)
    trace = get_curvature(DATA, MODEL, TRAIN, RANDOM, CURV, store=shared)
    assert stage.exists(shared)
    again = stage.load(shared)
    np.testing.assert_array_equal(again.trace_se, trace.trace_se)
    keys = {CurvatureStage.of(DATA, MODEL, TRAIN, p, c).key()
            for p in (None, RANDOM) for c in (CURV, CURV.replace(seed=1), CURV.replace(every=2))}
    assert len(keys) == 6
    assert CurvatureStage.of(DATA, MODEL, TRAIN, PoisonSpec(), CURV).key() == \
        CurvatureStage.of(DATA, MODEL, TRAIN, None, CURV).key()


def test_layer_slice_stage_at_zero_is_each_runs_loss_at_that_epoch(shared):
    layer = "3.weight"
    spec = LayerSliceSpec(layers=(layer,), epoch=1, resolution=5, n_eval=None)
    result = get_layer_slices(DATA, MODEL, TRAIN, RANDOM, spec, store=shared)
    assert list(result) == ["clean", "random"] and result.info["epochs"] == {"clean": 1, "random": 1}
    clean, pois = result["clean"], result["random"]
    np.testing.assert_array_equal(clean.alpha, pois.alpha)  # one grid of normalised coordinates
    np.testing.assert_allclose(clean.alpha[[0, -1]], [-0.5, 0.5])  # ten SAL radii (eps = 0.05) either side
    assert result.info["sal_ball"]["clean"] == pytest.approx([0.05]) == result.info["sal_ball"]["random"]
    splits = get_splits(DATA)
    net = build_model("mlp", splits.image_shape, splits.num_classes, seed=TRAIN.seed)
    for label, poison in (("clean", PoisonSpec()), ("random", RANDOM)):
        run = get_training(DATA, MODEL, TRAIN, poison, store=shared)
        net.load_state_dict(run.checkpoints[1])
        images = get_poisoned_train(DATA, poison, store=shared)  # each run on its own training set
        loss, acc = evaluate(net, images.x, images.y)
        s = result[label]
        assert s.kind == "layer" and s.info["layers"] == [layer]
        assert s.value_at(0.0) == pytest.approx(loss, rel=1e-5) and s.acc[2, 0] == pytest.approx(acc)
    last = get_layer_slices(DATA, MODEL, TRAIN, RANDOM, spec.replace(epoch=None), store=shared)
    assert last.info["epochs"] == {"clean": 2, "random": 2} and last["clean"].value_at(0) != clean.value_at(0)
    with pytest.raises(SpecError, match=r"epoch = 9 is not a stored epoch: .* keeps epochs 0, 1, 2$"):
        get_layer_slices(DATA, MODEL, TRAIN, RANDOM, spec.replace(epoch=9), store=shared)
    keys = {LayerSliceStage.of(DATA, MODEL, TRAIN, RANDOM, s).key()
            for s in (spec, spec.replace(epoch=2), spec.replace(layers=("1.weight",)), spec.replace(dims=2))}
    assert len(keys) == 4


def test_layer_slice_spec_rejects_bad_requests():
    with pytest.raises(SpecError, match="at least one tensor"):
        LayerSliceSpec(layers=())
    with pytest.raises(SpecError, match="LayerSliceSpec.resolution"):
        LayerSliceSpec(layers=("a",), dims=2, resolution=500)
    with pytest.raises(SpecError, match="LayerSliceSpec.beta_range"):
        LayerSliceSpec(layers=("a",), beta_range=(0, 1))
    with pytest.raises(SpecError, match="LayerSliceSpec.epoch"):
        LayerSliceSpec(layers=("a",), epoch=-1)


def test_cli_curvature_json_exports_and_sal_agreement(shared, tmp_path, capsys):
    store = ["--store", str(shared.root)]
    out = tmp_path / "c.csv"
    assert main(["curvature", *COMMON, "--method", "random", *CURV_FLAGS, "--vs-sal", "--json", "--out", str(out),
                 *store]) == 0
    summary = json.loads(capsys.readouterr().out)
    trace = get_curvature(DATA, MODEL, TRAIN, RANDOM, CURV, store=shared)
    row = summary["runs"]["random"]
    assert set(summary["runs"]) == {"clean", "random"} and row["layers"] == trace.layers
    np.testing.assert_array_equal(row["lambda_max"], trace.lambda_max)
    assert np.shape(row["top_k"]) == (2, 3, 3) and len(row["whole"]["trace"]) == 2
    sal = SALTrace.from_dict(get_training(DATA, MODEL, TRAIN, RANDOM, store=shared, sal=SALSpec()).extras["sal"])
    epochs, rho = sal_agreement(sal, trace)
    assert row["spearman_sal_lambda_max"]["rho"] == pytest.approx(rho.tolist(), nan_ok=True)
    assert epochs.tolist() == [1, 2]
    with out.open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * (len(trace.layers) + 1)  # runs x epochs x (layers + whole model)
    first = next(r for r in rows if r["run"] == "random" and r["epoch"] == "2" and r["layer"] == trace.layers[0])
    assert float(first["lambda_max"]) == trace.lambda_max[1, 0] and float(first["trace"]) == trace.trace[1, 0]
    npz = tmp_path / "c.npz"
    assert main(["curvature", *COMMON, "--method", "random", *CURV_FLAGS, "--out", str(npz), *store]) == 0
    text = capsys.readouterr().out
    assert "whole model" in text and "λ_max" in text
    back = read_curvature(npz)
    np.testing.assert_array_equal(back["random"].trace, trace.trace)
    html = tmp_path / "c.html"
    assert main(["curvature", *COMMON, "--method", "clean", *CURV_FLAGS, "--out", str(html), *store]) == 0
    assert "plotly" in html.read_text()[:20000].lower()
    assert main(["curvature", *COMMON, *CURV_FLAGS, "--out", str(tmp_path / "c.txt"), *store]) == 2
    assert ".csv, .npz, .html" in capsys.readouterr().err
    assert main(["curvature", *COMMON, "--max-steps", "2", *store]) == 2  # below min_steps: the spec's own error
    assert "max_steps" in capsys.readouterr().err


def test_cli_surface_layer_writes_each_run_and_marks_the_ball(shared, tmp_path, capsys):
    store = ["--store", str(shared.root)]
    base = ["surface", *COMMON, "--method", "random", "--resolution", "5", *store, "--layer", "3.weight"]
    assert main([*base, "--json", "--out", str(tmp_path / "s.vtp")]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert set(summary["files"]) == {"clean", "random"}
    for label in ("clean", "random"):
        row = summary["surfaces"][label]
        assert row["grid"] == [5, 1] and row["epoch"] == 2 and row["sal_ball"] == pytest.approx([0.05])
        _, arrays, points = read_vtk(tmp_path / f"s-{label}.vtp")
        assert len(points) == 5 and arrays["loss"][2] == pytest.approx(row["loss_at_model"])
    assert main([*base, "--dims", "2", "--epoch", "1", "--out", str(tmp_path / "p.vts")]) == 0
    _, arrays, points = read_vtk(tmp_path / "p-random.vts")
    assert len(points) == 25
    assert main([*base, "--out", str(tmp_path / "s.html")]) == 0
    page = (tmp_path / "s.html").read_text()
    assert "SAL ball" in page and "1D slice along 3.weight at epoch 2" in page
    assert main([*base, "--dims", "2", "--out", str(tmp_path / "p.html")]) == 0
    page = (tmp_path / "p.html").read_text()
    assert page.count('"type":"circle"') == 4 and "accuracy around random at epoch 2: 3.weight" in page
    capsys.readouterr()
    assert main([*base[:-2], "--layer", "nope.weight", "--out", str(tmp_path / "x.vtp")]) == 2
    assert "weight layers: 1.weight, 3.weight, 5.weight" in capsys.readouterr().err
    assert main([*base, "--out", str(tmp_path / "s.png")]) == 2
