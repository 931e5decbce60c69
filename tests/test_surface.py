"""Surfaces: oracle slices, batched == sequential, no mutation, paths, cost, caps, NaN handling, the stage."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landscape import directions as D
from landscape import run_surfaces as R
from landscape import surface as S
from landscape.config import MAX_GRID_POINTS, DataSpec, ModelSpec, SurfaceSpec, TrainSpec
from landscape.errors import LandscapeError, ShapeError, SpecError
from landscape.models import build_model
from landscape.surface_results import ProjectedPath, Surface, SurfaceSet
from landscape.train import evaluate, train

TOL = 1e-5  # batched vs sequential, float32


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits when the machine is shared (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class Quadratic(nn.Module):
    """Cross-entropy equals Q(w) = 1 + sum(h * (w - w_star)^2) exactly: logits (0, log(expm1(Q))), label 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([[0.5, -0.2, 0.1], [0.3, 0.0, -0.4]]))
        self.register_buffer("w_star", torch.tensor([[0.2, 0.1, 0.0], [-0.1, 0.2, 0.3]]))
        self.register_buffer("h", torch.tensor([[1.0, 2.0, 0.5], [3.0, 1.5, 0.25]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = 1.0 + (self.h * (self.w - self.w_star) ** 2).sum()
        z = torch.log(torch.expm1(q))
        return torch.stack([torch.zeros_like(z), z]).expand(x.shape[0], 2)


class SqrtGate(nn.Module):
    """A linear classifier scaled by sqrt(s): NaN wherever a direction pushes s below zero."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(64, 4)
        self.s = nn.Parameter(torch.ones(1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.flatten(1)) * torch.sqrt(self.s).reshape(())


class ResidualBN(nn.Module):
    """Not an nn.Sequential: exercises the vmap path with BatchNorm in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Linear(4 * 64, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.bn(self.conv(x)))
        return self.head((h + x).flatten(1))


def seq_bn() -> nn.Module:
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten(),
                         nn.Linear(24, 8), nn.BatchNorm1d(8), nn.Tanh(), nn.Linear(8, 4))


def randomise_bn(net: nn.Module, seed: int = 0) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return net


def plane_for(net: nn.Module, seed: int = 0, **kw) -> D.Plane:
    return D.random_plane(net.state_dict(), D.parameter_names(net), torch.Generator().manual_seed(seed), **kw)


@pytest.fixture
def cnn(tiny_splits):
    return build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)


def test_quadratic_slice_equals_closed_form():
    net = Quadratic()
    g = torch.Generator().manual_seed(0)
    d1, d2 = {"w": torch.randn(2, 3, generator=g)}, {"w": torch.randn(2, 3, generator=g)}
    alpha, beta = np.linspace(-1, 1, 7), np.linspace(-0.5, 1.5, 5)
    x, y = torch.zeros(10, 1, 1, 1), torch.zeros(10, dtype=torch.long)
    w0, ws, h = (t.detach().double().numpy() for t in (net.w, net.w_star, net.h))
    a1, a2 = d1["w"].double().numpy(), d2["w"].double().numpy()
    expected = np.array([[1 + (h * (w0 + a * a1 + b * a2 - ws) ** 2).sum() for b in beta] for a in alpha])
    for evaluator in ("batched", "sequential"):
        s = S.slice_2d(net, d1, d2, (x, y), alpha, beta, evaluator=evaluator, batch_size=4)
        np.testing.assert_allclose(s.loss, expected, rtol=2e-5, atol=1e-5)
        assert s.loss.shape == (7, 5) and s.finite.all()
        np.testing.assert_allclose(s.loss_se, 0.0, atol=1e-3)  # every image has the same loss
    line = S.slice_1d(net, d1, (x, y), alpha)
    np.testing.assert_allclose(line.loss[:, 0], expected[:, list(beta).index(0.0)] if 0.0 in beta else
                               [1 + (h * (w0 + a * a1 - ws) ** 2).sum() for a in alpha], rtol=2e-5)


def test_origin_equals_model_loss_and_model_untouched(cnn, tiny_splits):
    cnn.train()
    before = {k: v.clone() for k, v in cnn.state_dict().items()}
    plane = plane_for(cnn)
    s = S.slice_plane(cnn, plane, tiny_splits.test, [-0.5, 0.0, 0.5], [-0.5, 0.0, 0.5], batch_size=10)
    assert cnn.training and all(torch.equal(before[k], v) for k, v in cnn.state_dict().items())
    assert all(p.requires_grad for p in cnn.parameters())
    loss, acc = evaluate(cnn, tiny_splits.test.x, tiny_splits.test.y)
    assert s.loss[1, 1] == pytest.approx(loss, abs=1e-6) and s.acc[1, 1] == pytest.approx(acc)
    assert s.batch_loss.shape == (4, 3, 3) and list(s.batch_sizes) == [10, 10, 10, 2]
    weighted = (s.batch_loss * s.batch_sizes[:, None, None]).sum(0) / s.batch_sizes.sum()
    np.testing.assert_allclose(weighted, s.loss, rtol=1e-9)
    assert s.info["backend"] == "plan" and (s.loss_se > 0).all()


@pytest.mark.parametrize("make", [
    lambda shape, k: build_model("cnn", shape, k, seed=0),
    lambda shape, k: build_model("mlp", shape, k, seed=1),
    lambda shape, k: build_model("lenet5", shape, k, seed=2),
    lambda shape, k: randomise_bn(seq_bn()),
    lambda shape, k: randomise_bn(ResidualBN()),
], ids=["cnn", "mlp", "lenet5", "sequential-bn", "residual-bn-vmap"])
def test_batched_equals_sequential(make, tiny_splits):
    torch.manual_seed(0)
    net = make(tiny_splits.image_shape, tiny_splits.num_classes)
    plane = plane_for(net, seed=1, bias_bn="random")
    grid = np.linspace(-1, 1, 5)
    kw = {"batch_size": 12}
    seq = S.slice_plane(net, plane, tiny_splits.test, grid, grid, evaluator="sequential", **kw)
    bat = S.slice_plane(net, plane, tiny_splits.test, grid, grid, chunk=7, **kw)  # uneven chunks
    assert np.abs(bat.loss - seq.loss).max() <= TOL
    assert np.abs(bat.batch_loss - seq.batch_loss).max() <= TOL
    np.testing.assert_array_equal(bat.acc, seq.acc)
    assert bat.info["backend"] == ("vmap" if isinstance(net, ResidualBN) else "plan")
    if not isinstance(net, ResidualBN):
        via_vmap = S.slice_plane(net, plane, tiny_splits.test, grid, grid, backend="vmap", **kw)
        assert np.abs(via_vmap.loss - seq.loss).max() <= TOL


def test_states_with_batchnorm_buffers_batched_equals_sequential(tiny_splits):
    states = [randomise_bn(seq_bn(), seed=s).state_dict() for s in range(4)]
    net = seq_bn()
    seq = S.evaluate_states(net, states, tiny_splits.test, evaluator="sequential")
    bat = S.evaluate_states(net, states, tiny_splits.test)
    assert np.abs(bat.loss - seq.loss).max() <= TOL
    for s, state in enumerate(states):
        ref = seq_bn()
        ref.load_state_dict(state)
        assert bat.loss[s] == pytest.approx(evaluate(ref, tiny_splits.test.x, tiny_splits.test.y)[0], abs=1e-5)


def test_tiny_memory_cap_gives_chunk_one_and_same_values(cnn, tiny_splits):
    plane = plane_for(cnn)
    a = S.slice_plane(cnn, plane, tiny_splits.test, [-1, 1], [0, 1], memory_cap_mb=1e-6)
    b = S.slice_plane(cnn, plane, tiny_splits.test, [-1, 1], [0, 1])
    assert a.info["chunk"] == 1 and b.info["chunk"] >= 4
    assert np.abs(a.loss - b.loss).max() <= TOL


def test_nan_regions_are_kept_and_masked(tiny_splits):
    net = SqrtGate()
    d_s = {"s": torch.ones(1, 1), "fc.weight": torch.zeros(4, 64)}
    d_w = {"fc.weight": torch.randn(4, 64, generator=torch.Generator().manual_seed(0)) * 0.01}
    alpha = np.array([-2.0, -1.5, -0.5, 0.0, 1.0])  # s = 1 + alpha < 0 for the first two
    for evaluator in ("batched", "sequential"):
        s = S.slice_2d(net, d_s, d_w, tiny_splits.test, alpha, [0.0, 1.0], evaluator=evaluator)
        assert np.isnan(s.loss[:2]).all() and np.isfinite(s.loss[2:]).all()
        np.testing.assert_array_equal(s.finite, np.isfinite(s.loss))
        assert np.isnan(s.loss_se[:2]).all() and np.isnan(s.batch_loss[:, :2]).all()
    meta, arrays = s.to_store()
    back = Surface.from_store(meta, arrays)
    assert np.isnan(back.loss[:2]).all() and back.finite.dtype == bool


def test_bad_input_is_rejected(cnn, tiny_splits):
    plane = plane_for(cnn)
    bad = dict(plane.d1)
    bad["0.weight"] = torch.ones(3, 3)
    with pytest.raises(ShapeError, match="shape"):
        S.slice_2d(cnn, bad, plane.d2, tiny_splits.test, [0.0], [0.0])
    zero = {k: torch.zeros_like(v) for k, v in plane.d1.items()}
    with pytest.raises(LandscapeError, match="zero norm"):
        S.slice_1d(cnn, zero, tiny_splits.test, [0.0, 1.0])
    with pytest.raises(SpecError, match=r"cap of 9 points .*GFLOP|cap of 9 points"):
        S.slice_2d(cnn, plane.d1, plane.d2, tiny_splits.test, np.arange(4), np.arange(4), max_points=9)
    with pytest.raises(SpecError, match="101x101"):
        S.check_grid(MAX_GRID_POINTS + 1, 360, flop_per_image=7.7e5)
    with pytest.raises(SpecError, match="10,201"):
        SurfaceSpec(resolution=102)
    with pytest.raises(SpecError, match="finite"):
        S.slice_1d(cnn, plane.d1, tiny_splits.test, [0.0, float("nan")])
    with pytest.raises(ShapeError, match="inputs but"):
        S.slice_1d(cnn, plane.d1, (tiny_splits.test.x, tiny_splits.test.y[:3]), [0.0])
    with pytest.raises(SpecError, match="evaluator"):
        S.slice_1d(cnn, plane.d1, tiny_splits.test, [0.0], evaluator="fast")


def test_project_path_on_and_off_plane(cnn, tiny_splits):
    g = torch.Generator().manual_seed(3)
    base = D.float_state(cnn.state_dict())
    other = {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    third = {k: v + 0.1 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    names = D.parameter_names(cnn)
    plane = D.plane_through(base, other, third, names)
    off = {k: v + 0.05 * torch.randn(v.shape, generator=g) for k, v in base.items()}
    path = S.project_path(cnn, plane, [base, other, third, off], [0, 1, 2, 3], tiny_splits.test)
    np.testing.assert_allclose(path.alpha[:2], [0.0, 1.0], atol=1e-5)
    assert path.relative_residual[:3].max() < 1e-4 and path.relative_residual[3] > 0.1
    np.testing.assert_allclose(path.real_loss[:3], path.plane_loss[:3], atol=1e-4)
    assert abs(path.real_loss[3] - path.plane_loss[3]) > 0  # off the plane: they differ


def test_cost_estimate(cnn, tiny_splits):
    est = S.estimate_cost(cnn, 441, tiny_splits.test, batch_size=16)
    assert est.forward_passes == 441 * len(tiny_splits.test) and est.gflop > 0
    assert est.seconds is not None and est.seconds > 0 and est.chunk >= 1 and est.batches == 2
    assert "441 grid points" in est.describe()
    quick = S.estimate_cost(cnn, 10, tiny_splits.test, calibrate=False)
    assert quick.seconds is None


def test_progress_and_store_roundtrip(cnn, tiny_splits, store):
    calls = []
    plane = plane_for(cnn)
    s = S.slice_plane(cnn, plane, tiny_splits.test, [-1, 0, 1], [0, 1], batch_size=16, chunk=4,
                      progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (12, 12) and all(b >= a for (a, _), (b, _) in zip(calls, calls[1:], strict=False))
    s.paths["clean"] = ProjectedPath(*(np.arange(3.0) for _ in ProjectedPath.FIELDS))
    s.anchors = {"clean": (0.0, 0.0)}
    meta, arrays = SurfaceSet({"clean": s}, {"kind": "random"}).to_store()
    entry = store.save("surface-test", "k1", meta, arrays)
    back = SurfaceSet.from_store(entry.meta, entry.arrays)["clean"]
    np.testing.assert_array_equal(back.loss, s.loss)
    np.testing.assert_array_equal(back.paths["clean"].real_loss, np.arange(3.0))
    assert back.anchors == {"clean": (0.0, 0.0)} and back.info["cosine_before"] == s.info["cosine_before"]
    grid = SurfaceSet({"clean": s}).grid_table()  # the app's table: one row per grid point, the right cell
    assert len(grid) == 6 and grid[5]["alpha"] == 1.0 and grid[5]["beta"] == 1.0 and grid[5]["loss"] == s.loss[2, 1]
    paths = SurfaceSet({"clean": s}).paths_table()
    assert [r["epoch"] for r in paths] == [0, 1, 2] and paths[2]["real_loss"] == 2.0


def test_compute_surfaces_kinds(tiny_splits):
    from landscape.data import Splits

    spec = TrainSpec(epochs=3, batch_size=16, lr=0.05)
    runs = {}
    for label, seed in (("clean", 0), ("em", 1)):
        net = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
        runs[label] = train(net, tiny_splits.train, tiny_splits.test, spec.replace(seed=seed))
    net = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
    splits = Splits("tiny", tiny_splits.train, tiny_splits.test)
    shared = R.compute_surfaces(net, runs, splits, SurfaceSpec(kind="pca", resolution=4, n_eval=16))
    surf = shared["shared"]
    assert set(surf.paths) == {"clean", "em"} and surf.explained_variance.shape == (2,)
    assert surf.paths["clean"].relative_residual[-1] == pytest.approx(0.0, abs=1e-6)  # centre = clean final
    # the grid holds every projected checkpoint
    for p in surf.paths.values():
        assert surf.alpha.min() <= p.alpha.min() and p.alpha.max() <= surf.alpha.max()
    own = R.compute_surfaces(net, runs, splits, SurfaceSpec(kind="pca", plane="own", resolution=3, n_eval=8))
    assert set(own.surfaces) == {"clean", "em"}
    rnd = R.compute_surfaces(net, runs, splits, SurfaceSpec(kind="random", resolution=3, n_eval=8))
    assert rnd["clean"].info["seed"] == rnd["em"].info["seed"] == 0  # the same draws, scaled to each model
    assert set(rnd["clean"].paths) == {"clean"} and rnd["clean"].anchors == {"clean": (0.0, 0.0)}
    interp = R.compute_surfaces(net, runs, splits, SurfaceSpec(kind="interp", resolution=5, n_eval=8))
    s = interp["interp"]
    assert s.anchors["clean"] == (0.0, 0.0) and s.anchors["em"] == (1.0, 0.0) and "init" in s.anchors
    assert s.alpha.min() <= -0.5 and s.alpha.max() >= 1.5
    np.testing.assert_allclose(s.paths["em"].alpha[-1], 1.0, atol=1e-5)
    line = R.compute_surfaces(net, runs, splits, SurfaceSpec(kind="interp", dims=1, resolution=5, n_eval=8))
    assert line["interp"].loss.shape == (5, 1)


def test_get_surface_is_cached(store, monkeypatch):
    from landscape import experiment

    data, model = DataSpec(n_train=120, n_test=40), ModelSpec(name="mlp")
    tspec, sspec = TrainSpec(epochs=3), SurfaceSpec(kind="pca", resolution=3)
    first = experiment.get_surface(data, model, tspec, None, sspec, store=store)
    with pytest.raises(SpecError, match="poisoned run"):
        experiment.get_surface(data, model, tspec, None, SurfaceSpec(kind="interp", resolution=3), store=store)
    monkeypatch.setattr("landscape.stages.surface.compute_surfaces", lambda *a, **k: pytest.fail("recomputed"))
    again = experiment.get_surface(data, model, tspec, None, sspec, store=store)
    np.testing.assert_array_equal(first["shared"].loss, again["shared"].loss)
    assert again["shared"].paths["clean"].epochs.tolist() == list(range(4))


def test_an_interp_plane_without_a_poison_is_refused_before_training(store):
    from landscape import experiment
    from landscape.stages.surface import SurfaceStage

    data, model, tspec = DataSpec(n_train=40, n_test=20), ModelSpec(name="mlp"), TrainSpec(epochs=1)
    with pytest.raises(SpecError, match="kind = 'interp' with dims = 2 .* needs a poisoned run"):
        experiment.get_surface(data, model, tspec, None, SurfaceSpec(kind="interp", resolution=3), store=store)
    assert not store.root.exists() or not list(store.root.rglob("*"))  # the clean run was not trained
    assert SurfaceStage.of(data, model, tspec, None, SurfaceSpec(kind="interp", dims=1))  # init -> clean: fine


def test_a_pca_plane_with_too_few_checkpoints_is_refused_before_training(store):
    from landscape import experiment
    from landscape.config import PoisonSpec
    from landscape.stages.surface import SurfaceStage

    data, model, tspec = DataSpec(n_train=40, n_test=20), ModelSpec(name="mlp"), TrainSpec(epochs=1)
    with pytest.raises(SpecError, match="'pca' needs at least 3 checkpoints, but the runs keep 2"):
        experiment.get_surface(data, model, tspec, None, SurfaceSpec(kind="pca", resolution=3), store=store)
    with pytest.raises(SpecError, match="each run keeps 2"):
        SurfaceStage.of(data, model, tspec, PoisonSpec(method="random"), SurfaceSpec(kind="pca", plane="own"))
    assert not store.root.exists() or not list(store.root.rglob("*"))  # the clean run was not trained
    assert SurfaceStage.of(data, model, tspec, PoisonSpec(method="random"), SurfaceSpec(kind="pca"))  # 4 pooled
    assert SurfaceStage.of(data, model, TrainSpec(epochs=2), None, SurfaceSpec(kind="pca"))  # 3 checkpoints


def test_get_surface_interp_with_a_poison(store):
    from landscape import experiment
    from landscape.config import PoisonSpec

    data, model, tspec = DataSpec(n_train=100, n_test=30), ModelSpec(name="mlp"), TrainSpec(epochs=2)
    result = experiment.get_surface(data, model, tspec, PoisonSpec(method="random"),
                                    SurfaceSpec(kind="interp", resolution=3), store=store)
    s = result["interp"]
    assert result.info["labels"] == ["clean", "random"] and set(s.paths) == {"clean", "random"}
    assert s.anchors["clean"] == (0.0, 0.0) and s.anchors["random"] == (1.0, 0.0)
    # both runs start from the same initialisation, which is the plane's third model
    np.testing.assert_allclose([s.paths["clean"].alpha[0], s.paths["clean"].beta[0]], s.anchors["init"], atol=1e-4)
    np.testing.assert_allclose(s.paths["random"].real_loss[-1], s.paths["random"].plane_loss[-1], atol=1e-4)


def test_cli_writes_html_and_arrays(tmp_path, capsys):
    from landscape.cli import main

    out = tmp_path / "surf.html"
    args = ["surface", "--dataset", "digits", "--n-train", "100", "--n-test", "30", "--model", "mlp", "--epochs", "2",
            "--kind", "pca", "--resolution", "3", "--store", str(tmp_path / "store"), "--out", str(out)]
    assert main(args) == 0
    assert "surface cost:" in capsys.readouterr().out
    assert "plotly" in out.read_text()[:20000].lower()
    assert main(args) == 0  # the rerun is served from the store and says so instead of announcing a cost
    again = capsys.readouterr().out
    assert "nothing to compute" in again and "surface cost:" not in again
    arrays = np.load(out.with_suffix(".npz"))
    assert arrays["shared/loss"].shape == (3, 3) and "shared/path/clean/real_loss" in arrays.files
    assert main(args[:-2] + ["--kind", "interp", "--dims", "1", "--json", "--out", str(tmp_path / "line.html")]) == 0
    assert np.load(tmp_path / "line.npz")["interp/loss"].shape == (3, 1)
    assert main(args[:-2] + ["--resolution", "150", "--out", str(out)]) == 2  # over the cap: a clear error
    assert "10,201" in capsys.readouterr().err


def test_standard_errors_are_those_of_the_mean_over_images(cnn, tiny_splits):
    """loss_se = std(per-image loss, ddof=1) / sqrt(n) and acc_se = sqrt(acc (1 - acc) / n), at the origin from
    the model's own per-image losses (the direct oracle)."""
    data = tiny_splits.test
    s = S.slice_1d(cnn, plane_for(cnn).d1, data, [0.0], batch_size=10)
    with torch.no_grad():
        logits = cnn.eval()(data.x)
    per_image = torch.nn.functional.cross_entropy(logits, data.y, reduction="none").double().numpy()
    acc = float((logits.argmax(1) == data.y).double().mean())
    n = len(data.y)
    assert 0 < acc < 1
    assert s.loss_se[0, 0] == pytest.approx(per_image.std(ddof=1) / np.sqrt(n), rel=1e-4)
    assert s.acc_se[0, 0] == pytest.approx(np.sqrt(acc * (1 - acc) / n), rel=1e-9)


def test_a_slice_is_centred_on_the_given_state_not_the_models_weights(cnn, tiny_splits):
    """`center` replaces the model's weights: at (0, 0) the slice is the loss of a copy loaded with the centre, at
    (a, 0) that of the centre moved by a d1 (the model supplies only the architecture)."""
    import copy

    g = torch.Generator().manual_seed(5)
    center = {k: v + 0.2 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
              for k, v in cnn.state_dict().items()}
    plane = plane_for(cnn)
    s = S.slice_1d(cnn, plane.d1, tiny_splits.test, [0.0, 0.5], center=center, batch_size=16)
    for i, a in enumerate((0.0, 0.5)):
        ref = copy.deepcopy(cnn)
        ref.load_state_dict({k: v + a * plane.d1[k] if k in plane.d1 else v for k, v in center.items()})
        loss, _ = evaluate(ref, tiny_splits.test.x, tiny_splits.test.y)
        assert s.loss[i, 0] == pytest.approx(loss, rel=1e-5)


def test_eval_subset_is_fixed_by_its_seed():
    from landscape.data import ImageSet

    images = ImageSet(torch.rand(50, 1, 8, 8), torch.arange(50) % 5, tuple("abcde"))
    a, b, c = (S.eval_subset(images, 10, seed) for seed in (3, 3, 4))
    assert torch.equal(a.x, b.x) and len(a) == 10
    assert not torch.equal(a.x, c.x)  # another seed, another subset
    rows = [int(torch.nonzero((images.x == img).flatten(1).all(1))[0]) for img in a.x]
    assert rows == sorted(set(rows)) and torch.equal(a.y, images.y[rows])
    assert S.eval_subset(images, None) is images and S.eval_subset(images, 50) is images
