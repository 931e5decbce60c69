"""The model registry `MODELS`, `build_model(name, image_shape, num_classes, seed)` and `weight_layers`.

Every builder takes `(image_shape, num_classes, width)` and returns an `nn.Module` mapping images
(N, C, H, W) to logits (N, num_classes). Registered models have no dropout, so eval and train mode differ
only in BatchNorm. `build_model` also builds user models named ``package.module:factory``
(`landscape.models.user`).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from landscape.errors import ModelError, UnknownNameError
from landscape.registry import Registry

ModelBuilder = Callable[[tuple[int, int, int], int, int], nn.Module]
MODELS: Registry[ModelBuilder] = Registry("model")


def model_builder(name: str) -> ModelBuilder:
    """The builder of a registered model, or of a user model ``package.module:factory`` (`landscape.models.user`)."""
    from landscape.models import user

    if user.is_user_model(name):
        return lambda image_shape, num_classes, width: user.build(name, image_shape, num_classes, width)
    try:
        return MODELS.get(name)
    except UnknownNameError as err:
        raise UnknownNameError(f"{err}; or a user model package.module:factory") from None


def build_model(name: str, image_shape: tuple[int, int, int], num_classes: int, *, width: int = 1,
                seed: int = 0) -> nn.Module:
    """Build a registered model or a user model (`model_builder`) with parameters initialised from `seed`.

    The global RNG is forked, so the caller's random state is untouched and the same seed always gives
    the same initial weights.
    """
    builder = model_builder(name)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = builder(tuple(image_shape), int(num_classes), int(width))
    _check_once(name, int(width), tuple(image_shape), int(num_classes), model)
    return model


_CHECKED: set[tuple[str, int, tuple[int, ...], int]] = set()  # (name, width, image shape, classes) that fit


def _check_once(name: str, width: int, image_shape: tuple[int, ...], num_classes: int, model: nn.Module) -> None:
    """Raise `ModelError` if a registered model cannot take the images (too small for its pooling), once per shape.

    One forward pass in eval mode without gradients (`landscape.models.user.check_model`): no RNG draw and no
    BatchNorm statistic changes, so the model is exactly as built. User models are checked by their builder.
    """
    from landscape.models import user

    key = (name, width, image_shape, num_classes)
    if key in _CHECKED or user.is_user_model(name):
        return
    try:
        user.check_model(name, model, image_shape, num_classes)  # type: ignore[arg-type]
    except ModelError as err:
        c, h, w = image_shape
        raise ModelError(f"model {name!r} cannot take the data's {c}x{h}x{w} images ({err.__cause__ or err}); "
                         f"choose a model that takes any size (mlp, linear) or larger images (folder:PATH?size=N)"
                         ) from err
    _CHECKED.add(key)


def is_weight_layer(module: nn.Module) -> bool:
    """The layers SAL measures: every `nn.Conv2d` and `nn.Linear` (Ye et al., ICLR 2025, per the authors' code).

    An explicit type predicate, not a name heuristic: biases, BatchNorm and LayerNorm are excluded.
    """
    return isinstance(module, (nn.Conv2d, nn.Linear))


def weight_layers(model: nn.Module) -> list[str]:
    """Names of the weight tensors of the SAL layers, in forward-definition order (e.g. "features.0.weight")."""
    return [f"{name}.weight" if name else "weight" for name, m in model.named_modules() if is_weight_layer(m)]

