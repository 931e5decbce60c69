"""Standard JSON text of a result for people and other programs (`--json`, the app's JSON downloads).

Python's `json` writes a missing value (NaN, an undefined UD or SAL ratio) as the bare token ``NaN``, which is not
JSON: JavaScript's `JSON.parse` and other strict parsers reject the whole document. Here every non-finite float
becomes ``null`` (the text output says "n/a" for the same values), NumPy arrays and scalars become plain lists
and numbers, and anything else JSON cannot hold is written as its `str`.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np


def plain(obj: Any) -> Any:
    """`obj` with NumPy values made plain and every non-finite float replaced by None, at any depth."""
    if isinstance(obj, np.ndarray):
        return plain(obj.tolist())
    if isinstance(obj, np.generic):
        return plain(obj.item())
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    return obj


def dumps(obj: Any, *, indent: int = 2) -> str:
    """Standard JSON text of `obj` (see the module docstring); never the NaN or Infinity tokens."""
    return json.dumps(plain(obj), indent=indent, allow_nan=False, default=str)


__all__ = ["dumps", "plain"]
