"""What per-channel SAL costs before it runs, relative to the layer SAL of every layer (a FLOP count, no timing).

The batched layer SAL (`landscape.sal.model_sal`) runs, for each weight layer l, 2 copies of the network from l on
(the frozen prefix is computed once); per-channel SAL of l (`landscape.sal.channel_sal`) runs 2 copies per output
channel of the same suffix. So with F(l) the forward FLOPs of one image from l's module on, per-channel SAL of l
costs about C_l * F(l) / sum_l' F(l') times the layer SAL of all layers, on the same images, rounds and epochs.
The app scales the layer SAL's measured seconds by this factor for its cost line; `bench/channel_sal_cost.py`
compares the estimate with measured times.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from landscape.errors import ShapeError
from landscape.models import weight_layers


def _flops(module: nn.Module, out: torch.Tensor) -> float:
    """Multiply-add FLOPs (2 per multiply-add) of one call of a weight layer that returned `out`.

    As `torch.utils.flop_counter` counts them (`nn.Linear`: 2 x in_features per output value; `nn.Conv2d`: 2 x
    in_channels / groups x kernel area per output value; biases not counted), without its 1-2 s first call.
    """
    if isinstance(module, nn.Conv2d):
        per_output = module.in_channels // module.groups * math.prod(module.kernel_size)
    else:
        per_output = module.in_features
    return 2.0 * out.numel() * per_output


def suffix_flops(model: nn.Module, x1: torch.Tensor) -> dict[str, float]:
    """Forward FLOPs of the images `x1` from each weight layer's module on (that module's first call and after).

    Counted on one forward in eval mode (the model's mode is restored), in the order of `weight_layers(model)`:
    the FLOPs of the weight layers (`nn.Conv2d`, `nn.Linear`, `landscape.models.is_weight_layer`), where nearly all
    of a network's FLOPs are; what runs outside them (activations, norms, a functional matmul) is not counted.
    """
    layers = weight_layers(model)
    owners = {name.rpartition(".")[0]: name for name in layers}
    first: dict[str, float] = {}
    total = [0.0]
    was_training = model.training
    model.eval()

    def mark(name: str) -> None:  # a pre-hook's return value would replace the module's input
        first.setdefault(name, total[0])

    def count(module: nn.Module, out: torch.Tensor) -> None:
        total[0] += _flops(module, out)

    hooks = []
    for name, m in model.named_modules():
        if name in owners:
            hooks.append(m.register_forward_pre_hook(lambda m, i, name=name: mark(name)))
            hooks.append(m.register_forward_hook(lambda m, i, out: count(m, out)))
    try:
        with torch.no_grad():
            model(x1)
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return {layer: total[0] - first.get(layer.rpartition(".")[0], total[0]) for layer in layers}


def channel_sal_factor(model: nn.Module, x1: torch.Tensor, layer: str) -> float:
    """Per-channel SAL of `layer` / layer SAL of every weight layer, in forward FLOPs (C_l F(l) / sum F)."""
    flops = suffix_flops(model, x1)
    if layer not in flops:
        raise ShapeError(f"model has no weight layer {layer!r}; valid: {list(flops)}")
    channels = dict(model.named_parameters())[layer].shape[0]
    return channels * flops[layer] / max(sum(flops.values()), 1.0)


__all__ = ["channel_sal_factor", "suffix_flops"]
