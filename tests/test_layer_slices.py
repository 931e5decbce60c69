"""Layer slices: directions that move one weight tensor (or a group) only, the SAL ball in slice coordinates."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from torch import nn

from landscape import directions as D
from landscape import surface as S
from landscape.errors import ShapeError, SpecError
from landscape.models import build_model, weight_layers
from landscape.train import evaluate

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def cnn(tiny_splits) -> nn.Module:
    return build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)


def _plane(model: nn.Module, layers: list[str], dims: int, seed: int = 0) -> D.Plane:
    return D.layer_plane(model.state_dict(), layers, torch.Generator().manual_seed(seed), dims=dims, seed=seed)


@pytest.mark.parametrize("dims", [1, 2])
def test_layer_direction_moves_only_the_chosen_tensor(cnn, dims):
    layer = weight_layers(cnn)[2]
    plane = _plane(cnn, [layer], dims)
    for d in plane.directions:
        assert list(d) == [layer]
        w = cnn.state_dict()[layer]
        np.testing.assert_allclose(d[layer].reshape(len(w), -1).norm(dim=1), w.reshape(len(w), -1).norm(dim=1),
                                   rtol=1e-5)  # filter-normalised against the layer (Li et al. 2018)
    coords = np.array([[0.7, -0.3]])[:, :dims]
    points = S.GridPoints(plane.center, plane.directions, coords)
    assert points.varying == [layer]
    moved = points.stack(torch.tensor([0]))
    assert list(moved) == [layer]
    state = cnn.state_dict()
    for name, value in points.fixed.items():  # every other entry is the model's own tensor, bit for bit
        assert torch.equal(value, state[name]), name
    assert set(points.fixed) | {layer} == set(state)
    expected = state[layer] + 0.7 * plane.d1[layer] + (-0.3 * plane.d2[layer] if dims == 2 else 0)
    torch.testing.assert_close(moved[layer][0], expected, rtol=1e-6, atol=1e-7)
    if dims == 2:
        assert abs(D.cosine(plane.d1, plane.d2)) < 1e-6
    # filter normalisation: ||d|| = ||theta_l||, so the SAL ball is the disc of radius eps in slice coordinates
    np.testing.assert_allclose(plane.info["sal_ball"], [0.05] * dims, rtol=1e-5)
    assert plane.info["layers"] == [layer] and plane.kind == "layer"


@pytest.mark.parametrize("dims", [1, 2])
def test_layer_slice_at_zero_equals_model_loss_and_along_it_matches_a_moved_copy(cnn, tiny_splits, dims):
    layer = weight_layers(cnn)[0]
    plane = _plane(cnn, [layer], dims)
    grid = [-0.5, 0.0, 0.25]
    s = S.slice_plane(cnn, plane, tiny_splits.test, grid, grid if dims == 2 else None, batch_size=16)
    loss, acc = evaluate(cnn, tiny_splits.test.x, tiny_splits.test.y)
    origin = (1, 1) if dims == 2 else (1, 0)
    assert s.loss[origin] == pytest.approx(loss, abs=1e-6) and s.acc[origin] == pytest.approx(acc)
    assert s.kind == "layer" and s.info["sal_ball"] == plane.info["sal_ball"]
    moved = copy.deepcopy(cnn)  # an independent reference: load theta_l + a d into a copy, everything else as is
    with torch.no_grad():
        dict(moved.named_parameters())[layer].add_(0.25 * plane.d1[layer])
    ref_loss, _ = evaluate(moved, tiny_splits.test.x, tiny_splits.test.y)
    assert s.loss[(2, 1) if dims == 2 else (2, 0)] == pytest.approx(ref_loss, rel=1e-5)


def test_group_of_layers_and_its_ball(cnn):
    layers = weight_layers(cnn)[-2:]
    plane = _plane(cnn, layers, 1)
    assert sorted(plane.d1) == sorted(layers)
    theta = np.sqrt(sum(float(cnn.state_dict()[n].norm() ** 2) for n in layers))
    assert plane.info["sal_ball"][0] == pytest.approx(0.05 * theta / D.norm_of(plane.d1), rel=1e-6)
    layer_norm = D.layer_plane(cnn.state_dict(), layers, torch.Generator().manual_seed(0), norm="none")
    assert layer_norm.info["sal_ball"][0] == pytest.approx(0.05 * theta / D.norm_of(layer_norm.d1), rel=1e-6)
    assert layer_norm.info["sal_ball"][0] != pytest.approx(0.05)  # raw Gaussian: the ball is not at eps


def test_same_seed_gives_the_same_raw_direction_for_two_models(tiny_splits):
    a = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
    b = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=5)
    layer = weight_layers(a)[1]
    da, db = _plane(a, [layer], 1).d1[layer], _plane(b, [layer], 1).d1[layer]

    def unit_filters(d: torch.Tensor) -> torch.Tensor:
        f = d.reshape(len(d), -1)
        return f / f.norm(dim=1, keepdim=True)

    torch.testing.assert_close(unit_filters(da), unit_filters(db), rtol=1e-5, atol=1e-6)
    assert not torch.allclose(da, db)  # each normalised to its own weights


def test_bad_layer_requests_are_rejected(cnn):
    with pytest.raises(SpecError, match="at least one"):
        _plane(cnn, [], 1)
    with pytest.raises(ShapeError, match="nope"):
        _plane(cnn, ["nope.weight"], 1)
    with pytest.raises(SpecError, match="dims"):
        _plane(cnn, [weight_layers(cnn)[0]], 3)


def test_a_slice_the_runs_cannot_give_is_refused_before_they_train(store):
    """An epoch the runs do not keep, or a tensor the model lacks, is refused on resolving: nothing trains."""
    import re

    from landscape.config import DataSpec, LayerSliceSpec, ModelSpec, PoisonSpec, TrainSpec
    from landscape.experiment import get_layer_slices
    from landscape.stages.surface import LayerSliceStage

    data, model, train = DataSpec(n_train=40, n_test=20), ModelSpec("cnn"), TrainSpec(epochs=3, checkpoint_every=2)
    for spec, why in [
        (LayerSliceSpec(layers=("0.weight",), epoch=1),
         "LayerSliceSpec.epoch = 1 is not a stored epoch: training for 3 epochs, a checkpoint every 2 keeps epochs "
         "0, 2, 3"),
        (LayerSliceSpec(layers=("0.weight",), epoch=4), "epoch = 4 is not a stored epoch"),
        (LayerSliceSpec(layers=("0.bias", "net.0.weight")),
         "LayerSliceSpec.layers: net.0.weight is not a tensor of cnn; its weight layers: 0.weight, 2.weight, "
         "5.weight, 7.weight, 12.weight, 14.weight"),
    ]:
        with pytest.raises(SpecError, match=re.escape(why)):
            get_layer_slices(data, model, train, PoisonSpec(method="random"), spec, store=store)
    assert not store.root.exists() or not list(store.root.rglob("*"))  # no run trained, nothing crafted
    for epoch in (None, 0, 2, 3):  # what the runs keep resolves (nothing computed)
        assert LayerSliceStage.of(data, model, train, None, LayerSliceSpec(layers=("0.bias",), epoch=epoch))


def test_slice_axes_span_ten_radii_of_each_direction_or_the_given_ranges():
    """The automatic grid spans AUTO_RADII SAL radii of its own direction on each axis; a given beta_range is used
    for the second axis, alpha_range for both when beta_range is None."""
    from landscape.config import LayerSliceSpec
    from landscape.layer_slices import slice_axes

    spec = LayerSliceSpec(layers=("w",), dims=2, resolution=5)
    alpha, beta = slice_axes(spec, [0.1, 0.3])
    np.testing.assert_allclose(alpha, np.linspace(-1.0, 1.0, 5))
    np.testing.assert_allclose(beta, np.linspace(-3.0, 3.0, 5))
    alpha, beta = slice_axes(spec.replace(alpha_range=(-2.0, 1.0), beta_range=(0.5, 4.5)), [0.1, 0.3])
    np.testing.assert_allclose(alpha, np.linspace(-2.0, 1.0, 5))
    np.testing.assert_allclose(beta, np.linspace(0.5, 4.5, 5))
    _, beta = slice_axes(spec.replace(alpha_range=(-2.0, 1.0)), [0.1, 0.3])
    np.testing.assert_allclose(beta, np.linspace(-2.0, 1.0, 5))
    _, beta = slice_axes(spec.replace(dims=1), [0.1])
    np.testing.assert_array_equal(beta, [0.0])


def test_layer_slices_take_the_stored_epochs_checkpoint_and_one_raw_direction_for_every_run(cnn, tiny_splits):
    """Checkpoints kept at epochs 0, 2, 3 (a checkpoint every 2): epoch 2 is the second stored state. At 0 each
    slice is the loss of the model loaded with that state; two runs with the same state and images get the same
    raw direction, so the same slice, bit for bit."""
    from landscape.config import LayerSliceSpec
    from landscape.layer_slices import layer_slices
    from landscape.train import TrainResult

    g = torch.Generator().manual_seed(7)
    base = cnn.state_dict()
    states = [{k: (v + 0.3 * torch.randn(v.shape, generator=g)) if v.is_floating_point() else v.clone()
               for k, v in base.items()} for _ in range(3)]
    run = TrainResult({}, [0, 2, 3], states)
    spec = LayerSliceSpec(layers=(weight_layers(cnn)[1],), epoch=2, resolution=3, n_eval=None)
    result = layer_slices(cnn, {"clean": run, "em": run}, {"clean": tiny_splits.test, "em": tiny_splits.test}, spec)
    assert result.info["epochs"] == {"clean": 2, "em": 2}
    moved = copy.deepcopy(cnn)
    moved.load_state_dict(states[1])
    loss, _ = evaluate(moved, tiny_splits.test.x, tiny_splits.test.y)
    assert result["clean"].value_at(0.0) == pytest.approx(loss, rel=1e-5)
    np.testing.assert_array_equal(result["clean"].loss, result["em"].loss)
