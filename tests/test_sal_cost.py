"""The per-channel SAL cost factor: forward FLOPs from each weight layer on, counted on a net with known FLOPs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from landscape.errors import ShapeError
from landscape.sal_cost import channel_sal_factor, suffix_flops


def test_suffix_flops_of_linear_layers_are_two_multiply_adds_per_weight():
    net = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))  # 2*4*3 + 2*3*2 FLOPs per image
    net.train()
    x = torch.zeros(5, 4)
    assert suffix_flops(net, x) == {"0.weight": 5 * (24 + 12), "2.weight": 5 * 12}
    assert net.training  # mode restored
    assert channel_sal_factor(net, x, "0.weight") == pytest.approx(3 * 36 / 48)  # 3 channels x 36 / (36 + 12)
    assert channel_sal_factor(net, x, "2.weight") == pytest.approx(2 * 12 / 48)
    with pytest.raises(ShapeError, match="no weight layer 'nope'.*valid.*0.weight"):
        channel_sal_factor(net, x, "nope")
