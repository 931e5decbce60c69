"""The compute device, chosen once: cuda > mps > cpu, overridable by name."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import torch

from landscape.errors import SpecError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

# Training and crafting run with this many torch threads on the CPU. oneDNN/OpenMP split their reductions by
# thread count, so the float rounding, and after thousands of SGD steps a run's weights, SAL and UD, depend on
# it: on digits, EM's UD (cnn, 30 epochs, seed 0) was 0.68 with 1 thread and 1.24 with 2. One fixed count
# makes a spec and seed give the same numbers on every machine (and in the cache, whose keys cannot see the
# count); a digits run takes seconds either way. On accelerators the count does not enter the arithmetic.
CPU_THREADS = 1

F = TypeVar("F", bound=Callable[..., Any])


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


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run with `threads` torch (and BLAS/OpenMP) threads, restoring the previous setting afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl ships with scikit-learn
        threadpool_limits = None
    try:
        with threadpool_limits(threads) if threadpool_limits else contextlib.nullcontext():
            yield
    finally:
        torch.set_num_threads(before)


def reproducible_threads(device: torch.device | str) -> contextlib.AbstractContextManager[None]:
    """`limited_threads(CPU_THREADS)` when `device` is the CPU, else nothing (see `CPU_THREADS`)."""
    return limited_threads(CPU_THREADS) if torch.device(device).type == "cpu" else contextlib.nullcontext()


def with_reproducible_threads(fn: F) -> F:
    """Decorator: run `fn` under `reproducible_threads(device)`, `device` being its keyword argument."""

    @functools.wraps(fn)
    def wrapper(*args: Any, device: torch.device | str = "cpu", **kwargs: Any) -> Any:
        with reproducible_threads(device):
            return fn(*args, device=device, **kwargs)

    return wrapper  # type: ignore[return-value]
