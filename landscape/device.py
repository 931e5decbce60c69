"""The compute device, chosen once: cuda > mps > cpu, overridable by name."""

from __future__ import annotations

import torch

from landscape.errors import SpecError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Return the device for `name`; "auto" picks cuda, then mps, then cpu.

    Asking for an accelerator that is not present raises `SpecError` instead of silently using the CPU.
    """
    if name not in DEVICE_CHOICES:
        raise SpecError(f"device {name!r} is not one of {', '.join(DEVICE_CHOICES)}")
    cuda = torch.cuda.is_available()
    mps = bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    if name == "auto":
        return torch.device("cuda" if cuda else "mps" if mps else "cpu")
    if (name == "cuda" and not cuda) or (name == "mps" and not mps):
        raise SpecError(f"device {name!r} was asked for but is not available here; use 'cpu' or 'auto'")
    return torch.device(name)
