"""Cross-task bench (issue #7): do UEs crafted against classification stop segmentation, edges, reconstruction?

For each seed, `landscape.stages.crosstask.run_cross_task` trains one model per (task, condition) on digits (clean
and each method at its default digits budget, 100 % poisoned; targets from the clean images; the one
recipe `multitask.DEFAULT_TRAIN`; SAL `multitask.DEFAULT_SAL`), then the table task x method -> clean-trained
metric, poisoned-trained metric, relative drop, UD is aggregated over seeds (mean ± std). A sensitivity
column trains the classification `cnn` with the project's default victim recipe (`TrainSpec()`, SGD), the
recipe the poisons' digits budgets were calibrated against, through `experiment.get_training`.

The plain-language verdict is computed from the numbers with the thresholds printed beside it; nothing
here is tuned toward an outcome. A fresh store is used unless --store is given, so no stale entry is read.

    python bench/cross_task.py                       # 3 seeds, em,ops,ar,random, 30 epochs
    python bench/cross_task.py --seeds 1 --methods ops --epochs 5

Writes bench/results/cross_task.jsonl (one line per seed x task x method, then one per SGD sensitivity run,
then a summary line) and bench/results/cross_task.md (the tables and the verdict).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import torch

from landscape.config import ModelSpec, PoisonSpec, TrainSpec
from landscape.experiment import get_training
from landscape.multitask import COLLAPSES, DEFAULT_SAL, DEFAULT_TRAIN, KEEPS, CrossTaskSpec, verdict
from landscape.stages.crosstask import run_cross_task
from landscape.store import Store

RESULTS = Path(__file__).resolve().parent / "results"


def _ms(values: list[float]) -> tuple[float, float]:
    finite = [v for v in values if v == v]
    if not finite:
        return float("nan"), float("nan")
    return statistics.fmean(finite), (statistics.pstdev(finite) if len(finite) > 1 else 0.0)


def _fmt(values: list[float], digits: int = 4, pct: bool = False) -> str:
    mean, std = _ms(values)
    if mean != mean:
        return "n/a"
    scale = 100.0 if pct else 1.0
    unit = "%" if pct else ""
    return f"{mean * scale:.{1 if pct else digits}f}{unit} ± {std * scale:.{1 if pct else digits}f}{unit}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--methods", default="em,ops,ar,random")
    p.add_argument("--epochs", type=int, default=DEFAULT_TRAIN.epochs)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: the box is shared)")
    p.add_argument("--store", default=None, help="store folder (default: a fresh temporary one)")
    p.add_argument("--out", default=str(RESULTS / "cross_task"), help="output path without extension")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    methods = [m for m in a.methods.split(",") if m]
    tmp = None if a.store else tempfile.TemporaryDirectory(prefix="ct-bench-")
    store = Store(a.store or tmp.name)  # type: ignore[union-attr]
    load_start = os.getloadavg()
    started = time.perf_counter()
    rows, seed_walls, specs = [], [], []
    for seed in range(a.seeds):
        spec = CrossTaskSpec.for_methods(methods, seed=seed, train=DEFAULT_TRAIN.replace(epochs=a.epochs),
                                         sal=DEFAULT_SAL)
        specs.append(spec)
        t0 = time.perf_counter()
        result = run_cross_task(spec, store=store)
        seed_walls.append(time.perf_counter() - t0)
        for r in result.table():
            row = {"kind": "cross_task", "seed": seed, **r}
            rows.append(row)
            print(json.dumps(row))
        print(f"seed {seed}: {seed_walls[-1]:.1f} s", flush=True)
    # Sensitivity: classification with the project's default (SGD) victim recipe, same poisons.
    sgd_rows = []
    for seed, spec in enumerate(specs):
        for cond in ("clean", *methods):
            poison = PoisonSpec() if cond == "clean" else spec.poison(cond)
            res = get_training(spec.data, ModelSpec("cnn"), TrainSpec(epochs=a.epochs, seed=seed), poison, store=store)
            sgd_rows.append({"kind": "classify_sgd", "seed": seed, "condition": cond,
                             "test_acc": float(res.history["test_acc"][-1])})
            print(json.dumps(sgd_rows[-1]))
    wall = time.perf_counter() - started
    load_end = os.getloadavg()
    tasks = list(specs[0].tasks)

    lines = [f"# Cross-task bench (digits, {a.seeds} seeds, {a.epochs} epochs, methods {', '.join(methods)})", "",
             f"Recipe: {DEFAULT_TRAIN.optimizer} lr {DEFAULT_TRAIN.lr} batch {DEFAULT_TRAIN.batch_size}, no "
             f"augmentation, every task and condition; SAL engine {DEFAULT_SAL.engine}, {DEFAULT_SAL.rounds} rounds, "
             f"eval {DEFAULT_SAL.eval_size} images, every {DEFAULT_SAL.every} epochs. Poisons (default digits "
             "budgets): " + "; ".join(f"{p.method} eps {p.eps:.4g}" for p in specs[0].poisons) + ".", "",
             "| task | metric | method | clean-trained | poisoned-trained | relative drop | UD | SAL ratio (ours) |",
             "|---|---|---|---|---|---|---|---|"]
    for t in tasks:
        for m in methods:
            sel = [r for r in rows if r["task"] == t and r["method"] == m]
            lines.append(f"| {t} | {sel[0]['metric']} | {m} | {_fmt([r['clean'] for r in sel])} | "
                         f"{_fmt([r['poisoned'] for r in sel])} | {_fmt([r['drop'] for r in sel], pct=True)} | "
                         f"{_fmt([r['ud'] for r in sel], 3)} | {_fmt([r['sal_ratio'] for r in sel], 3)} |")
    lines += ["", "Classification with the project's default SGD recipe (TrainSpec(): lr 0.05, momentum 0.9), "
              "clean-test accuracy:", "", "| condition | accuracy |", "|---|---|"]
    for cond in ("clean", *methods):
        lines.append(f"| {cond} | {_fmt([r['test_acc'] for r in sgd_rows if r['condition'] == cond])} |")
    v = verdict(rows, methods, tasks)
    lines += ["", f"Verdict (computed; 'collapses' = mean drop >= {100 * COLLAPSES:.0f}%, 'keeps' = mean drop < "
              f"{100 * KEEPS:.0f}%):", "", *[f"- {s}" for s in v], "",
              f"Wall time {wall:.0f} s ({', '.join(f'{w:.0f}' for w in seed_walls)} s per seed for the cross-task "
              f"runs), {a.threads} torch thread(s), {os.cpu_count()} CPUs, load average {load_start[0]:.1f} at start "
              f"and {load_end[0]:.1f} at the end (shared machine), {platform.processor() or platform.machine()}."]
    text = "\n".join(lines)
    print(text)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    summary = {"kind": "summary", "seeds": a.seeds, "epochs": a.epochs, "methods": methods, "wall_s": wall,
               "seed_wall_s": seed_walls, "threads": a.threads, "load_start": load_start, "load_end": load_end,
               "verdict": v}
    out.with_suffix(".jsonl").write_text("".join(json.dumps(r) + "\n" for r in [*rows, *sgd_rows, summary]))
    out.with_suffix(".md").write_text(text + "\n")
    print(f"SUMMARY cross-task digits {a.seeds} seeds: " + " | ".join(v) + f" | wall {wall:.0f} s")
    if tmp is not None:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
