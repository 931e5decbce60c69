"""The Python API (landscape.study) end to end on a user model defined outside `landscape` and generated data."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import plotly.graph_objects as go
import pytest
import torch

from landscape.config import CurvatureSpec, PoisonSpec, SALSpec, SurfaceSpec, TrainSpec
from landscape.curvature import model_curvature
from landscape.errors import DataError, ModelError, SpecError
from landscape.models.user import SESSION
from landscape.stages.base import get_splits
from landscape.study import analyse_weights, as_data, run_study
from landscape.surface import eval_subset
from landscape.train import evaluate
from landscape.weights import read_weights
from tests.fixtures import ResidualTwoBranchNet, factory, quadrant_images, wrong_width

pytestmark = pytest.mark.usefixtures("one_thread")

CURVATURE = CurvatureSpec(n_data=64, top_k=1, min_steps=6, max_steps=12, probes=2)
QUICK = dict(epochs=3, training=TrainSpec(batch_size=32), sal=SALSpec(rounds=1),
             surface=SurfaceSpec(kind="pca", resolution=5, n_eval=40), progress=False)


@pytest.fixture(scope="module")
def images():
    return quadrant_images(240)


def test_api_end_to_end_on_a_residual_two_branch_model(store, images):
    x, y = images
    calls: list[tuple] = []
    study = run_study(factory, (torch.from_numpy(x), torch.from_numpy(y)), poison="random", store=store,
                      **{**QUICK, "progress": lambda *a: calls.append(a)})
    assert study.spec.model.name == "tests.fixtures:factory" and study.spec.model.code is not None
    assert study.spec.data.name == "npz" and Path(study.spec.data.root).parent == store.root / "inputs"
    r = study.result
    assert r.sal_clean.sal.shape == (3, 5) and list(r.sal_clean.layers)[0] == "stem.0.weight"
    assert np.isfinite(study.ud.ud) and study.ud.ud == pytest.approx(study.ud.lp_poisoned / study.ud.lp_clean)
    shared = study.surfaces.surfaces["shared"]
    assert shared.loss.shape == (5, 5) and np.isfinite(shared.loss).all()
    assert set(shared.paths) == {"clean", "random"}
    figures = study.figures()
    assert {"training", "sal", "sal-distribution", "learnable-layers", "ud-counts", "surface-shared"} <= set(figures)
    assert all(isinstance(f, go.Figure) for f in figures.values())
    assert {"train-clean", "train-random", "surface"} <= {c[0] for c in calls}

    # a layer slice of the residual block's first branch conv, clean beside poisoned, at the last epoch
    layer = "block.branch_a.0.weight"
    sliced = study.layer_slice(layer, resolution=7, n_eval=40)
    assert set(sliced.surfaces) == {"clean", "random"} and sliced.info["layers"] == [layer]
    clean_slice = sliced.surfaces["clean"]
    assert clean_slice.loss.shape == (7, 1) and np.isfinite(clean_slice.loss).all()
    net = factory((1, 8, 8), 4)
    net.load_state_dict(study.clean.final_state)
    at_model = eval_subset(get_splits(study.spec.data).train, 40, 0)  # the slice's subset of the clean train split
    assert clean_slice.loss[3, 0] == pytest.approx(evaluate(net, at_model.x, at_model.y)[0], rel=1e-5)  # α = 0
    assert clean_slice.loss[0, 0] > clean_slice.loss[3, 0] < clean_slice.loss[-1, 0]  # the model is near a minimum

    # per-layer curvature of both runs at every epoch; the clean run's last epoch equals the engine called directly
    curvature = study.curvature(CURVATURE)
    assert set(curvature) == {"clean", "random"} and list(curvature["clean"].epochs) == [1, 2, 3]
    assert curvature["clean"].layers == list(r.sal_clean.layers)
    direct = model_curvature(net, get_splits(study.spec.data).train.x, get_splits(study.spec.data).train.y, CURVATURE)
    np.testing.assert_array_equal(curvature["clean"].lambda_max[-1], [direct.layers[n].lambda_max
                                                                      for n in r.sal_clean.layers])
    with_analyses = study.figures(curvature=curvature, layer_slice=sliced)
    assert {"curvature-lambda-max", "curvature-trace", "curvature-sal", "curvature-rank-agreement",
            "curvature-density", "layer-slice"} <= set(with_analyses)
    assert all(isinstance(f, go.Figure) for f in with_analyses.values())
    plane = study.layer_slice(layer, dims=2, resolution=3, n_eval=20, epoch=1)
    assert plane.surfaces["random"].loss.shape == (3, 3) and plane.surfaces["random"].info["epoch"] == 1
    assert {"layer-slice-clean-loss", "layer-slice-random-accuracy"} <= set(study.figures(layer_slice=plane))
    with pytest.raises(SpecError, match="not a stored epoch"):
        study.layer_slice(layer, epoch=7)

    calls.clear()
    again = run_study(factory, (x, y), poison="random", store=store,
                      **{**QUICK, "progress": lambda *a: calls.append(a)})
    assert again.spec == study.spec  # numpy or torch, the same content: the same file and keys
    assert not [c for c in calls if c[0].startswith(("train", "sal", "surface"))]  # everything from the store
    assert again.curvature(CURVATURE)["random"].lambda_max.tolist() == curvature["random"].lambda_max.tolist()
    assert not [c for c in calls if c[0].startswith(("train", "curvature"))]
    np.testing.assert_array_equal(again.result.sal_poisoned.sal, r.sal_poisoned.sal)


def test_seeds_give_the_spread_of_the_single_seed_studies(store, images):
    x, y = images
    quick = {**QUICK, "surface": None}
    study = run_study(factory, (x, y), poison="random", store=store, seeds=2, **quick)
    assert len(study.seed_results) == 2 and study.seed_results[0] is study.result
    assert [r.spec.train.seed for r in study.seed_results] == [0, 1]
    second = run_study(factory, (x, y), poison="random", store=store,
                       **{**quick, "training": quick["training"].replace(seed=1)})
    assert second.spec.poison.seed == 0  # the plain call shifts only the training seed; seeds=2 shifts all three
    uds = [study.ud.ud, study.seed_results[1].ud.ud]
    assert study.spread()["ud"].values == pytest.approx(uds)
    summary = study.summary()
    assert summary["n_seeds"] == 2 and summary["spread"]["ud"]["values"] == pytest.approx(uds)
    assert summary["seed_note"] is None and summary["ud"] == study.ud.ud
    single = run_study(factory, (x, y), poison="random", store=store, **quick)
    one = single.summary()
    assert one["n_seeds"] == 1 and one["ud"] == study.ud.ud and "unstable" in one["seed_note"]
    # the API's advice in the API's words (it said the CLI's "run --seeds 3"), and the note needs no data file: it
    # re-resolved the spec, reading the store's copy of the arrays (a DataError once that was deleted)
    assert "(run_study(..., seeds=3))" in one["seed_note"] and "--seeds" not in one["seed_note"]
    shutil.rmtree(store.root / "inputs")
    assert single.summary() == one


def test_a_dataset_and_a_module_instance_are_taken_too(store, images):
    x, y = images
    pair = as_data((x, y), folder=store.root / "inputs")[0]
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x.transpose(0, 3, 1, 2)).float() / 255,
                                             torch.from_numpy(y))
    assert as_data(dataset, folder=store.root / "inputs")[0].root != pair.root  # floats, not uint8: another file
    module = ResidualTwoBranchNet(1, 4)
    study = run_study(module, dataset, poison="clean", store=store, **{**QUICK, "surface": None})
    assert study.spec.model.name.startswith(SESSION) and study.ud.ud == 1.0
    start = study.clean.checkpoints[0]
    assert all(torch.equal(start[k], v) for k, v in module.named_parameters())  # runs start from its weights


def test_your_own_poisoned_images(store, images):
    x, y = images
    rng = np.random.default_rng(1)
    poisoned = np.clip(x.astype(np.int16) + rng.integers(-20, 21, size=x.shape), 0, 255).astype(np.uint8)
    study = run_study(factory, (x, y), poisoned=poisoned, store=store, **{**QUICK, "surface": None})
    assert study.spec.poison.method == "provided"
    assert dict(study.spec.poison.options)["sha256"]  # the file's content is in the key
    with pytest.raises(SpecError, match="either poison='tap'.*or poisoned="):
        run_study(factory, (x, y), poison="tap", poisoned=poisoned, store=store, **QUICK)
    with pytest.raises(DataError, match="one poisoned image per training image"):
        run_study(factory, (x, y), poisoned=poisoned[:10], store=store, **QUICK)
    for given in ({"eps": 8 / 255}, {"ratio": 0.5}):  # were ignored: the images are used as they are
        with pytest.raises(SpecError, match=f"PoisonSpec.{next(iter(given))} = .* does not apply to poison 'provided'"):
            run_study(factory, (x, y), poison=PoisonSpec("provided", **given), poisoned=poisoned, store=store, **QUICK)


def test_weights_out_and_back_in(tmp_path, store, images):
    x, y = images
    study = run_study(factory, (x, y), poison="random", store=store, **{**QUICK, "surface": None})
    path = study.export_weights(tmp_path / "poisoned.safetensors")
    state = read_weights(path)
    assert all(torch.equal(state[k], v) for k, v in study.poisoned.final_state.items())
    analysed = analyse_weights(factory, path, (x, y), sal=SALSpec(rounds=1), store=store, progress=False,
                               surface=SurfaceSpec(kind="random", resolution=5, n_eval=40))
    assert analysed.sal.sal.shape == (1, 5) and analysed.sal.spec.baseline == "fresh"
    assert analysed.surfaces.surfaces["imported"].loss.shape == (5, 5)
    assert set(analysed.figures()) == {"sal", "surface-imported"}
    curvature = analysed.curvature(CURVATURE)
    assert list(curvature.epochs) == [0] and curvature.layers == list(analysed.sal.layers)
    assert np.isfinite(curvature.lambda_max).all() and np.isfinite(curvature.whole()).all()
    sliced = analysed.layer_slice("head.weight", resolution=5, n_eval=40)
    assert sliced.surfaces["imported"].loss.shape == (5, 1) and sliced.info["epochs"] == {"imported": 0}
    on_test = dict(resolution=5, n_eval=40, split="test")  # "train" is the poisoned run's own, poisoned, images
    # the same weights and images through two stages (imported vs trained run): equal to float32 rounding (on an
    # Intel AVX-512 machine the last bit differs at 3 of 5 points, 6e-9 of 1.29; bit-equal on the AMD machines)
    np.testing.assert_allclose(analysed.layer_slice("head.weight", **on_test).surfaces["imported"].loss,
                               study.layer_slice("head.weight", **on_test).surfaces["random"].loss, rtol=1e-6, atol=0)
    assert {"curvature-lambda-max", "curvature-rank-agreement", "layer-slice"} <= set(
        analysed.figures(curvature=curvature, layer_slice=sliced))
    with pytest.raises(SpecError, match="choose clean or poisoned"):
        study.export_weights(tmp_path / "x.safetensors", run="other")


def test_bad_inputs_say_what_is_expected(store, images):
    x, y = images
    with pytest.raises(SpecError, match=r"\(images, labels\) pair of tensors or arrays, a torch Dataset"):
        run_study(factory, x, store=store, **QUICK)
    with pytest.raises(DataError, match=r"the training images values span .*stored as uint8 or divided by 255"):
        run_study(factory, (x.astype(np.float32), y), store=store, **QUICK)
    with pytest.raises(DataError, match="not numbers"):
        run_study(factory, ([object()] * 3, [0, 1, 2]), store=store, **QUICK)
    with pytest.raises(ModelError, match=r"shape \(2, 5\).*expected floating logits of shape \(2, 4\)"):
        run_study(wrong_width, (x, y), store=store, **QUICK)
    assert {p.name for p in store.root.iterdir()} == {"inputs"}  # refused before anything ran or was stored


def readme_text() -> str:
    return (Path(__file__).parents[1] / "README.md").read_text()


def readme_example() -> str:
    text = readme_text()
    match = re.search(r"<!-- api-example -->\s*```python\n(.*?)```", text, re.S)
    assert match, "README.md must hold the API example after <!-- api-example -->"
    return match[1]


def test_the_readme_example_runs(tmp_path, monkeypatch):
    code = readme_example()
    assert len(code.strip().splitlines()) <= 15
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(tmp_path / "store"))
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(code, "README.md", "exec"), namespace)  # noqa: S102 - our own README
    study = namespace["study"]
    assert np.isfinite(study.ud.ud) and "sal" in study.figures()
    named = re.search(r'study\.layer_slice\("([^"]+)"\)', readme_text())[1]  # the layer the prose after it slices
    assert study.layer_slice(named, resolution=3, n_eval=20).info["layers"] == [named] == ["3.weight"]
