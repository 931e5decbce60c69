"""glibc's malloc told to keep freed memory for reuse, so repeated large allocations stop faulting pages back in.

Training and SAL steps allocate and free the same large buffers (activations, gradients, stacked copies, im2col
workspaces) over and over. With glibc's defaults a freed buffer above its dynamic mmap threshold is munmap'ed, and a
free heap top above the trim threshold is trimmed, so the next allocation faults its pages in again: 30 steps of the
digits CNN at batch 128 fault 13,920 pages with the defaults and none with the thresholds below (a 2-core Xeon;
tests/test_malloc.py checks >= 10x fewer). Measured on the digits study (`bench/study_time.py`: `python -m landscape
run --dataset digits --model cnn --method em --epochs 30 --workers 2`, two runs on one machine): with glibc's
defaults 2.10 / 3.01 M minor page faults, 3.4 / 5.5 s of system time, 30.6 / 33.4 s wall; with the thresholds below
0.32 / 0.31 M faults, 1.5 / 2.1 s, 29.6 / 31.3 s; the same numbers bit for bit. A plain 30-epoch `train` faults 0.1
M pages either way and takes the same time.

The cost is memory held, not used: freed memory stays with the process for reuse (in each malloc arena, up to
`TRIM_THRESHOLD` above its top, and holes below it), so its resident size stays near its peak instead of shrinking
after a run. Hence it is called only by processes that train: the CLI (`landscape.cli.main`) and the worker
processes (`landscape.stages.pool`, `landscape.executors`), not the app's long-lived server; a library user calls it
if they want it. A no-op off glibc, and where the user sets either threshold themselves (`GLIBC_TUNABLES`, or
glibc's older `MALLOC_MMAP_THRESHOLD_` / `MALLOC_TRIM_THRESHOLD_`).
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

    Settings live in the process and are inherited by the processes it forks.
    """
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return False
    tunables = os.environ.get("GLIBC_TUNABLES", "")
    if any(f"glibc.malloc.{t}_threshold" in tunables or f"MALLOC_{t.upper()}_THRESHOLD_" in os.environ
           for t in ("mmap", "trim")):
        return False  # the user's own choice wins
    mallopt = ctypes.CDLL(None).mallopt  # the process's own C library
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
