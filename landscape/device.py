"""The compute device, chosen once: cuda > mps > cpu, overridable by name; the numeric environment it computes in."""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import os
import platform
import re
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import torch

from landscape.errors import SpecError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")

# Training and crafting run with this many torch threads on the CPU. oneDNN/OpenMP split their reductions by
# thread count, so the float rounding, and after thousands of SGD steps a run's weights, SAL and UD, depend on
# it: on digits, EM's UD (cnn, 30 epochs, seed 0) was 0.68 with 1 thread and 1.24 with 2 (an early run whose rows
# were not kept). One fixed count makes a spec and seed give the same numbers on every machine with the same CPU
# kernels (and in the cache, whose keys cannot see the count; across instruction sets see `landscape.reproducible`);
# a digits run takes seconds either way. On accelerators the count does not enter the arithmetic.
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
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):
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


# ------------------------------------------------------------------------------------------ numeric environment
# On the CPU the float rounding of a run depends on which kernels compute it, and those are chosen at run time by
# instruction set: ATen's vectorised kernels (elementwise ops, reductions, softmax, batch norm) by its CPU
# capability, oneDNN's convolutions by the CPU's ISA, MKL's GEMMs by its code branch. Measured on an AVX-512 CPU
# (bench/isa_bits.py): capping ATen or oneDNN to AVX2 changes the weights after one epoch; 30 epochs amplify it
# into a different UD. A result therefore records what computed it.

_ISA_ENV = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
            "UE_LANDSCAPE_REPRODUCIBLE")
_probe_guard = threading.Lock()


def numeric_environment() -> dict[str, Any]:
    """What determines CPU numerics here: library versions, the kernels' instruction sets, the thread counts.

    Keys: python, torch, numpy, sklearn, mkl, onednn (versions); cpu (model name), cpu_level (the x86-64
    microarchitecture level the CPU offers: v2, v3 = AVX2, v4 = AVX-512); aten_capability (the level ATen's
    kernels dispatch to), onednn_isa (the ISA oneDNN actually runs, from its verbose log; "disabled" when torch
    does not use it), mkl_cbwr (MKL's conditional-numerical-reproducibility branch, if set); env (the variables
    that choose kernels, as set); reproducible (the pinned mode of `landscape.reproducible` is in force);
    torch_threads (now) and pinned_threads (`CPU_THREADS`, what training, crafting and SAL use on the CPU).
    Stored with every store entry and printed in benchmark headers.
    """
    return {**_static_environment(), "onednn_isa": onednn_isa(), "reproducible": reproducible_active(),
            "torch_threads": torch.get_num_threads(), "pinned_threads": CPU_THREADS}


def numeric_environment_line() -> str:
    """`numeric_environment()` in one line, for benchmark headers."""
    e = numeric_environment()
    env = ", ".join(f"{k}={v}" for k, v in e["env"].items()) or "no kernel variables set"
    return (f"torch {e['torch']}, NumPy {e['numpy']}, MKL {e['mkl']}, oneDNN {e['onednn']}; CPU {e['cpu']} "
            f"(x86-64-{e['cpu_level']}); kernels: ATen {e['aten_capability']}, oneDNN {e['onednn_isa']}"
            f"{', MKL_CBWR ' + e['mkl_cbwr'] if e['mkl_cbwr'] else ''}; {env}; reproducible mode "
            f"{'on' if e['reproducible'] else 'off'}; {e['pinned_threads']} torch thread(s) for training")


@functools.cache
def _static_environment() -> dict[str, Any]:
    # scikit-learn's version from its metadata, not by importing it (with SciPy and pandas, ~1-2 s): every store
    # entry records it, also in forked stage workers, where a fresh import can hang on an import lock that another
    # thread of the parent (a Streamlit server's) held when it forked
    config = torch.__config__.show()
    mkl = re.search(r"Math Kernel Library Version ([\w.]+)(?:-Product Build (\d+))?", config)
    onednn = re.search(r"MKL-DNN v(\S+)", config)
    mkl_version = (mkl.group(1) + (f" build {mkl.group(2)}" if mkl.group(2) else "")) if mkl else "none"
    return {
        "python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
        "sklearn": importlib.metadata.version("scikit-learn"), "mkl": mkl_version,
        "onednn": onednn.group(1) if onednn else "none", "cpu": cpu_model(), "cpu_level": cpu_level(),
        "aten_capability": torch.backends.cpu.get_cpu_capability(), "mkl_cbwr": os.environ.get("MKL_CBWR"),
        "env": {k: os.environ[k] for k in _ISA_ENV if os.environ.get(k)},
    }


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo where there is one)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def cpu_level() -> str:
    """The x86-64 microarchitecture level of the CPU (v1..v4; v3 has AVX2+FMA, v4 AVX-512), or the machine name."""
    from landscape.reproducible import cpu_flags

    flags = cpu_flags()
    if not flags or platform.machine().lower() not in ("x86_64", "amd64"):
        return platform.machine() or "unknown"
    levels = [("v4", {"avx512f", "avx512bw", "avx512cd", "avx512dq", "avx512vl"}),
              ("v3", {"avx", "avx2", "bmi1", "bmi2", "f16c", "fma", "movbe", "xsave"}),
              ("v2", {"cx16", "lahf_lm", "popcnt", "sse4_1", "sse4_2", "ssse3"})]
    return next((name for name, needed in levels if needed <= flags), "v1")


@functools.cache
def onednn_isa() -> str:
    """The instruction set oneDNN runs with in this process (its verbose log's "isa:" line), or why there is none.

    oneDNN reads its ISA cap once, at its first use; it prints the effective ISA on the first verbose-enabled
    call, so one tiny convolution is run with stdout (file descriptor 1) captured. Cached per process.
    """
    if not (torch.backends.mkldnn.is_available() and torch.backends.mkldnn.enabled):
        return "disabled"
    with _probe_guard, tempfile.TemporaryFile() as log:
        saved = os.dup(1)
        try:
            os.dup2(log.fileno(), 1)
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON), torch.no_grad():
                torch.nn.functional.conv2d(torch.zeros(2, 4, 8, 8), torch.zeros(4, 4, 3, 3), padding=1)
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        log.seek(0)
        text = log.read().decode(errors="replace")
    isa = re.search(r"info,cpu,isa:([^\n]+)", text)
    kernel = re.search(r"convolution,(jit:[\w]+|[\w:]+),", text)
    if isa:
        return isa.group(1).strip() + (f" ({kernel.group(1)} f32 convolution)" if kernel else "")
    return kernel.group(1) if kernel else "unknown"


def reproducible_active() -> bool:
    """True if reproducible mode is requested, its pins are set, and ATen and oneDNN actually run AVX2 kernels.

    (MKL reads `MKL_CBWR` at its first call and cannot be queried; it is checked as set.)
    """
    from landscape import reproducible

    if not reproducible.pinned():
        return False
    return torch.backends.cpu.get_cpu_capability() == "AVX2" and onednn_isa().startswith(("Intel AVX2", "disabled"))


def enable_reproducible() -> None:
    """Turn reproducible mode on from inside the process (the CLI's `--reproducible`) and check that it took effect.

    Raises `LandscapeError` if it cannot be applied here, or if torch ran CPU kernels before it was enabled.
    """
    from landscape import reproducible
    from landscape.errors import LandscapeError

    before = {k: os.environ.get(k) for k in (reproducible.ENV_VAR, *reproducible.PINS)}
    os.environ[reproducible.ENV_VAR] = "1"
    try:
        reason = reproducible.unsupported_reason()
        if reason is not None:
            raise LandscapeError(f"reproducible mode is not available: {reason}")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # "torch was imported first": checked right below
            reproducible.apply()
        if not reproducible_active():
            raise LandscapeError(f"reproducible mode could not take effect: torch had already run CPU kernels; set "
                                 f"{reproducible.ENV_VAR}=1 in the environment before starting Python")
    except LandscapeError:  # refused: the process is left as it was, not claiming a mode that is not in force
        for k, v in before.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        raise
