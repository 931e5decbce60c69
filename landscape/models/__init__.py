"""Models: the `MODELS` registry (one module per architecture), `build_model` and `weight_layers`.

Every builder takes `(image_shape, num_classes, width)` and returns an `nn.Module` mapping images
(N, C, H, W) to logits (N, num_classes). A member registers itself with `MODELS.register(name)` in its
own module (`landscape.models.base` holds the registry, so members never import this package).
"""

from __future__ import annotations

# Register the members (import order = listing order in the app and CLI).
from landscape.models import cnn, lenet5, linear, mlp, resnet18  # noqa: F401
from landscape.models.base import MODELS, build_model, is_weight_layer, weight_layers

__all__ = ["MODELS", "build_model", "is_weight_layer", "weight_layers"]
