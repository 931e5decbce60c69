"""Do Hessian curvature and SAL rank the layers alike, and are the poisoned model's critical layers flatter?

Issue #13, acceptance 4. On digits (default `ExperimentSpec`: cnn, 30 epochs, EM, the fast SAL default), through the
engine's public API (`landscape.experiment.run_experiment` trains the clean and the poisoned model and measures SAL
per layer and epoch; `landscape.experiment.get_curvature` measures each stored checkpoint): lambda_max and the
trace of every layer's Hessian block on the model's own training set (the poisoned images for the poisoned model,
the loss SAL measures; the default `CurvatureSpec`, 512 images).

Reported, for the clean and the poisoned run:
  * the Spearman rank correlation across layers between SAL and lambda_max, and between SAL and the trace, per
    epoch, as mean +- std over the epochs (and the same between lambda_max and the trace);
  * the critical layers: at each epoch, the layers learnable in the clean run but not in the poisoned one (SAL
    above UD's threshold beta in one and not the other, `UDReport.flags_*`); their curvature poisoned vs clean
    (the log10 ratio, mean +- std over the cells, and the fraction of cells with lower curvature when poisoned),
    beside the same numbers over all other (epoch, layer) cells;
  * the same for the third of the layers with the highest mean clean SAL (a definition that does not depend on
    the threshold, useful when few cells cross it);
  * per layer: the mean over epochs of log10(poisoned / clean) for lambda_max and the trace.

Nothing is tuned here: the settings are the engine's defaults; the numbers are what they are.

Usage: python bench/curvature_vs_sal.py [--model cnn] [--method em] [--every 1] [--epochs 30] [--out PATH]
       python bench/curvature_vs_sal.py --spec SPEC.json [--store DIR]   (an `ExperimentSpec.to_dict()`, e.g. a
       regime of `bench/regime.py`; --model/--method/--epochs are then ignored)
The curvature is measured through the stage layer (`landscape.experiment.get_curvature`), so it is cached in the
store beside the runs and SAL.
Writes JSON lines to bench/results/curvature_vs_sal.jsonl (one per epoch and run, one summary) and prints a summary.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from landscape.config import CurvatureSpec, ExperimentSpec, ModelSpec, PoisonSpec
from landscape.curvature import layer_rank_agreement
from landscape.experiment import get_curvature, run_experiment
from landscape.store import Store


def strict(obj):
    """The object with non-finite floats as None, so the JSON lines are strict JSON."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict(v) for v in obj]
    return obj


def mean_std(v: np.ndarray) -> tuple[float, float, int]:
    v = np.asarray(v, dtype=np.float64)
    v = v[np.isfinite(v)]
    return (float(v.mean()) if v.size else float("nan"), float(v.std(ddof=1)) if v.size > 1 else float("nan"),
            int(v.size))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn")
    p.add_argument("--method", default="em")
    p.add_argument("--every", type=int, default=1, help="measure curvature every this many epochs (and the last)")
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's 30)")
    p.add_argument("--spec", default=None, help="ExperimentSpec JSON file (overrides --model/--method/--epochs)")
    p.add_argument("--store", default=None, help="store folder (default: the user's store)")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "curvature_vs_sal.jsonl"))
    a = p.parse_args()
    started, load_start = time.perf_counter(), os.getloadavg()[0]
    store = Store(a.store)
    if a.spec:
        spec = ExperimentSpec.from_dict(json.loads(Path(a.spec).read_text()))
    else:
        spec = ExperimentSpec(model=ModelSpec(name=a.model), poison=PoisonSpec(method=a.method))
        if a.epochs is not None:
            spec = spec.replace(train=spec.train.replace(epochs=a.epochs))
    a.model, a.method = spec.model.name, spec.poison.method
    result = run_experiment(spec, store=store)
    cspec = CurvatureSpec(whole_model=False, every=a.every)
    defense = None if spec.defense.is_none else spec.defense
    runs = {"clean": (PoisonSpec(), result.sal_clean), a.method: (spec.poison, result.sal_poisoned)}
    curv, sal, rows = {}, {}, []
    out_path = Path(a.out)
    for label, (poison, trace) in runs.items():
        t0 = time.perf_counter()  # the run's own training set (poisoned for the poisoned run): the loss SAL measures
        c = get_curvature(spec.data, spec.model, spec.train, poison, cspec, store=store, defense=defense)
        seconds = time.perf_counter() - t0
        assert c.layers == list(trace.layers), (c.layers, trace.layers)
        sal_rows = np.stack([trace.sal[list(trace.epochs).index(e)] for e in c.epochs])  # (T, L) at the same epochs
        curv[label], sal[label] = c, sal_rows
        for i, epoch in enumerate(c.epochs):
            rows.append({"run": label, "epoch": int(epoch), "layers": c.layers, "sal": sal_rows[i].tolist(),
                         "lambda_max": c.lambda_max[i].tolist(), "trace": c.trace[i].tolist(),
                         "trace_se": c.trace_se[i].tolist(), "seconds": seconds / len(c.epochs)})
    summary: dict = {"summary": True, "dataset": spec.data.name, "model": a.model, "method": a.method,
                     "spec": spec.to_dict(),
                     "epochs": spec.train.epochs, "every": a.every, "layers": curv["clean"].layers,
                     "ud": float(result.ud.ud), "beta": float(result.ud.beta),
                     "clean_test_acc": float(result.clean.history["test_acc"][-1]),
                     "poisoned_test_acc": float(result.poisoned.history["test_acc"][-1])}
    for label in runs:
        c, s = curv[label], sal[label]
        for name, values in (("sal_vs_lambda_max", layer_rank_agreement(s, c.lambda_max)),
                             ("sal_vs_trace", layer_rank_agreement(s, c.trace)),
                             ("lambda_max_vs_trace", layer_rank_agreement(c.lambda_max, c.trace))):
            m, sd, n = mean_std(values)
            summary[f"{label}_spearman_{name}"] = {"mean": m, "std": sd, "epochs": n}
    # critical layers: learnable (SAL > beta) in the clean run, not in the poisoned run, at the same epoch
    epochs = curv["clean"].epochs
    sal_epochs_c = list(result.sal_clean.epochs)
    sal_epochs_p = list(result.sal_poisoned.epochs)
    fc = np.stack([result.ud.flags_clean[sal_epochs_c.index(e)] for e in epochs]).astype(bool)
    fp = np.stack([result.ud.flags_poisoned[sal_epochs_p.index(e)] for e in epochs]).astype(bool)
    critical = fc & ~fp
    summary["critical_cells"] = int(critical.sum())
    summary["cells"] = int(critical.size)
    summary["critical_layers_per_epoch"] = [[curv["clean"].layers[j] for j in np.flatnonzero(r)] for r in critical]
    # second view: the third of the layers with the highest mean clean SAL (the layers SAL calls most learnable)
    top = np.argsort(sal["clean"].mean(0))[::-1][: max(1, len(curv["clean"].layers) // 3)]
    summary["top_sal_layers"] = [curv["clean"].layers[j] for j in top]
    for what in ("lambda_max", "trace"):
        clean, pois = getattr(curv["clean"], what), getattr(curv[a.method], what)
        with np.errstate(divide="ignore", invalid="ignore"):
            log_ratio = np.log10(pois / clean)
        for name, mask in (("critical", critical), ("other", ~critical)):
            m, sd, n = mean_std(log_ratio[mask])
            summary[f"{what}_log10_ratio_{name}"] = {"mean": m, "std": sd, "cells": n,
                                                     "fraction_lower": float((pois[mask] < clean[mask]).mean())
                                                     if mask.any() else float("nan")}
        summary[f"{what}_log10_ratio_per_layer"] = np.nanmean(log_ratio, axis=0).tolist()
        m, sd, n = mean_std(log_ratio[:, top])
        summary[f"{what}_log10_ratio_top_sal_layers"] = {"mean": m, "std": sd, "cells": n,
                                                         "fraction_lower": float((pois[:, top] < clean[:, top]).mean())}
    summary.update(seconds=round(time.perf_counter() - started, 1), load_avg_start=round(load_start, 2),
                   load_avg_end=round(os.getloadavg()[0], 2))
    with out_path.open("a") as f:
        for row in rows:
            f.write(json.dumps(strict({"model": a.model, "method": a.method, **row})) + "\n")
        f.write(json.dumps(strict(summary)) + "\n")

    def fmt(d: dict) -> str:
        return f"{d['mean']:.2f} +- {d['std']:.2f}"

    print(f"{a.model}/{a.method}: UD {summary['ud']:.3f}, test acc clean {summary['clean_test_acc']:.3f} poisoned "
          f"{summary['poisoned_test_acc']:.3f}; Spearman(SAL, lambda_max) clean "
          f"{fmt(summary['clean_spearman_sal_vs_lambda_max'])}, {a.method} "
          f"{fmt(summary[f'{a.method}_spearman_sal_vs_lambda_max'])}; Spearman(SAL, trace) clean "
          f"{fmt(summary['clean_spearman_sal_vs_trace'])}, {a.method} "
          f"{fmt(summary[f'{a.method}_spearman_sal_vs_trace'])}; critical cells {summary['critical_cells']}/"
          f"{summary['cells']}: log10(lambda_max poisoned/clean) "
          f"{fmt(summary['lambda_max_log10_ratio_critical'])} (lower in "
          f"{summary['lambda_max_log10_ratio_critical']['fraction_lower']:.0%}), other cells "
          f"{fmt(summary['lambda_max_log10_ratio_other'])}; {summary['seconds']} s, load {summary['load_avg_start']}"
          f" -> {summary['load_avg_end']}")


if __name__ == "__main__":
    main()
