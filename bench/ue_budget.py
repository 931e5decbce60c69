"""Clean test accuracy vs budget for every UE method on a data set (default digits, cnn victim, 100 % poisoned).

Budgets per norm come from `landscape.poisons.report.sweep_budgets`: L∞ 8, 16, 32, 64/255; L2 at the same
per-pixel RMS (sqrt(64)·{8,16,32,64}/255 = 0.251, 0.502, 1.00, 2.01 on digits); L0 1, 2, 4, 8 pixels; CUDA blur
0.1, 0.3, 0.6, 1.0. Prints a table (with, per method, the smallest budget that reaches the 40-point target)
and writes bench/results/ue_budget.jsonl, ue_budget.html and ue_budget.json (the Plotly figure of
`budget_sweep_figure`).

    python bench/ue_budget.py                     # full: 9 methods x 4 budgets x 1 seed x 30 epochs
    python bench/ue_budget.py --seeds 2 --methods em,ops --epochs 10
    python bench/ue_budget.py --dataset mnist-5k --epochs 20 --out bench/results/ue_budget_mnist5k
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _ue_common import (  # noqa: E402
    RESULTS,
    add_poison_arguments,
    load_splits,
    method_options,
    run_one,
    set_threads,
    write_jsonl,
)

from landscape.config import PoisonSpec  # noqa: E402
from landscape.poisons import POISONS, build  # noqa: E402
from landscape.poisons.base import dataset_family  # noqa: E402
from landscape.poisons.report import budget_sweep_figure, sweep_budgets  # noqa: E402


def budget_value(text: str) -> float:
    """ "32/255" -> 0.1255, "7.03" -> 7.03, "4" -> 4.0."""
    num, _, den = text.partition("/")
    return float(num) / float(den) if den else float(num)


def fmt(norm: str, eps: float) -> str:
    return f"{eps * 255:.0f}/255" if norm == "linf" else f"{eps:.3g}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=1, help="number of seeds (0..seeds-1)")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--methods", default=",".join(POISONS.names()), help="comma-separated methods")
    p.add_argument("--dataset", default="digits")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    p.add_argument("--out", default=str(RESULTS / "ue_budget"), help="output path without extension")
    p.add_argument("--budgets", action="append", default=[], metavar="METHOD=EPS,EPS",
                   help="explicit budgets of one method instead of the standard four, e.g. em=32/255,64/255 "
                        "(repeatable)")
    add_poison_arguments(p)
    a = p.parse_args(argv)
    options = method_options(a.option)
    budgets = {m: sorted(budget_value(v) for v in vs.split(",")) for m, _, vs in (b.partition("=") for b in a.budgets)}
    defaults_of = a.defaults_of or a.dataset
    set_threads(a.threads)
    methods = [m for m in a.methods.split(",") if m and m != "clean"]
    for m in methods:
        POISONS.check(m)
    splits = load_splits(a.dataset)
    started = time.perf_counter()
    out = Path(a.out)
    partial = out.with_suffix(".partial.jsonl")  # every run as it finishes, so an interrupted sweep keeps its rows
    partial.unlink(missing_ok=True)

    def one(method: str, eps: float | None, seed: int) -> dict:
        row = run_one(splits, a.dataset, method, eps, seed, a.epochs, a.model, defaults_of=defaults_of,
                      options=options.get(method))
        with partial.open("a") as fh:
            fh.write(json.dumps(row, default=str) + "\n")
        return row

    runs = [one("clean", None, s) for s in range(a.seeds)]
    clean_accs = [r["test_acc"] for r in runs]
    clean = statistics.fmean(clean_accs)
    rows = [{"method": "clean", "norm": "none", "eps": None, "acc_mean": clean,
             "acc_std": statistics.stdev(clean_accs) if len(clean_accs) > 1 else 0.0}]
    for method in methods:
        norm = POISONS.get(method).norm
        default = build(PoisonSpec(method=method), dataset=defaults_of).eps
        for eps in budgets.get(method) or sweep_budgets(norm, splits.image_shape):
            rs = [one(method, eps, s) for s in range(a.seeds)]
            runs += rs
            accs = [r["test_acc"] for r in rs]
            row = {"method": method, "norm": norm, "eps": eps, "label": fmt(norm, eps),
                   "acc_mean": statistics.fmean(accs), "acc_std": statistics.stdev(accs) if len(accs) > 1 else 0.0,
                   "drop_points": 100 * (clean - statistics.fmean(accs)), "is_default": abs(eps - default) < 1e-6,
                   "craft_seconds": statistics.fmean(r["craft_seconds"] for r in rs),
                   "psnr": statistics.fmean(r["budget"]["psnr"] for r in rs)}
            rows.append(row)
            print(f"  {method:6s} {row['label']:>8s}: acc {row['acc_mean']:.3f} craft {row['craft_seconds']:.1f}s",
                  file=sys.stderr, flush=True)
    wall = time.perf_counter() - started
    family = dataset_family(defaults_of)
    print(f"\nBudget sweep on {a.dataset}: {a.model} victim, {a.epochs} epochs, {a.seeds} seed(s); clean {clean:.3f}; "
          f"wall {wall:.0f} s; poison options: the {family} defaults" + (f" with {a.option}" if a.option else "")
          + f"   (* = the method's {family} default)")
    print(f"{'method':7s} {'norm':5s} " + " ".join(f"{'budget':>9s} {'acc':>6s} {'PSNR':>5s}" for _ in range(4))
          + "   smallest budget with >= 40 pt drop")
    for method in methods:
        rs = [r for r in rows if r["method"] == method]
        cells = " ".join(f"{r['label'] + ('*' if r['is_default'] else ''):>9s} {r['acc_mean']:>6.3f} {r['psnr']:>5.1f}"
                         for r in rs)
        hit = next((r["label"] for r in rs if r["drop_points"] >= 40), "none")
        print(f"{method:7s} {rs[0]['norm']:5s} {cells}   {hit}")
    write_jsonl(out.with_suffix(".jsonl"), runs + [dict(r, summary=True) for r in rows]
                + [{"summary": "run", "wall_seconds": wall, "seeds": a.seeds, "epochs": a.epochs, "model": a.model,
                    "dataset": a.dataset, "defaults_of": defaults_of, "options": a.option}])
    partial.unlink(missing_ok=True)
    fig = budget_sweep_figure(rows)
    fig.write_html(str(out.with_suffix(".html")), include_plotlyjs="cdn")
    out.with_suffix(".json").write_text(fig.to_json())
    print(f"wrote {out}.jsonl, {out}.html, {out}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
