"""`python -m landscape cross-task`: do UEs crafted against classification stop other tasks? (DESIGN §5.6).

Trains one model per (task, condition) on clean and poisoned images (targets always from the clean images),
and prints task x method -> clean-trained metric, poisoned-trained metric, relative drop and UD.
"""

from __future__ import annotations

import argparse
import math
import time

from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_data_args, add_run_args, data_spec, print_json, working
from landscape.spec import plural


def add_arguments(p: argparse.ArgumentParser) -> None:
    from landscape.multitask import DEFAULT_METHODS, DEFAULT_SAL, DEFAULT_TRAIN

    add_data_args(p)
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help="comma-separated poison methods, crafted against classification at their default budget")
    p.add_argument("--tasks", default="", help="comma-separated tasks (default: every task of the data set)")
    p.add_argument("--epochs", type=int, default=DEFAULT_TRAIN.epochs)
    p.add_argument("--seed", type=int, default=0, help="seed of the poisons and of every model")
    p.add_argument("--sal-every", type=int, default=DEFAULT_SAL.every, help="measure SAL every this many epochs")
    p.add_argument("--no-sal", action="store_true", help="skip SAL (and hence UD)")
    add_run_args(p)


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


def format_table(rows: list[dict]) -> str:
    """The task x method table as fixed-width text (drop: > 0 = poisoned-trained model is worse)."""
    def num(value: float) -> str:
        return "n/a" if not math.isfinite(value) else f"{value:.3f}"

    lines = [f"{'task':<12} {'metric':<9} {'method':<8} {'clean':>9} {'poisoned':>9} {'drop':>8} {'UD':>7} "
             f"{'SAL ratio':>9}"]
    for r in rows:
        lines.append(f"{r['task']:<12} {r['metric']:<9} {r['method']:<8} {r['clean']:>9.4f} {r['poisoned']:>9.4f} "
                     f"{100 * r['drop']:>7.1f}% {num(r['ud']):>7} {num(r['sal_ratio']):>9}"
                     + ("  (diverged)" if r.get("diverged") else ""))
    return "\n".join(lines)


def run(a: argparse.Namespace) -> int:
    from landscape.multitask import DEFAULT_SAL, DEFAULT_TRAIN, CrossTaskSpec
    from landscape.stages.crosstask import run_cross_task

    sal = None if a.no_sal else DEFAULT_SAL.replace(every=a.sal_every)
    spec = CrossTaskSpec.for_methods(_split(a.methods), seed=a.seed, data=data_spec(a), tasks=_split(a.tasks),
                                     train=DEFAULT_TRAIN.replace(epochs=a.epochs), sal=sal)
    started = time.perf_counter()
    with working(a) as (store, device, progress):
        result = run_cross_task(spec, store=store, device=device, progress=progress)
    wall = time.perf_counter() - started
    rows = result.table()
    if a.json:
        print_json({"dataset": a.dataset, "device": str(device), "seed": a.seed, "wall_s": wall, "rows": rows,
                    "spec": spec.to_dict()})
        return 0
    print(format_table(rows))
    computed = sum(r.seconds for r in result.runs.values())
    print(f"{plural(len(result.runs), 'task model')} ({plural(len(spec.tasks), 'task')} x clean + "
          f"{plural(len(spec.methods), 'poison')}), {plural(spec.train.epochs, 'epoch')} each; wall {wall:.1f} s on "
          f"{device} (stored runs took {computed:.1f} s to train when computed). drop = relative loss of the "
          "clean-test metric vs clean training (> 0 = worse); "
          "UD uses beta from each task's clean model; SAL ratio (ours) = mean poisoned SAL / mean clean SAL.")
    return 0


COMMANDS.register("cross-task")(Command(
    "train every task on clean vs poisoned images (UEs crafted against classification) and compare",
    add_arguments, run))
