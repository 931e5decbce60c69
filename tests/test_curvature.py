"""Oracles for `landscape.curvature`: closed-form quadratic Hessians, `torch.autograd.functional.hessian` blocks."""

from __future__ import annotations

import copy
import json

import numpy as np
import pytest
import torch
from torch import nn

from landscape.config import CurvatureSpec
from landscape.curvature import (
    WHOLE,
    Curvature,
    CurvatureTrace,
    HessianBlocks,
    _rademacher,
    average_ranks,
    block_generator,
    curvature_subset,
    curvature_trace,
    layer_rank_agreement,
    measured_epochs,
    model_curvature,
)
from landscape.errors import ShapeError, SpecError

pytestmark = pytest.mark.usefixtures("one_thread")


class HalfSquaredError:
    """Per-sample 0.5 * ||out - y||^2: the loss of the closed-form oracle."""

    def sample_loss(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        return 0.5 * ((outputs - targets) ** 2).sum(1)

    def sample_score(self, outputs: torch.Tensor, targets: torch.Tensor) -> None:
        return None


def _quadratic(d: int = 12, n: int = 40) -> tuple[nn.Module, torch.Tensor, torch.Tensor, np.ndarray]:
    """A linear layer under MSE: L(W) = 1/(2N) sum_n (W x_n + b - y_n)^2, Hessian in W is A = X^T X / N."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(n, d, generator=g) * torch.linspace(0.2, 2.0, d)  # spread spectrum, distinct eigenvalues
    y = torch.randn(n, 1, generator=g)
    torch.manual_seed(0)
    model = nn.Linear(d, 1)
    a = (x.double().T @ x.double() / n).numpy()
    return model, x, y, a


def test_quadratic_layer_matches_closed_form():
    model, x, y, a = _quadratic()
    spec = CurvatureSpec(n_data=None, top_k=4, tol=1e-8, min_steps=13, max_steps=13, probes=4, whole_model=True)
    c = model_curvature(model, x, y, spec, loss=HalfSquaredError())
    block = c.layers["weight"]
    exact = np.sort(np.linalg.eigvalsh(a))[::-1]
    np.testing.assert_allclose(block.eigenvalues, exact[:4], rtol=1e-4)
    assert block.lambda_max == pytest.approx(exact[0], rel=1e-4)
    # a full Krylov space (m = d): the trace is exact and the probes see nothing left
    assert block.steps == 12 and block.trace == pytest.approx(np.trace(a), rel=1e-4) and block.trace_se < 1e-5
    # the density's nodes are the spectrum, its weights those of the start vector q1 = z / sqrt(d)
    np.testing.assert_allclose(np.sort(block.esd_nodes[0]), np.sort(exact), rtol=1e-4, atol=1e-6)
    q1 = _rademacher(block_generator(spec.seed, "weight"), (1, 12), torch.device("cpu"))[0].double().numpy() / 12 ** .5
    evals, evecs = np.linalg.eigh(a)
    order = np.argsort(block.esd_nodes[0])
    np.testing.assert_allclose(block.esd_weights[0][order], (evecs.T @ q1) ** 2, atol=1e-5)
    # whole model = [W, b] (d = 13, a full Krylov space too): Hessian [[A, mean x], [mean x^T, 1]]
    xbar = x.double().mean(0).numpy()[:, None]
    full = np.block([[a, xbar], [xbar.T, np.ones((1, 1))]])
    np.testing.assert_allclose(c.whole.eigenvalues, np.sort(np.linalg.eigvalsh(full))[::-1][:4], rtol=1e-4)
    assert c.whole.trace == pytest.approx(np.trace(full), rel=1e-4)


def test_quadratic_density_moments_and_mass():
    """Gauss quadrature: sum_i w_i theta_i^p = q1^T A^p q1 for p <= 2m - 1; the density integrates to 1."""
    model, x, y, a = _quadratic()
    spec = CurvatureSpec(n_data=None, top_k=1, tol=1e-3, min_steps=4, max_steps=4, probes=2, esd_runs=3,
                         whole_model=False)
    block = model_curvature(model, x, y, spec, loss=HalfSquaredError()).layers["weight"]
    assert block.steps == 4 and block.esd_nodes.shape == (3, 4)
    q = _rademacher(block_generator(spec.seed, "weight"), (3, 12), torch.device("cpu")).double().numpy() / 12 ** .5
    for r in range(3):
        for p in (0, 1, 2, 3, 7):
            exact = q[r] @ np.linalg.matrix_power(a, p) @ q[r]
            assert (block.esd_weights[r] * block.esd_nodes[r] ** p).sum() == pytest.approx(exact, rel=1e-4)
    grid, dens = block.density(points=4001)
    assert np.trapezoid(dens, grid) == pytest.approx(1.0, abs=1e-3)
    assert (dens >= 0).all()


def test_density_mean_estimates_the_trace():
    """d x the ESD mean is a Hutchinson estimate: over many runs it lands within 3 standard errors of tr(A)."""
    model, x, y, a = _quadratic()
    runs = 200
    spec = CurvatureSpec(n_data=None, top_k=1, min_steps=3, max_steps=3, probes=2, esd_runs=runs, whole_model=False)
    block = model_curvature(model, x, y, spec, loss=HalfSquaredError()).layers["weight"]
    samples = 12 * (block.esd_weights * block.esd_nodes).sum(1)
    se = samples.std(ddof=1) / np.sqrt(runs)
    assert abs(samples.mean() - np.trace(a)) < 3 * se


def _tiny_mlp() -> tuple[nn.Module, torch.Tensor, torch.Tensor]:
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(6, 16), nn.BatchNorm1d(16), nn.Tanh(), nn.Linear(16, 4))
    with torch.no_grad():  # non-trivial running statistics, and the model left in train mode
        model[1].running_mean.uniform_(-0.5, 0.5)
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(0.5, 1.5)
    model.train()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(64, 6, generator=g)
    y = torch.randint(0, 4, (64,), generator=g)
    return model, x, y


def _exact_hessian(model: nn.Module, x: torch.Tensor, y: torch.Tensor, names: list[str]) -> np.ndarray:
    """The Hessian of the eval-mode mean cross-entropy over the flattened parameters `names` (float64)."""
    from torch.func import functional_call

    net = _eval_double(model)
    params = {n: p.detach().double() for n, p in net.named_parameters()}
    buffers = {n: b.double() for n, b in net.named_buffers()}
    shapes = [params[n].shape for n in names]
    sizes = [params[n].numel() for n in names]

    def loss(flat: torch.Tensor) -> torch.Tensor:
        parts = dict(zip(names, (v.reshape(s) for v, s in zip(flat.split(sizes), shapes, strict=True)), strict=True))
        out = functional_call(net, ({**params, **parts}, buffers), (x.double(),))
        return torch.nn.functional.cross_entropy(out, y)

    flat = torch.cat([params[n].reshape(-1) for n in names])
    return torch.autograd.functional.hessian(loss, flat).numpy()


def _eval_double(model: nn.Module) -> nn.Module:
    import copy

    return copy.deepcopy(model).double().eval()


@pytest.mark.parametrize("name", ["0.weight", "3.weight", WHOLE])
def test_tiny_mlp_blocks_match_autograd_hessian(name):
    model, x, y = _tiny_mlp()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = CurvatureSpec(n_data=None, top_k=3, tol=1e-6, min_steps=10, max_steps=40, probes=16, whole_model=True)
    c = model_curvature(model, x, y, spec)
    names = [n for n, _ in model.named_parameters()] if name == WHOLE else [name]
    h = _exact_hessian(model, x, y, names)
    exact = np.sort(np.linalg.eigvalsh(h))[::-1]
    block = c.whole if name == WHOLE else c.layers[name]
    assert block.size == len(h) and block.converged
    assert block.steps < len(h)  # a partial Krylov space: the probes carry part of the trace
    np.testing.assert_allclose(block.eigenvalues, exact[:3], rtol=1e-4)
    assert block.trace_se > 0
    assert abs(block.trace - np.trace(h)) <= 3 * block.trace_se
    # BatchNorm ran in eval mode on a private copy: the caller's model, mode and statistics are untouched
    assert model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_layers_default_to_sal_layers_and_unknown_names_raise():
    model, x, y = _tiny_mlp()
    spec = CurvatureSpec(n_data=None, min_steps=2, max_steps=4, top_k=1, probes=2, whole_model=False)
    c = model_curvature(model, x, y, spec)
    assert list(c.layers) == ["0.weight", "3.weight"] and c.whole is None
    with pytest.raises(ShapeError, match="no parameter"):
        model_curvature(model, x, y, spec, layers=["nope.weight"])


def test_batched_and_looped_products_agree():
    model, x, y = _tiny_mlp()
    g = torch.Generator().manual_seed(0)
    v = torch.randn(5, 96, generator=g)
    batched = HessianBlocks(model, x, y, batched=True)
    looped = HessianBlocks(model, x, y, batched=False)
    a, b = batched.hvp(["0.weight"], v), looped.hvp(["0.weight"], v)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-7)
    assert batched.batched and not batched.unbatched and not looped.batched  # the vmap path really ran
    names = list(looped.params)
    w = torch.randn(3, looped.size(names), generator=g)
    torch.testing.assert_close(batched.hvp(names, w), looped.hvp(names, w), rtol=1e-5, atol=1e-7)


def test_same_spec_same_numbers_and_subset():
    model, x, y = _tiny_mlp()
    spec = CurvatureSpec(n_data=40, min_steps=5, max_steps=10, top_k=2, probes=4)
    a, b = model_curvature(model, x, y, spec), model_curvature(model, x, y, spec)
    for name in a.layers:
        np.testing.assert_array_equal(a.layers[name].eigenvalues, b.layers[name].eigenvalues)
        assert a.layers[name].trace == b.layers[name].trace
    assert a.info["images"] == 40
    idx = curvature_subset(64, spec)
    assert len(idx) == 40 and torch.equal(idx, curvature_subset(64, spec)) and bool((idx.diff() > 0).all())
    assert curvature_subset(30, spec) is None


def test_trace_over_checkpoints_and_store_round_trip():
    model, x, y = _tiny_mlp()
    states = []
    for i in range(4):
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1.0 + 0.1 * i)
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    spec = CurvatureSpec(n_data=None, min_steps=3, max_steps=6, top_k=2, probes=3, every=2)
    assert measured_epochs([0, 1, 2, 3], spec) == [2, 3]
    trace = curvature_trace(model, states, [0, 1, 2, 3], x, y, spec)
    assert list(trace.epochs) == [2, 3] and trace.lambda_max.shape == (2, 2) and trace.whole().shape == (2,)
    meta, arrays = trace.to_store()
    again = CurvatureTrace.from_store(json.loads(json.dumps(meta)), arrays)
    np.testing.assert_array_equal(again.lambda_max, trace.lambda_max)
    np.testing.assert_array_equal(again.trace_se, trace.trace_se)
    np.testing.assert_array_equal(again.states[1].layers["3.weight"].esd_weights,
                                  trace.states[1].layers["3.weight"].esd_weights)
    assert again.spec == spec and isinstance(again.states[0], Curvature)


@pytest.mark.parametrize(("field", "value", "match"), [
    ("probes", 1, "probes"), ("tol", 0.0, "tol"), ("split", "val", "split"), ("n_data", 0, "n_data"),
    ("max_steps", 2, "max_steps"), ("top_k", 2.5, "integer"), ("whole_model", "yes", "whole_model"),
])
def test_spec_validation_names_the_field(field, value, match):
    with pytest.raises(SpecError, match=match):
        CurvatureSpec(**{field: value, **({"min_steps": 5} if field == "max_steps" else {})})


def test_layer_rank_agreement():
    a = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0], [5.0, 5.0, 5.0]])
    b = np.array([[10.0, 20.0, 30.0], [3.0, 2.0, 1.0], [1.0, 2.0, 3.0]])
    rho = layer_rank_agreement(a, b)
    assert rho[0] == pytest.approx(1.0) and rho[1] == pytest.approx(-1.0) and np.isnan(rho[2])
    with pytest.raises(ShapeError):
        layer_rank_agreement(a, b[:2])


def test_layer_rank_agreement_is_scipys_spearman_with_ties():
    """The NumPy ranks (ties averaged) and correlation agree with `scipy.stats.spearmanr` on tied, random rows."""
    from scipy.stats import rankdata, spearmanr

    rng = np.random.default_rng(0)
    a = rng.integers(0, 4, size=(40, 9)).astype(float)  # 9 layers, 4 distinct values: ties in every row
    b = rng.normal(size=(40, 9))
    b[::3, :3] = b[::3, :1]  # and ties in b
    rho = layer_rank_agreement(a, b)
    for x, y, r in zip(a, b, rho, strict=True):
        np.testing.assert_array_equal(average_ranks(x), rankdata(x))
        if np.ptp(x) == 0:
            assert np.isnan(r)
        else:
            assert r == pytest.approx(spearmanr(x, y).statistic, abs=1e-12)
    assert np.isfinite(rho).sum() >= 35


def test_whole_model_trace_is_the_sum_of_its_blocks():
    """tr(H) = sum of the traces of the diagonal blocks of any partition (here: every parameter tensor)."""
    model, x, y = _tiny_mlp()
    names = [n for n, _ in model.named_parameters()]
    spec = CurvatureSpec(n_data=None, min_steps=12, max_steps=12, top_k=1, probes=32, whole_model=True)
    c = model_curvature(model, x, y, spec, layers=names)
    total = sum(c.layers[n].trace for n in names)
    se = np.sqrt(sum(c.layers[n].trace_se ** 2 for n in names) + c.whole.trace_se ** 2)
    assert abs(c.whole.trace - total) <= 3 * se
    assert c.whole.lambda_max >= max(c.layers[n].lambda_max for n in names) - 1e-6  # Cauchy interlacing


def test_vmap_failure_falls_back_to_the_loop_for_good(monkeypatch):
    """A backward without a vmap rule (e.g. the digits cnn's first convolutions on CPU) raises inside vmap: the
    products are then computed one vector at a time, with the same numbers, and vmap is not tried again."""
    model, x, y = _tiny_mlp()
    v = torch.randn(4, 96, generator=torch.Generator().manual_seed(0))
    expected = HessianBlocks(model, x, y, batched=False).hvp(["0.weight"], v)
    blocks = HessianBlocks(model, x, y, batched=True)
    real_grad, calls = torch.autograd.grad, []

    def grad(*args, is_grads_batched=False, **kwargs):
        calls.append(is_grads_batched)
        if is_grads_batched:
            raise RuntimeError("NYI: no batching rule")
        return real_grad(*args, **kwargs)

    monkeypatch.setattr(torch.autograd, "grad", grad)
    torch.testing.assert_close(blocks.hvp(["0.weight"], v), expected, rtol=1e-6, atol=1e-8)
    assert blocks.unbatched == {("0.weight",)} and calls[0] and not any(calls[1:])
    blocks.hvp(["0.weight"], v)
    assert calls.count(True) == 1


def test_top_eigenvalues_are_the_largest_not_the_largest_in_magnitude():
    """An indefinite operator (a Hessian away from a minimum): lambda_max is the largest eigenvalue, 3, even though
    -5 is larger in magnitude; the top-k are sorted from the largest down."""
    from landscape.curvature import block_curvature

    h = torch.tensor([-5.0, 3.0, 2.0, 1.0, 0.5, -1.0])
    spec = CurvatureSpec(n_data=None, top_k=2, tol=1e-8, min_steps=6, max_steps=6, probes=2, whole_model=False)
    block = block_curvature(lambda v: v * h, 6, spec, torch.Generator().manual_seed(0))
    np.testing.assert_allclose(block.eigenvalues, [3.0, 2.0], rtol=1e-5)
    assert block.lambda_max == pytest.approx(3.0, rel=1e-5)


def test_trace_is_the_krylov_part_plus_the_probe_mean_with_its_standard_error():
    """A partial Krylov space: trace = tr(Q^T H Q) + mean of the probes z^T H z, trace_se = their std (ddof 1) /
    sqrt(probes), read off the probe products the operator was asked for (the last call)."""
    from landscape.curvature import block_curvature

    d = 40
    h = torch.linspace(0.1, 4.0, d)
    calls = []

    def matvec(v):
        calls.append((v.clone(), v * h))
        return v * h

    spec = CurvatureSpec(n_data=None, top_k=1, tol=1e-12, min_steps=3, max_steps=3, probes=8, whole_model=False)
    block = block_curvature(matvec, d, spec, torch.Generator().manual_seed(1))
    z, hz = calls[-1]
    assert z.shape == (8, d)
    samples = (z * hz).sum(1).double().numpy()
    assert block.trace_se == pytest.approx(samples.std(ddof=1) / np.sqrt(8), rel=1e-6)
    assert block.trace == pytest.approx(block.trace_krylov + samples.mean(), rel=1e-6)
    assert abs(block.trace - float(h.sum())) <= 4 * block.trace_se


def test_converged_means_every_top_eigenvalue_met_the_tolerance():
    """`converged` says all top-k Ritz values have residual <= tol |theta|: a well separated top eigenvalue that
    converges in a few steps does not stop the run while the second, inside a dense cluster, is still far off."""
    from landscape.curvature import block_curvature

    h = torch.cat([torch.tensor([10.0]), torch.linspace(0.0, 1.0, 299)])
    spec = CurvatureSpec(n_data=None, top_k=2, tol=1e-4, min_steps=2, max_steps=200, probes=2, whole_model=False)
    block = block_curvature(lambda v: v * h, 300, spec, torch.Generator().manual_seed(0))
    within = bool(np.all(block.residuals <= spec.tol * np.abs(block.eigenvalues)))
    assert block.converged == within
    assert block.eigenvalues[0] == pytest.approx(10.0, rel=1e-5)
    if block.converged:
        assert block.eigenvalues[1] == pytest.approx(1.0, abs=1e-3)


def test_the_subset_pairs_each_image_with_its_own_label():
    """With n_data below the split, the Hessian is the one of the mean loss over x[idx] with labels y[idx]
    (`curvature_subset`): the reported loss and lambda_max equal a direct computation on that subset."""
    model, x, y = _tiny_mlp()
    spec = CurvatureSpec(n_data=40, top_k=1, tol=1e-6, min_steps=10, max_steps=40, probes=2, whole_model=False)
    idx = curvature_subset(len(y), spec)
    c = model_curvature(model, x, y, spec, layers=["3.weight"])
    with torch.no_grad():
        direct = float(torch.nn.functional.cross_entropy(_eval_double(model)(x[idx].double()), y[idx]))
    assert c.info["images"] == 40 and c.info["loss"] == pytest.approx(direct, rel=1e-5)
    exact = np.linalg.eigvalsh(_exact_hessian(model, x[idx], y[idx], ["3.weight"])).max()
    assert c.layers["3.weight"].lambda_max == pytest.approx(exact, rel=1e-4)


def test_a_trace_measures_each_epoch_on_that_epochs_checkpoint():
    """Checkpoints of epochs 0, 1, 2, 3 measured every 2nd epoch: epoch 2 is the third checkpoint and epoch 3 the
    fourth (not the first two), each against the autograd Hessian of that checkpoint."""
    model, x, y = _tiny_mlp()
    states = []
    for scale in (0.5, 1.0, 1.5, 2.0):
        net = _eval_double(model).float()
        with torch.no_grad():
            for p in net.parameters():
                p.mul_(scale)
        states.append({k: v.clone() for k, v in net.state_dict().items()})
    spec = CurvatureSpec(n_data=None, top_k=1, tol=1e-6, min_steps=10, max_steps=40, probes=2, whole_model=False,
                         every=2)
    trace = curvature_trace(model, states, [0, 1, 2, 3], x, y, spec, layers=["3.weight"])
    assert list(trace.epochs) == [2, 3]
    for row, state in zip(trace.lambda_max, states[2:], strict=True):
        net = copy.deepcopy(model)
        net.load_state_dict(state)
        exact = np.linalg.eigvalsh(_exact_hessian(net, x, y, ["3.weight"])).max()
        assert row[0] == pytest.approx(exact, rel=1e-4)


def test_sal_agreement_pairs_layers_and_epochs_by_name():
    """SAL over layers a..e at epochs 1, 2 against curvature of e, b, d (that order) at epoch 2 only: the rank
    correlation is taken over b, d, e of epoch 2, matched by name (scipy's spearmanr on those columns)."""
    from scipy.stats import spearmanr

    from landscape.config import SALSpec
    from landscape.curvature import BlockCurvature, sal_agreement
    from landscape.sal import SALTrace

    def block(lmax: float) -> BlockCurvature:
        return BlockCurvature(size=1, eigenvalues=np.array([lmax]), residuals=np.zeros(1), trace=lmax, trace_se=0.0,
                              trace_krylov=lmax, esd_nodes=np.array([[lmax]]), esd_weights=np.ones((1, 1)), steps=1,
                              converged=True, hvps=1, seconds=0.0)

    layers = ("a", "b", "c", "d", "e")
    sal = np.array([[0.9, 0.1, 0.8, 0.7, 0.2], [0.1, 0.5, 0.2, 0.3, 0.9]])
    zeros = np.zeros_like(sal)
    trace = SALTrace(layers, np.array([1, 2]), zeros, zeros, sal, zeros, zeros, zeros, zeros, zeros, np.zeros(2),
                     SALSpec())
    curv = CurvatureTrace(np.array([2]), [Curvature({"e": block(3.0), "b": block(2.0), "d": block(4.0)})])
    epochs, rho = sal_agreement(trace, curv)
    assert epochs.tolist() == [2]
    expected = spearmanr([0.5, 0.3, 0.9], [2.0, 4.0, 3.0]).statistic  # b, d, e
    assert rho[0] == pytest.approx(expected) and expected == pytest.approx(-0.5)
