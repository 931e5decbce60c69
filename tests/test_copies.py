"""landscape.copies: each layout equals one copy at a time; the prefix runs once; only expected failures fall back."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from landscape.copies import Copies, CopiesFallback
from landscape.models import build_model, weight_layers

pytestmark = pytest.mark.usefixtures("one_thread")


class Residual(nn.Module):
    """A small residual network: a shortcut that reads the block input, BatchNorm, a projection."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(4)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False)
        self.short = nn.Conv2d(4, 6, 1, stride=2, bias=False)
        self.fc = nn.Linear(6, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        h = torch.relu(self.bn1(self.conv1(h)) + h)
        h = torch.relu(self.conv2(h) + self.short(h))
        return self.fc(h.mean((2, 3)))


class Branchy(nn.Module):
    """Data-dependent control flow: torch.fx cannot trace it."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out if x.sum() > 0 else -out


class Itemy(Branchy):
    """Calls .item() on a value that depends on the moved weights: vmap cannot batch it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.inner(x)
        return out * (1.0 + 0.0 * out.abs().max().item())


def _model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    builders = {"residual": Residual, "branchy": lambda: Branchy(Residual()), "itemy": lambda: Itemy(Residual())}
    model = builders[kind]() if kind in builders else build_model(kind, (1, 8, 8), 4, seed=0)
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)
    return model.double().eval()


def _stack(model: nn.Module, names: list[str], g: int = 3) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(2)
    params = dict(model.named_parameters())
    return {n: params[n].detach() + 0.1 * torch.randn(g, *params[n].shape, generator=gen, dtype=torch.float64)
            for n in names}


X = torch.rand(10, 1, 8, 8, generator=torch.Generator().manual_seed(3), dtype=torch.float64)


def _check(model: nn.Module, names: list[str], layout: str) -> None:
    weights = _stack(model, names)
    fast, ref = Copies(model, names), Copies(model, names, backend="loop")
    assert fast.layout == layout
    out, expected = fast.run(weights, X), ref.run(weights, X)
    assert out.shape == (3, len(X), expected.shape[-1])
    torch.testing.assert_close(out, expected, rtol=1e-10, atol=1e-12)
    # gradients with respect to the stacked weights (what SAL's SGD steps use)
    for copies in (fast, ref):
        leaves = {n: w.clone().requires_grad_(True) for n, w in weights.items()}
        copies.run(leaves, X).square().sum().backward()
        copies.grads = [leaves[n].grad for n in names]
    for a, b in zip(fast.grads, ref.grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("kind", ["cnn", "residual", "resnet18s"])
def test_one_layer_folds_and_equals_one_copy_at_a_time(kind):
    model = _model(kind)
    for name in weight_layers(model):
        _check(model, [name], "fold")


def test_layer_weight_and_bias_fold_together():
    model = _model("residual")
    _check(model, ["conv1.weight", "conv1.bias"], "fold")


def test_every_parameter_moving_uses_the_plan_or_vmap():
    cnn, res = _model("cnn"), _model("residual")
    _check(cnn, [n for n, _ in cnn.named_parameters()], "plan")
    _check(res, [n for n, _ in res.named_parameters()], "vmap")
    _check(res, ["conv2.weight", "short.weight"], "vmap")  # two layers: the split still skips the stem


def test_the_frozen_prefix_runs_once_per_data_batch():
    model = _model("residual")
    calls = {"stem": 0, "conv2": 0}
    model.stem.register_forward_hook(lambda *a: calls.__setitem__("stem", calls["stem"] + 1))
    model.conv2.register_forward_hook(lambda *a: calls.__setitem__("conv2", calls["conv2"] + 1))
    copies = Copies(model, ["conv2.weight"])
    frozen = copies.prefix(X)
    assert calls == {"stem": 1, "conv2": 0}
    for _ in range(3):
        copies(_stack(model, ["conv2.weight"]), frozen.select(torch.tensor([1, 4, 7])))
    assert calls["stem"] == 1  # the suffix never reruns the layers before the moved one
    assert not any(t.requires_grad for t in frozen.values if torch.is_tensor(t))  # a backward stops at the layer


def test_untraceable_model_runs_whole_with_a_notice_naming_it():
    model = _model("branchy")
    with pytest.warns(CopiesFallback, match="Branchy: torch.fx cannot trace it"):
        copies = Copies(model, ["inner.conv2.weight"])
    assert copies.layout == "vmap"
    weights = _stack(model, ["inner.conv2.weight"])
    reference = Copies(model, ["inner.conv2.weight"], backend="loop")
    torch.testing.assert_close(copies.run(weights, X), reference.run(weights, X))


def test_op_vmap_cannot_batch_falls_back_to_one_copy_at_a_time():
    model = _model("itemy")
    copies = Copies(model, ["inner.conv2.weight"])
    weights = _stack(model, ["inner.conv2.weight"])
    with pytest.warns(CopiesFallback, match="Itemy: vmap cannot batch it"):
        out = copies.run(weights, X)
    assert copies.layout == "loop"
    torch.testing.assert_close(out, Copies(model, ["inner.conv2.weight"], backend="loop").run(weights, X))


@pytest.mark.parametrize("names", [["conv2.weight"], ["conv2.weight", "short.weight"]])
def test_out_of_memory_and_bugs_propagate(monkeypatch, names):
    model = _model("residual")
    copies = Copies(model, names)
    weights = _stack(model, names)

    def oom(*args, **kwargs):
        raise torch.OutOfMemoryError("simulated: out of memory")

    monkeypatch.setattr(nn.Linear, "forward", oom)
    with pytest.raises(torch.OutOfMemoryError, match="simulated"):
        copies.run(weights, X)
    monkeypatch.undo()
    bad = {n: w[..., :1] for n, w in weights.items()}  # a shape bug: kernels of the wrong size
    with pytest.raises(RuntimeError) as err:
        copies.run(bad, X)
    assert not isinstance(err.value, torch.OutOfMemoryError) and copies.layout != "loop"


def test_unknown_entries_and_backends_are_named():
    model = _model("residual")
    with pytest.raises(ValueError, match="no entries \\['nope'\\]"):
        Copies(model, ["nope"])
    with pytest.raises(ValueError, match="backend='fast'"):
        Copies(model, ["fc.weight"], backend="fast")


class Pools(nn.Module):
    """Max pools (2x2, and 3x3 stride 2 padded, as ResNet's stem) and adaptive average pools to the input's own size
    and to a smaller one: the pools `landscape.copies` runs in faster exact forms."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.stem_pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.same = nn.AdaptiveAvgPool2d(2)
        self.down = nn.AdaptiveAvgPool2d((1, None))
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem_pool(self.pool(torch.relu(self.conv(x))))  # (B, 4, 8, 8) -> (B, 4, 4, 4) -> (B, 4, 2, 2)
        return self.fc(torch.flatten(self.down(self.same(h)), 1))  # (B, 4, 1, 2) -> (B, 8)


def test_the_fast_pools_give_the_same_bits_with_and_without_grad():
    """`_exact_fast_pools` replaces every pool of a traced graph; values and gradients are bit for bit the plain
    ops', ties included (integer-valued ReLU outputs tie everywhere)."""
    from torch import fx

    from landscape.copies import _adaptive_avg_pool2d, _exact_fast_pools, _max_pool2d

    torch.manual_seed(0)
    model = Pools().eval()
    plain, fast = fx.symbolic_trace(model), fx.symbolic_trace(model)
    _exact_fast_pools(fast)
    targets = [n.target for n in fast.graph.nodes if n.op == "call_function"]
    assert targets.count(_max_pool2d) == 2 and targets.count(_adaptive_avg_pool2d) == 2
    x = torch.randint(-3, 4, (16, 1, 16, 16)).float()
    with torch.no_grad():
        assert torch.equal(fast(x), plain(x))
    grads = []
    for gm in (plain, fast):
        leaf = x.clone().requires_grad_(True)
        gm(leaf).square().sum().backward()
        grads.append(leaf.grad)
    assert torch.equal(*grads)


def test_the_fold_and_the_prefix_run_the_fast_pools_and_equal_the_plain_graph_bit_for_bit(monkeypatch):
    """SAL's layout for the `cnn` (fold, with a frozen prefix): the same bits as with the pools as traced."""
    import landscape.copies as copies

    model = build_model("cnn", (1, 8, 8), 4, seed=0).eval()
    names = ["5.weight"]  # the third conv: the first max pool is in the prefix, the second in the fold's rest
    weights = {n: w.float() for n, w in _stack(model.double(), names).items()}
    model = model.float()
    x = X.float()
    fast = Copies(model, names)
    assert fast.layout == "fold"
    rest_fns = {n.target for n in fast._fold.rest.graph.nodes if n.op == "call_function"}
    prefix_fns = {n.target for n in fast.split.prefix_module.graph.nodes if n.op == "call_function"}
    assert {copies._max_pool2d, copies._adaptive_avg_pool2d} <= rest_fns and copies._max_pool2d in prefix_fns
    monkeypatch.setattr(copies, "_exact_fast_pools", lambda gm: gm.recompile())
    plain = Copies(model, names)
    with torch.no_grad():
        assert torch.equal(fast.run(weights, x), plain.run(weights, x))
