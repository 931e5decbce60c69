"""`python -m landscape curvature`: λ_max, trace and spectral density of every layer, clean and poisoned runs.

Example: `python -m landscape curvature --method em --every 5 --vs-sal --out curvature.csv` trains (or loads) the
clean and the EM run, measures each layer's Hessian block (and the whole model's) at every 5th stored epoch and the
last (`landscape.curvature`), prints the last epoch's table and, with `--vs-sal`, the per-epoch Spearman agreement
between SAL and λ_max / trace. `--out` writes a .csv (one row per run, epoch and layer), a .npz (every array) or an
.html page of the figures (λ_max and trace heatmaps, spectral densities).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_experiment_args, experiment_specs, output_file, print_json, working
from landscape.commands.craft import add_poison_args, poison_spec
from landscape.config import CurvatureSpec, PoisonSpec, SALSpec, choices
from landscape.spec import plural

OUT_FORMATS = (".csv", ".npz", ".html")


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    add_poison_args(p)
    d = CurvatureSpec()
    g = p.add_argument_group("curvature", "how each layer's Hessian block is probed (landscape.curvature)")
    g.add_argument("--split", default=d.split, choices=choices(CurvatureSpec, "split"),
                   help="train = each run's own (poisoned) training set, the loss SAL measures; test = clean test")
    g.add_argument("--n-data", type=int, default=d.n_data, help=f"fixed seeded image subset ({d.n_data})")
    g.add_argument("--top-k", type=int, default=d.top_k, help="largest eigenvalues reported")
    g.add_argument("--tol", type=float, default=d.tol, help="relative Ritz residual at which Lanczos stops")
    g.add_argument("--min-steps", type=int, default=d.min_steps, help="Lanczos steps at least (density nodes)")
    g.add_argument("--max-steps", type=int, default=d.max_steps, help="Lanczos steps at most")
    g.add_argument("--probes", type=int, default=d.probes, help="Hutchinson probes of the deflated trace")
    g.add_argument("--esd-runs", type=int, default=d.esd_runs, help="Lanczos runs averaged in the density")
    g.add_argument("--no-whole-model", action="store_true", help="skip the Hessian over all parameters")
    g.add_argument("--every", type=int, default=d.every, help="measure every this many epochs (and the last)")
    g.add_argument("--curvature-seed", type=int, default=d.seed, help="seed of the subset, start vectors, probes")
    p.add_argument("--vs-sal", action="store_true",
                   help="also measure SAL (the fast default) and report its per-epoch Spearman agreement")
    p.add_argument("--out", default=None, help=f"write the results: a file ending in {', '.join(OUT_FORMATS)} "
                                            f"(default: none, the table is printed only)")


def curvature_spec(a: argparse.Namespace) -> CurvatureSpec:
    return CurvatureSpec(split=a.split, n_data=a.n_data, top_k=a.top_k, tol=a.tol, min_steps=a.min_steps,
                         max_steps=a.max_steps, probes=a.probes, esd_runs=a.esd_runs,
                         whole_model=not a.no_whole_model, every=a.every, seed=a.curvature_seed)


def _mean_std(values: np.ndarray) -> dict[str, float | int | None]:
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    return {"mean": float(v.mean()) if v.size else None, "std": float(v.std(ddof=1)) if v.size > 1 else None,
            "epochs": int(v.size)}


def _fmt(d: dict[str, Any]) -> str:
    if d["mean"] is None:
        return "n/a"
    return f"{d['mean']:.2f} ± {d['std']:.2f}" if d["std"] is not None else f"{d['mean']:.2f}"


def run(a: argparse.Namespace) -> int:
    from landscape.commands.common import write_html, write_output
    from landscape.curvature import sal_agreement
    from landscape.experiment import get_curvature, get_training
    from landscape.export import write_curvature
    from landscape.figures import curvature_figures
    from landscape.sal import SALTrace

    out = output_file(a.out, "--out", OUT_FORMATS, "curvature.csv")
    (data, model, train), cspec = experiment_specs(a), curvature_spec(a)
    poison = poison_spec(a)
    runs = {"clean": PoisonSpec(), **({} if poison.is_clean else {poison.method: poison})}
    traces, sal = {}, {}
    with working(a) as (store, device, progress):
        for label, p in runs.items():
            if a.vs_sal:  # first: a run keeping few checkpoints is trained (and stored) by its SAL stage
                run_ = get_training(data, model, train, p, store=store, device=device, progress=progress,
                                    sal=SALSpec())
                sal[label] = SALTrace.from_dict(run_.extras["sal"])
            traces[label] = get_curvature(data, model, train, p, cspec, store=store, device=device,
                                          progress=progress)
    summary: dict[str, Any] = {"spec": cspec.to_dict(), "device": str(device), "runs": {}}
    for label, t in traces.items():
        row: dict[str, Any] = {"epochs": t.epochs.tolist(), "layers": t.layers, "lambda_max": t.lambda_max.tolist(),
                               "trace": t.trace.tolist(), "trace_se": t.trace_se.tolist(),
                               "top_k": [[s.layers[n].eigenvalues.tolist() for n in t.layers] for s in t.states],
                               "whole": {w: t.whole(w).tolist() for w in ("lambda_max", "trace", "trace_se")},
                               "unbatched": sorted({n for s in t.states for n in s.info.get("unbatched", [])})}
        if label in sal:
            for what in ("lambda_max", "trace"):
                epochs, rho = sal_agreement(sal[label], t, what)
                row[f"spearman_sal_{what}"] = {"epochs": epochs.tolist(), "rho": rho.tolist(), **_mean_std(rho)}
        summary["runs"][label] = row
    if out is not None:
        write_output(out, {**dict.fromkeys((".csv", ".npz"), lambda p: write_curvature(traces, p)),
                           ".html": lambda p: write_html(curvature_figures(traces, sal), p,
                                                         f"Curvature per layer: {data.name} / {model.name}")})
        summary["out"] = str(out)
    if a.json:
        print_json(summary)
        return 0
    for label, t in traces.items():
        state, epoch = t.states[-1], int(t.epochs[-1])
        print(f"{label} at epoch {epoch} ({state.info['images']} images, loss {state.info['loss']:.4g}):")
        print(f"  {'layer':<28} {'size':>8} {'λ_max':>11} {'trace':>11} {'± se':>9}")
        blocks = {**state.layers, **({"whole model": state.whole} if state.whole is not None else {})}
        for name, b in blocks.items():
            print(f"  {name:<28} {b.size:>8} {b.lambda_max:>11.4g} {b.trace:>11.4g} {b.trace_se:>9.2g}"
                  + ("" if b.converged else "  (not converged)"))
        row = summary["runs"][label]
        if "spearman_sal_lambda_max" in row:
            print(f"  Spearman(SAL, λ_max) per epoch {_fmt(row['spearman_sal_lambda_max'])}, "
                  f"Spearman(SAL, trace) {_fmt(row['spearman_sal_trace'])} over "
                  f"{plural(row['spearman_sal_lambda_max']['epochs'], 'epoch')}")
    if out is not None:
        print(f"wrote {out}")
    return 0


COMMANDS.register("curvature")(Command(
    "λ_max, trace and spectral density per layer and epoch (clean and poisoned runs), optionally vs SAL",
    add_arguments, run))
