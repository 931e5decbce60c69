"""`python -m landscape demo`: rebuild the shipped demo snapshot (assets/demo) from its requests; `--check` verifies it.

What the demo holds, and how to add an entry, is `landscape.demo`.
"""

from __future__ import annotations

import argparse
import time

from landscape.commands import COMMANDS, Command
from landscape.demo import DEMO_DIR, build, check
from landscape.errors import PathError
from landscape.paths import user_path, writable_folder


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default=str(DEMO_DIR), help="snapshot folder (default: assets/demo of the repository)")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or mps")
    p.add_argument("--check", action="store_true", help="only verify the snapshot: every request stored, every "
                   "entry intact, within the size budget")


def run(a: argparse.Namespace) -> int:
    out = user_path(a.out, "--out")
    if a.check:
        if not out.is_dir():
            raise PathError(f"--out {out} is {'a file' if out.exists() else 'missing'}, not a demo snapshot folder; "
                            f"build one with python -m landscape demo --out {out}")
        report = check(out)
    else:
        from landscape.commands.common import tqdm_progress
        from landscape.device import resolve_device

        writable_folder(out, "--out")  # before any work: a file there (or a read-only folder) is refused now
        started, device = time.perf_counter(), str(resolve_device(a.device))
        with tqdm_progress() as progress:
            report = build(out, device=device, progress=progress)
        print(f"built in {time.perf_counter() - started:.0f} s on {device}")
    print(report.describe())
    return 0 if report.ok else 1


COMMANDS.register("demo")(Command("rebuild (or --check) the demo snapshot the app opens with (assets/demo)",
                                  add_arguments, run))
