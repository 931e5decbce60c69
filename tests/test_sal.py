"""SAL (landscape.sal): oracles, the ball projection, engine agreement, no mutation, the trainer callback."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landscape.config import SALSpec, TrainSpec
from landscape.errors import SpecError
from landscape.models import build_model, weight_layers
from landscape.sal import SALTrace, SALTracker, eval_subset, model_sal, project_to_ball
from landscape.train import train

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors; see conftest.py

# ---------------------------------------------------------------------------------------------------------
# The relative ball


def test_projection_inside_and_on_the_boundary_is_identity():
    g = torch.Generator().manual_seed(0)
    delta = torch.randn(16, 8, generator=g, dtype=torch.float64)
    radius = float(delta.norm())  # exactly on the boundary
    torch.testing.assert_close(project_to_ball(delta, radius), delta, rtol=0, atol=0)
    torch.testing.assert_close(project_to_ball(delta, radius * 2), delta, rtol=0, atol=0)


def test_projection_outside_lands_on_the_boundary_in_the_same_direction():
    g = torch.Generator().manual_seed(1)
    delta = torch.randn(16, 8, generator=g, dtype=torch.float64)
    radius = float(delta.norm()) * (1 - 1e-9)  # just outside
    out = project_to_ball(delta, radius)
    assert float(out.norm()) == pytest.approx(radius, rel=1e-12)
    torch.testing.assert_close(out / out.norm(), delta / delta.norm(), rtol=1e-12, atol=1e-12)
    far = project_to_ball(delta * 100, radius)
    assert float(far.norm()) == pytest.approx(radius, rel=1e-12)


def test_projection_uses_the_whole_tensor_frobenius_norm_not_rows():
    delta = torch.ones(64, 128)  # Frobenius norm 8 * sqrt(128); a row-wise projection would give norm 8 * r
    out = project_to_ball(delta, 1.0)
    assert float(out.norm()) == pytest.approx(1.0, rel=1e-6)


def test_stacked_projection_treats_each_copy_on_its_own():
    delta = torch.stack([torch.full((3, 3), 0.01), torch.full((3, 3), 10.0)])  # inside, outside
    out = project_to_ball(delta, 1.0, stacked=True)
    torch.testing.assert_close(out[0], delta[0])
    assert float(out[1].norm()) == pytest.approx(1.0, rel=1e-6)


# ---------------------------------------------------------------------------------------------------------
# Oracle: a loss linear in the layer's weights


class LinearObjective:
    """loss_n = sum_k outputs[n, k]: linear in the weights of a bias-free linear layer."""

    def sample_loss(self, outputs, targets):
        return outputs.sum(1)

    def sample_score(self, outputs, targets):
        return None


def _linear_case(sequential: bool):
    torch.manual_seed(0)
    layer = nn.Linear(5, 3, bias=False).double()
    model = nn.Sequential(nn.Flatten(), layer) if sequential else layer
    row = torch.randn(1, 5, dtype=torch.float64)
    x = row.repeat(40, 1)  # identical rows: every batch has the full-batch gradient, as the oracle needs
    y = torch.zeros(40, dtype=torch.long)
    return model, layer, x, y, row


@pytest.mark.parametrize("engine", ["reference", "batched"])
@pytest.mark.parametrize("sequential", [True, False])
def test_linear_loss_has_sal_eps_norm_theta_norm_grad(engine, sequential):
    model, layer, x, y, row = _linear_case(sequential)
    eps = 0.05
    spec = SALSpec(eps=eps, rounds=3, lr=1.0, batch_size=8, engine=engine, baseline="fresh", eval_size=None)
    (out,) = model_sal(model, x, y, spec, loss=LinearObjective())
    grad = torch.ones(3, 1, dtype=torch.float64) @ row  # dL/dW = 1 x^T
    expected = eps * float(layer.weight.detach().norm()) * float(grad.norm())
    assert out.baseline == pytest.approx(float(layer(row).detach().sum()), rel=1e-12)
    assert out.s_max == pytest.approx(expected, rel=1e-9)
    assert out.s_min == pytest.approx(expected, rel=1e-9)
    assert out.sal == pytest.approx(expected, rel=1e-9)
    assert np.isnan(out.acc_variant)  # no score defined for this objective


# ---------------------------------------------------------------------------------------------------------
# Engines, invariants


@pytest.fixture
def trained(tiny_splits):
    model = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
    result = train(model, tiny_splits.train, tiny_splits.test, TrainSpec(epochs=3, batch_size=16, lr=0.05))
    h = result.history
    return model, tiny_splits.train, (float(h["train_loss"][-1]), float(h["train_acc"][-1]))


def test_batched_engine_matches_the_reference_engine_on_full_batches(trained):
    # One batch = the whole set: no dependence on the shuffle, so the two engines follow the same path.
    model, data, _ = trained
    common = dict(rounds=3, lr=0.5, batch_size=len(data), baseline="fresh", eval_size=None, augment=False)
    ref = model_sal(model, data.x, data.y, SALSpec(engine="reference", **common))
    fast = model_sal(model, data.x, data.y, SALSpec(engine="batched", **common))
    for a, b in zip(ref, fast, strict=True):
        for name in ("s_min", "s_max", "sal", "baseline", "acc_variant"):
            assert getattr(b, name) == pytest.approx(getattr(a, name), rel=1e-4, abs=1e-6), name


class TinyNet(nn.Module):
    """Not an nn.Sequential, with BatchNorm: the batched engine takes its vmap path over the whole model."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4 * 8 * 8, 4)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).flatten(1))


def test_batched_engine_matches_the_reference_on_a_non_sequential_model(tiny_splits):
    torch.manual_seed(0)
    model = TinyNet()
    data = tiny_splits.train
    with torch.no_grad():  # non-trivial running statistics
        model.bn.running_mean.uniform_(-0.1, 0.1)
        model.bn.running_var.uniform_(0.5, 1.5)
    common = dict(rounds=2, lr=0.5, batch_size=len(data), baseline="fresh", eval_size=None)
    ref = model_sal(model, data.x, data.y, SALSpec(engine="reference", **common))
    fast = model_sal(model, data.x, data.y, SALSpec(engine="batched", **common))
    assert len(ref) == 2  # conv and fc weights; BatchNorm is not a SAL layer
    for a, b in zip(ref, fast, strict=True):
        assert b.sal == pytest.approx(a.sal, rel=1e-4, abs=1e-6)
        assert b.s_max == pytest.approx(a.s_max, rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_sal_never_mutates_the_model_and_restores_its_mode(trained, engine):
    model, data, running = trained
    model.train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {k: None if p.grad is None else p.grad.clone() for k, p in model.named_parameters()}
    out = model_sal(model, data.x, data.y, SALSpec(engine=engine, rounds=2), train_spec=TrainSpec(batch_size=16),
                    running=running)
    assert model.training
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    for k, p in model.named_parameters():  # the trainer's last gradients are left as they were
        assert (p.grad is None) == (grads[k] is None)
        if p.grad is not None:
            torch.testing.assert_close(p.grad, grads[k], rtol=0, atol=0)
    assert len(out) == len(weight_layers(model))
    for layer in out:
        assert layer.s_min >= 0 and layer.s_max >= 0  # best values start from L_0
        assert layer.sal == (layer.s_max if abs(layer.s_max) > abs(layer.s_min) else layer.s_min)


def test_eval_mode_is_used_during_sal():
    seen = []

    class Probe(nn.Module):
        def forward(self, x):
            seen.append(self.training)
            return x

    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4), Probe())
    x, y = torch.rand(32, 1, 8, 8), torch.arange(32) % 4
    model.train()
    for engine in ("reference", "batched"):
        model_sal(model, x, y, SALSpec(engine=engine, rounds=1, batch_size=16, baseline="fresh"))
    assert seen and not any(seen)
    assert model.training


def test_sal_is_deterministic_under_its_seed(trained):
    model, data, running = trained
    spec = SALSpec(rounds=2, batch_size=16)
    a = model_sal(model, data.x, data.y, spec, running=running, epoch=3)
    b = model_sal(model, data.x, data.y, spec, running=running, epoch=3)
    assert [r.sal for r in a] == [r.sal for r in b]


def test_running_baseline_needs_running_values(trained):
    model, data, _ = trained
    with pytest.raises(ValueError, match="running"):
        model_sal(model, data.x, data.y, SALSpec(baseline="running"))


def test_running_baseline_is_used_as_given(trained):
    model, data, running = trained
    out = model_sal(model, data.x, data.y, SALSpec(rounds=1, batch_size=16), running=(5.0, 0.25))
    assert all(r.baseline == 5.0 and r.acc_baseline == 0.25 for r in out)
    # far above any reachable loss: L_max never beats L_0, so SAL = S_min = L_0 - L_min
    assert all(r.s_max == 0 and r.sal == r.s_min > 0 for r in out)


def test_eval_subset_is_fixed_and_bounded():
    spec = SALSpec(eval_size=10, seed=3)
    a, b = eval_subset(100, spec), eval_subset(100, spec)
    assert torch.equal(a, b) and len(a) == 10 and len(set(a.tolist())) == 10
    assert eval_subset(5, spec) is None  # smaller than the subset: all of it


# ---------------------------------------------------------------------------------------------------------
# Trainer callback and storage


def test_tracker_records_every_epoch_and_round_trips(tiny_splits):
    model = build_model("cnn", tiny_splits.image_shape, tiny_splits.num_classes, seed=0)
    tracker = SALTracker(SALSpec(rounds=1, every=2))
    train(model, tiny_splits.train, tiny_splits.test, TrainSpec(epochs=3, batch_size=16), callbacks=[tracker])
    trace = tracker.trace()
    assert list(trace.epochs) == [2, 3]  # every 2nd epoch and always the last
    assert trace.sal.shape == (2, 6) and trace.layers == tuple(weight_layers(model))
    assert np.isfinite(trace.sal).all() and (trace.seconds > 0).all()
    back = SALTrace.from_dict(trace.to_dict())
    for name in ("sal", "s_min", "s_max", "baseline", "acc_variant", "epochs"):
        np.testing.assert_array_equal(getattr(back, name), getattr(trace, name))
    assert back.spec == trace.spec and back.layers == trace.layers


# ---------------------------------------------------------------------------------------------------------
# Spec


def test_presets_and_validation():
    paper = SALSpec.preset("paper")
    assert (paper.rounds, paper.lr, paper.eps, paper.engine, paper.baseline) == (10, 0.1, 0.05, "reference", "running")
    assert paper.eval_size is None and paper.batch_size is None and paper.augment
    assert SALSpec.preset("fast") == SALSpec() and SALSpec().preset_name == "fast" and paper.preset_name == "paper"
    assert SALSpec(rounds=7).preset_name == "custom"
    for bad in (dict(eps=0), dict(rounds=0), dict(engine="magic"), dict(baseline="x"), dict(eval_size=0)):
        with pytest.raises(SpecError):
            SALSpec(**bad)
    with pytest.raises(SpecError, match="paper"):
        SALSpec.preset("slow")


# ---------------------------------------------------------------------------------------------------------
# The batched engine's layouts (landscape.copies): the split/fold gives the numbers of one copy at a time


@pytest.mark.parametrize("kind", ["cnn", "residual"])
def test_batched_engine_layouts_give_the_same_sal(kind, tiny_splits):
    from test_copies import Residual

    from landscape import sal as S
    from landscape.copies import Copies

    torch.manual_seed(0)
    model = (build_model("cnn", tiny_splits.image_shape, 4, seed=0) if kind == "cnn" else Residual()).double().eval()
    data = tiny_splits.train
    x, y = data.x.double(), data.y
    spec = SALSpec(rounds=2, lr=0.5, batch_size=16, baseline="fresh", eval_size=None)
    params = dict(model.named_parameters())
    for i, name in enumerate(weight_layers(model)):
        got = {}
        for backend in ("auto", "loop"):
            copies = Copies(model, [name], backend=backend)
            gen = torch.Generator().manual_seed(i)
            got[backend] = S._batched_layer(copies, name, params[name].detach(), copies.prefix(x), y, spec, 16, None,
                                            gen)
        assert Copies(model, [name]).layout == "fold"
        for field_name in ("s_min", "s_max", "sal", "baseline", "acc_variant"):
            assert getattr(got["auto"], field_name) == pytest.approx(getattr(got["loop"], field_name), rel=1e-9,
                                                                     abs=1e-12), (name, field_name)
        assert got["auto"].sal != 0


# ---------------------------------------------------------------------------------------------------------
# Per-channel SAL (issue #13, "inside a layer")


@pytest.mark.parametrize("per_pass", [1, 2, 32])
def test_channel_sal_of_a_linear_loss_is_eps_norm_theta_c_norm_grad_c(per_pass):
    from landscape.sal import channel_sal

    torch.manual_seed(0)
    layer = nn.Linear(5, 3, bias=False).double()
    with torch.no_grad():
        layer.weight.mul_(torch.tensor([[0.2], [1.0], [3.0]], dtype=torch.float64))  # channels of unequal norm
    model = nn.Sequential(nn.Flatten(), layer)
    row = torch.randn(1, 5, dtype=torch.float64)
    x, y = row.repeat(40, 1), torch.zeros(40, dtype=torch.long)  # identical rows: every batch has the full gradient
    eps = 0.05
    spec = SALSpec(eps=eps, rounds=3, lr=1.0, batch_size=8, baseline="fresh", eval_size=None)
    out = channel_sal(model, x, y, spec, "1.weight", loss=LinearObjective(), channels_per_pass=per_pass)
    assert len(out) == 3
    grad_c = float(row.norm())  # d(sum_k w_k . x)/d w_c = x for every channel c
    for c, r in enumerate(out):
        expected = eps * float(layer.weight[c].detach().norm()) * grad_c
        assert r.s_max == pytest.approx(expected, rel=1e-9), c
        assert r.s_min == pytest.approx(expected, rel=1e-9), c
        assert r.baseline == pytest.approx(float(layer(row).detach().sum()), rel=1e-12)
    # a whole-layer ball would give eps * ||theta|| * ||grad||: larger than any one channel's
    whole = eps * float(layer.weight.detach().norm()) * grad_c * np.sqrt(3)
    assert all(r.s_max < whole for r in out)


def test_channel_sal_does_not_depend_on_the_grouping_and_leaves_the_model(trained):
    from landscape.sal import channel_sal

    model, data, running = trained
    layer = weight_layers(model)[1]
    before = {k: v.clone() for k, v in model.state_dict().items()}
    spec = SALSpec(rounds=2, eval_size=48)
    one = channel_sal(model, data.x, data.y, spec, layer, running=running, channels_per_pass=1)
    many = channel_sal(model, data.x, data.y, spec, layer, running=running, channels_per_pass=5)
    assert len(one) == dict(model.named_parameters())[layer].shape[0]
    np.testing.assert_allclose([r.sal for r in one], [r.sal for r in many], rtol=1e-4, atol=1e-7)
    assert len({round(r.sal, 9) for r in one}) > 1  # channels differ
    for k, v in model.state_dict().items():
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)
    with pytest.raises(Exception, match="no weight layer 'nope'"):
        channel_sal(model, data.x, data.y, spec, "nope", running=running)


# ---------------------------------------------------------------------------------------------------------
# Oracles found by mutation testing: the loader, the evaluation mean, the accuracy variant, the fresh baseline


def test_loader_drops_the_last_partial_batch_but_keeps_a_set_smaller_than_one_batch():
    from landscape.sal import _loader

    gen = torch.Generator().manual_seed(0)
    batches = _loader(10, 4, gen, torch.device("cpu"))  # the authors' DataLoader(drop_last=True)
    assert [len(b) for b in batches] == [4, 4]
    seen = torch.cat(batches).tolist()
    assert len(set(seen)) == 8 and set(seen) <= set(range(10))
    (only,) = _loader(3, 4, gen, torch.device("cpu"))
    assert sorted(only.tolist()) == [0, 1, 2]


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_losses_are_means_over_the_images_evaluated_when_the_set_is_not_a_multiple_of_the_batch(engine):
    # 42 identical rows in batches of 8: the reference's loader visits 40 of them (drop_last), the batched engine's
    # evaluation all 42; either way the mean loss is the one row's loss.
    model, layer, _, _, row = _linear_case(True)
    x, y = row.repeat(42, 1), torch.zeros(42, dtype=torch.long)
    eps = 0.05
    spec = SALSpec(eps=eps, rounds=2, lr=1.0, batch_size=8, engine=engine, baseline="fresh", eval_size=None)
    (out,) = model_sal(model, x, y, spec, loss=LinearObjective())
    assert out.baseline == pytest.approx(float(layer(row).detach().sum()), rel=1e-12)
    expected = eps * float(layer.weight.detach().norm()) * float(row.norm()) * np.sqrt(3)
    assert out.s_max == pytest.approx(expected, rel=1e-9) and out.s_min == pytest.approx(expected, rel=1e-9)


def test_finish_gives_the_accuracy_drop_at_l_max_and_the_rise_at_l_min_in_points():
    from landscape.sal import _finish

    r = _finish(l0=1.0, a0=0.5, l_min=0.7, a_min=0.6, l_max=1.5, a_max=0.2)
    assert (r.s_max, r.s_min, r.sal) == pytest.approx((0.5, 0.3, 0.5))
    assert (r.acc_drop, r.acc_rise, r.acc_variant) == pytest.approx((30.0, 10.0, 30.0))
    r = _finish(l0=1.0, a0=0.5, l_min=0.2, a_min=0.9, l_max=1.1, a_max=0.45)
    assert (r.sal, r.acc_drop, r.acc_rise, r.acc_variant) == pytest.approx((0.8, 5.0, 40.0, 40.0))
    assert (r.baseline, r.acc_baseline) == (1.0, 0.5)


@pytest.mark.parametrize("engine", ["reference", "batched"])
def test_fresh_baseline_is_the_loss_at_theta_even_when_running_values_are_given(trained, engine):
    model, data, _ = trained
    spec = SALSpec(engine=engine, rounds=1, batch_size=len(data), baseline="fresh", eval_size=None)
    out = model_sal(model, data.x, data.y, spec, running=(5.0, 0.25))
    with torch.no_grad():
        logits = model.eval()(data.x)
    loss = float(torch.nn.functional.cross_entropy(logits, data.y))
    acc = float((logits.argmax(1) == data.y).float().mean())
    for r in out:
        assert r.baseline == pytest.approx(loss, rel=1e-5) and r.acc_baseline == pytest.approx(acc)


def test_reference_engine_does_not_augment_unless_the_spec_asks(trained):
    model, data, _ = trained
    spec = SALSpec(engine="reference", rounds=1, batch_size=16, baseline="fresh", augment=False)
    plain = model_sal(model, data.x, data.y, spec, train_spec=TrainSpec(batch_size=16, augment="none"))
    flip = model_sal(model, data.x, data.y, spec, train_spec=TrainSpec(batch_size=16, augment="crop_flip"))
    assert [r.sal for r in plain] == [r.sal for r in flip]
    augmented = model_sal(model, data.x, data.y, spec.replace(augment=True),
                          train_spec=TrainSpec(batch_size=16, augment="crop_flip"))
    assert [r.sal for r in augmented] != [r.sal for r in plain]  # the flag is what decides


def test_batched_engine_evaluates_the_subsets_images_with_their_own_labels(trained):
    """With a SAL subset smaller than the set, the fresh L_0 is the model's loss and accuracy on exactly the images
    `eval_subset` picks, each with its own label (computed directly on x[idx], y[idx])."""
    model, data, _ = trained
    spec = SALSpec(rounds=1, batch_size=8, baseline="fresh", eval_size=20)
    idx = eval_subset(len(data.y), spec)
    assert idx is not None and len(idx) == 20
    with torch.no_grad():
        logits = model.eval()(data.x[idx])
    loss = float(torch.nn.functional.cross_entropy(logits, data.y[idx]))
    acc = float((logits.argmax(1) == data.y[idx]).float().mean())
    for r in model_sal(model, data.x, data.y, spec):
        assert r.baseline == pytest.approx(loss, rel=1e-5) and r.acc_baseline == pytest.approx(acc)
