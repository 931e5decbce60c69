"""glibc's malloc told to keep freed memory for reuse, so CPU training stops handing pages back every step.

Each training step allocates and frees the same large buffers (activations, gradients, im2col workspaces: 0.1 to a
few MiB each). glibc's defaults return such memory to the kernel on free (buffers above its dynamic mmap threshold
are munmap'ed; a free heap top above the trim threshold is trimmed), so the next step faults every page back in.
Measured on the digits study (`python -m landscape run --dataset digits --model cnn --method em --epochs 30
--workers 2`): 2.83 M minor page faults and 6.3 s of system time out of 34 s; with the thresholds below, 0.32 M
faults, 2.1 s system time, 2.6 s less wall time, and the same numbers bit for bit (bench/results/study_time.txt).

The cost is memory held, not used: up to `TRIM_THRESHOLD` of freed heap stays mapped in the process. Called once
by the entry points that train (the CLI and the app); a library user calls it if they want it. A no-op off glibc
and when the user already tunes malloc through `GLIBC_TUNABLES`.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # allocations below this come from the heap: glibc's largest allowed on 64 bit
TRIM_THRESHOLD = 256 << 20  # a free heap top is returned to the kernel only above this


def keep_freed_memory() -> bool:
    """Fix glibc's mmap and trim thresholds (see the module docstring); True when they were set.

    Settings live in the process and are inherited by forked workers (`landscape.stages.pool`).
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    if "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", ""):
        return False  # the user's own choice wins
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
