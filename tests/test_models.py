"""Contract test over every registered model: shapes, finiteness, gradients, SAL layer counts."""

import pytest
import torch

from landscape.models import MODELS, build_model, weight_layers

EXPECTED_WEIGHT_LAYERS = {"linear": 1, "mlp": 3, "cnn": 6, "lenet5": 5, "resnet18": 21, "resnet18s": 21}
SHAPES = [(1, 8, 8), (3, 32, 32)]


def test_every_model_has_a_documented_layer_count():
    assert set(MODELS.names()) == set(EXPECTED_WEIGHT_LAYERS)


@pytest.mark.parametrize("name", MODELS.names())
@pytest.mark.parametrize("shape", SHAPES)
def test_model_contract(name, shape):
    model = build_model(name, shape, 7, seed=0)
    x = torch.rand(3, *shape)
    out = model(x)
    assert out.shape == (3, 7)
    assert torch.isfinite(out).all()
    torch.nn.functional.cross_entropy(out, torch.tensor([0, 1, 2])).backward()
    for pname, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        assert p.grad.abs().sum() > 0, f"{name}: parameter {pname} received a zero gradient"
    assert len(weight_layers(model)) == EXPECTED_WEIGHT_LAYERS[name]
    params = dict(model.named_parameters())
    assert all(layer in params and params[layer].ndim in (2, 4) for layer in weight_layers(model))


@pytest.mark.parametrize("name", MODELS.names())
def test_build_is_seeded_and_leaves_global_rng_alone(name):
    state = torch.random.get_rng_state()
    a = build_model(name, (1, 8, 8), 10, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b = build_model(name, (1, 8, 8), 10, seed=3)
    c = build_model(name, (1, 8, 8), 10, seed=4)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k
    assert any(not torch.equal(va, vc) for va, vc in zip(a.parameters(), c.parameters(), strict=True))


def test_resnet18s_is_resnet18_at_one_eighth_width():
    full, small = build_model("resnet18", (3, 32, 32), 10), build_model("resnet18s", (3, 32, 32), 10)
    assert weight_layers(small) == weight_layers(full)
    shapes = {k: tuple(v.shape) for k, v in full.state_dict().items()}
    for k, v in small.state_dict().items():
        expected = tuple(s if s in (3, 10) or v.ndim == 0 else s // 8 for s in shapes[k])
        if k.endswith("weight") and v.ndim == 4:  # conv kernels keep their spatial size
            expected = (*expected[:2], *shapes[k][2:])
        assert tuple(v.shape) == expected, k
