"""The digits study, serial vs concurrent, timed as whole commands in one run, and their numbers compared bit for bit.

Times, each a whole `python -m landscape ...` subprocess on a fresh store (issue #17, acceptance 2):

1. a plain 30-epoch `train` (the yardstick: the study should take <= 4x it), the median of three;
2. the study `run --dataset digits --model cnn --method em --epochs 30 --workers 1` (one stage after the other);
3. the same study with `--workers 2` (the two chains side by side, `landscape.stages.pool`).

The plain train and the concurrent study are timed twice, side by side: as shipped (glibc told to keep freed memory,
`landscape.malloc`) and with glibc's malloc defaults; each line also gives the command's system time and minor page
faults (its own and its workers').

Then the studies' numbers are compared bit for bit (workers 1 vs 2, and malloc tuned vs defaults), from their JSON
reports and from their stores through the stage layer: UD, β and every per-epoch count, flag and β_t; the training
histories (accuracies, losses) of both runs; every SAL matrix (s_min, s_max, sal, baselines, accuracy variants) of
both runs; and every stored checkpoint. Timing fields (seconds) are the only ones left out. Prints the load average
and the machine before and after.

Usage: python bench/study_time.py [--epochs 30] [--out bench/results/study_time.txt]
The machine must be otherwise idle on both cores for the concurrent time to mean anything (run it under both
CPU slots on a shared machine).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
STUDY = ["--dataset", "digits", "--model", "cnn", "--epochs"]
TIMING = {"sal_seconds", "seconds"}  # wall-clock fields: the only ones allowed to differ


# `python -m landscape` with glibc's malloc defaults: the CLI's call of `keep_freed_memory` made a no-op
MALLOC_DEFAULTS = ("import sys, landscape.malloc as m; m.keep_freed_memory = lambda: False; "
                   "from landscape.cli import main; sys.exit(main())")


def timed(args: list[str], store: Path, *, malloc_defaults: bool = False) -> tuple[float, str, dict[str, Any]]:
    """Wall seconds of `python -m landscape ARGS --store STORE --json` as a whole command, its system time and
    minor page faults (with its workers') as text, and its JSON report."""
    launch = ["-c", MALLOC_DEFAULTS] if malloc_defaults else ["-m", "landscape"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, *launch, *args, "--store", str(store), "--json"], cwd=ROOT,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    usage = (f"sys {after.ru_stime - before.ru_stime:.2f} s, user {after.ru_utime - before.ru_utime:.2f} s, "
             f"{(after.ru_minflt - before.ru_minflt) / 1e6:.2f} M page faults")
    return wall, usage, json.loads(done.stdout)


def differences(a: Any, b: Any, path: str = "") -> list[str]:
    """Where two JSON values differ (exact float equality), timing fields skipped."""
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b))]
        return out + [d for k in sorted(set(a) & set(b)) if k not in TIMING
                      for d in differences(a[k], b[k], f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{path}: {len(a)} vs {len(b)} items"]
        return [d for i, (x, y) in enumerate(zip(a, b, strict=True)) for d in differences(x, y, f"{path}[{i}]")]
    return [] if a == b or (a != a and b != b) else [f"{path}: {a!r} vs {b!r}"]  # NaN equals NaN here


def stored(store: Path, epochs: int) -> dict[str, Any]:
    """What the study stored, through the stage layer: both runs (history, checkpoints), both SAL traces, UD."""
    from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
    from landscape.stages.ud import UDStage
    from landscape.store import Store

    s = Store(store)
    ud = UDStage.of(ExperimentSpec(data=DataSpec(), model=ModelSpec(name="cnn"), train=TrainSpec(epochs=epochs),
                                   poison=PoisonSpec(method="em"), sal=SALSpec.preset("fast")))
    out: dict[str, Any] = {"ud": ud.load(s)}
    for poison in (PoisonSpec(), ud.spec.poison):
        out[f"run-{poison.method}"] = ud.run(poison).load(s)
        out[f"sal-{poison.method}"] = ud.sal(poison).load(s)
    missing = [k for k, v in out.items() if v is None]
    if missing:
        raise SystemExit(f"not stored in {store}: {missing}")
    return out


def compare_stores(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    """Bit-for-bit differences between two studies' stored results (timing fields left out)."""
    diffs = differences(a["ud"].to_dict(), b["ud"].to_dict(), "ud")
    for key in a:
        if key.startswith("sal-"):
            for name in ("epochs", "s_min", "s_max", "sal", "baseline", "acc_baseline", "acc_drop", "acc_rise",
                         "acc_variant"):
                if not np.array_equal(getattr(a[key], name), getattr(b[key], name), equal_nan=True):
                    diffs.append(f"{key}.{name}")
        if key.startswith("run-"):
            ra, rb = a[key], b[key]
            diffs += [f"{key}.history.{k}" for k in ra.history if k not in TIMING
                      and not np.array_equal(ra.history[k], rb.history[k], equal_nan=True)]
            if ra.checkpoint_epochs != rb.checkpoint_epochs:
                diffs.append(f"{key}.checkpoint_epochs")
            diffs += [f"{key}.checkpoint[{e}].{name}" for e, ca, cb in zip(ra.checkpoint_epochs, ra.checkpoints,
                                                                         rb.checkpoints, strict=True)
                      for name in ca if not np.array_equal(np.asarray(ca[name]), np.asarray(cb[name]))]
    return diffs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--out", default=str(ROOT / "bench" / "results" / "study_time.txt"))
    a = p.parse_args()
    from landscape.device import numeric_environment_line

    lines: list[str] = []

    def say(text: str) -> None:
        print(text, flush=True)
        lines.append(text)

    say(f"# bench/study_time.py, {time.strftime('%Y-%m-%d %H:%M:%S %Z')}, {os.cpu_count()} CPUs")
    say(f"# {numeric_environment_line()}")
    say(f"# load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="study-time-") as tmp:
        root = Path(tmp)
        trains: dict[bool, list[float]] = {False: [], True: []}  # by malloc_defaults
        usages: dict[bool, str] = {}
        for i in range(3):  # alternated, so neither setting gets the cold first run
            for defaults in (False, True):
                wall, usage, _ = timed(["train", *STUDY, str(a.epochs)], root / f"train-{defaults}-{i}",
                                       malloc_defaults=defaults)
                trains[defaults].append(wall)
                usages[defaults] = usage
        train_s, plain_s = statistics.median(trains[False]), statistics.median(trains[True])
        say(f"plain train --epochs {a.epochs} (fresh store), median of 3: {train_s:.2f} s ({usages[False]}, last)   "
            f"load {os.getloadavg()[0]:.2f}")
        walls, reports = {}, {}
        for workers in (1, 2):
            walls[workers], usage, reports[workers] = timed(
                ["run", *STUDY, str(a.epochs), "--method", "em", "--workers", str(workers)], root / f"w{workers}")
            say(f"study --workers {workers} (fresh store): {walls[workers]:.2f} s = {walls[workers] / train_s:.2f}x "
                f"train ({usage})   load {os.getloadavg()[0]:.2f}")
        say(f"speed-up workers 2 vs 1: x{walls[1] / walls[2]:.2f}; concurrent study = "
            f"{walls[2] / train_s:.2f}x a plain train (target <= 4x, <= 30 s: "
            f"{'holds' if walls[2] <= 30 and walls[2] <= 4 * train_s else 'does NOT hold'})")
        say("glibc's malloc defaults, for comparison:")
        say(f"  plain train, median of 3: {plain_s:.2f} s ({usages[True]}, last); defaults / shipped "
            f"x{plain_s / train_s:.2f}")
        default_s, usage, default_report = timed(["run", *STUDY, str(a.epochs), "--method", "em", "--workers", "2"],
                                                 root / "w2-d", malloc_defaults=True)
        say(f"  study --workers 2: {default_s:.2f} s = {default_s / plain_s:.2f}x its train ({usage}); "
            f"defaults / shipped x{default_s / walls[2]:.2f}")
        diffs = differences(reports[1], reports[2], "report") + compare_stores(stored(root / "w1", a.epochs),
                                                                               stored(root / "w2", a.epochs))
        diffs += differences(reports[2], default_report, "malloc-report") + compare_stores(
            stored(root / "w2", a.epochs), stored(root / "w2-d", a.epochs))
        r = reports[1]
        say(f"numbers: UD {r['ud']!r}, beta {r['beta']!r}, test acc clean {r['clean_test_acc']!r} / poisoned "
            f"{r['poisoned_test_acc']!r}, #LP {r['lp_clean']!r} / {r['lp_poisoned']!r}")
        say("bit for bit, workers 1 vs 2 and malloc tuned vs defaults (reports; stored UD, histories, SAL matrices, "
            "checkpoints): " + ("identical" if not diffs else f"{len(diffs)} DIFFERENCES: {diffs[:20]}"))
    say(f"# load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n")
    if diffs:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
