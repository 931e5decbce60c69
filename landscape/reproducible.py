"""Reproducible mode: pin the CPU kernels' instruction set, so a spec and seed give the same bits on other CPUs.

On the CPU, torch picks its kernels at run time by instruction set: ATen's vectorised kernels by its CPU
capability (AVX-512, AVX2, ...), oneDNN's convolutions by the CPU's ISA, MKL's GEMMs by its code branch.
Kernels of different widths sum in different orders, so their float rounding differs, and thousands of SGD
steps turn that into different weights, SAL and UD (measured: `bench/isa_bits.py`; README, "Reproducible where,
exactly").
With `UE_LANDSCAPE_REPRODUCIBLE=1` (or `python -m landscape --reproducible ...`) the engine pins all three to
AVX2 (x86-64-v3), the level most x86 CPUs of the last decade offer, before torch runs its first kernel:

    ATEN_CPU_CAPABILITY=avx2   ONEDNN_MAX_CPU_ISA=AVX2   MKL_CBWR=AVX2

(training already runs on `landscape.device.CPU_THREADS` threads, which the reduction order also depends on).
The variables are read once, at each library's first kernel, so they must be set before any tensor work;
`landscape` sets them on import when asked, and `landscape.device.reproducible_active()` checks afterwards that
ATen and oneDNN really run AVX2 (`landscape.device.enable_reproducible()` turns the mode on from inside a
process). What it does and does not make equal is stated, with measurements, in the README.

The instruction set is recorded in every stored result (`landscape.device.numeric_environment`) and counted by
`python -m landscape store`, but it is not part of the cache keys. A key names the question (specs and data);
keying by ISA would make the shipped demo and any shared store miss on every other CPU class and compute
everything again, while one key with one answer keeps the app, the CLI and a benchmark grid consistent with each
other on one store. Mixing is visible instead of silent, and a store written in reproducible mode does not mix.

This module imports nothing heavy (it runs inside `import landscape`, before torch is loaded).
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import warnings
from pathlib import Path

ENV_VAR = "UE_LANDSCAPE_REPRODUCIBLE"
PINS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}
_NEEDED_FLAGS = {"avx2", "fma"}  # ATen's AVX2 kernels use FMA too; without them the pin would crash (SIGILL)


def requested() -> bool:
    """True if `UE_LANDSCAPE_REPRODUCIBLE` asks for the mode ("1", "true", "yes", "on")."""
    return os.environ.get(ENV_VAR, "").strip().lower() in ("1", "true", "yes", "on")


def cpu_flags() -> set[str]:
    """The CPU's feature flags from /proc/cpuinfo (empty where that file does not exist)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return set(line.split(":", 1)[1].split())
    return set()


def unsupported_reason() -> str | None:
    """Why the pins cannot be applied on this machine, or None if they can."""
    machine = platform.machine().lower()
    if machine not in ("x86_64", "amd64"):
        return f"it pins x86-64 kernels and this is a {platform.machine() or 'non-x86'} machine"
    flags = cpu_flags()
    if not flags:
        return "the CPU's features cannot be read here (no /proc/cpuinfo), so AVX2 cannot be checked"
    if not flags >= _NEEDED_FLAGS:
        return "the CPU lacks AVX2/FMA (x86-64-v3)"
    return None


def pinned() -> bool:
    """True if the mode is requested and its pins are set in the environment.

    Whether the kernels obey them is `landscape.device.reproducible_active`, which needs torch.
    """
    return requested() and all(os.environ.get(k) == v for k, v in PINS.items())


def apply() -> bool:
    """Set `PINS` in the environment if the mode is requested and possible; True if set.

    Called by `import landscape`. If the mode is requested but cannot be applied, warns and sets nothing.
    """
    if not requested():
        return False
    reason = unsupported_reason()
    if reason is not None:
        warnings.warn(f"{ENV_VAR} is set but reproducible mode is not available: {reason}; results are computed "
                      f"with this machine's own kernels (recorded in every stored result)", RuntimeWarning,
                      stacklevel=2)
        return False
    os.environ.update(PINS)
    if "torch" in sys.modules:
        warnings.warn(f"{ENV_VAR}: torch was imported before landscape; the pins take effect only if torch has not "
                      f"run a CPU kernel yet (every stored result records whether they did)", RuntimeWarning,
                      stacklevel=2)
    return True
