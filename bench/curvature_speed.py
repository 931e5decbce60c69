"""Per-layer curvature speed: our engine vs a PyHessian-style loop, same model, data and layers, one run.

For every weight layer of the model (the SAL layers) at one epoch of the default digits recipe, on the same
512 training images, both compute lambda_max and the trace of the layer's Hessian block:

(a) the PyHessian-style loop (Yao et al. 2020, `pyhessian.hessian` restricted to one layer by freezing the
    others): per layer, a forward and a backward with `create_graph=True` w.r.t. that layer's weight, then one HVP
    at a time with `torch.autograd.grad(..., retain_graph=True)`: power iteration for lambda_max and Hutchinson's
    trace with Rademacher probes. It runs at two settings:
    - "matched", the reference: power iteration to a relative change below 1e-6 (at most 2000 steps) and exactly
      100 probes (PyHessian's maxIter), run with two seeds (the second is the noise floor);
    - "default": PyHessian's defaults (maxIter 100, tol 1e-3 for both, early stop on the running mean), whose
      lambda_max error against the matched reference and whose few probes are reported.
(b) ours: `landscape.curvature.model_curvature` at the default `CurvatureSpec` (whole_model off: the loop has
    none): one shared gradient graph for all layers, Lanczos (top-3, residual tol 1e-3, at least 20 steps; its
    spectral density comes with it), the trace deflated by the Krylov basis with 8 probes, vmap-batched products
    where the model's backward allows.

Agreement: lambda_max as the relative difference to the reference (and the reference's second seed to its
first); the trace as |difference| / sqrt(se_a^2 + se_b^2) (a z-score) with both standard errors. Cost: wall
and CPU time and HVPs per layer and in total; the ratio at the matched settings; and the ratio at equal trace
error, where the loop's cost is its measured setup and power-iteration time plus its measured seconds per probe
times the probes it would need to reach our standard error (labelled "equal_se"; an extrapolation from measured
rates, not a timed run). The growth with the number of layers: the cnn's 6 against resnet18s' 21, per-layer rows
in the JSON lines. Both run on one thread (`landscape.device.CPU_THREADS`); the load average is printed.

Usage: python bench/curvature_speed.py [--models cnn,resnet18s] [--epoch 5] [--n 512] [--no-floor]
Writes JSON lines to bench/results/curvature_speed.jsonl (one per layer, one summary per model) and prints a
summary line per model.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from landscape.config import CurvatureSpec, DataSpec, ModelSpec, TrainSpec
from landscape.curvature import curvature_subset, model_curvature
from landscape.device import limited_threads
from landscape.experiment import get_splits, get_training
from landscape.models import build_model, weight_layers
from landscape.store import Store


def pyhessian_layer(model, x, y, name, seed, *, power_tol=1e-3, power_iter=100, probes=100, trace_tol=1e-3):
    """lambda_max and trace of one layer's block with PyHessian's algorithms, one HVP at a time.

    `trace_tol=None` runs exactly `probes` probes (no early stop). Times the setup, the power iteration and the
    trace separately (wall seconds).
    """
    started = time.perf_counter()
    gen = torch.Generator().manual_seed(seed)
    net = copy.deepcopy(model).eval()
    params = dict(net.named_parameters())
    for n, p in params.items():
        p.requires_grad_(n == name)
    w = params[name]
    loss = F.cross_entropy(net(x), y)
    (g,) = torch.autograd.grad(loss, w, create_graph=True)
    hvps = 0

    def hvp(v):
        nonlocal hvps
        hvps += 1
        return torch.autograd.grad(g, w, grad_outputs=v, retain_graph=True)[0]

    t_setup = time.perf_counter()
    # PyHessian `eigenvalues(top_n=1)`: power iteration from a Gaussian vector, stop on relative change < tol
    v = torch.randn(w.shape, generator=gen)
    v = v / v.norm()
    eig, iters = None, 0
    for iters in range(1, power_iter + 1):  # noqa: B007 - the count is reported
        hv = hvp(v)
        tmp = float((hv * v).sum())
        v = hv / (hv.norm() + 1e-6)
        if eig is not None and abs(eig - tmp) / (abs(eig) + 1e-6) < power_tol:
            eig = tmp
            break
        eig = tmp
    t_power = time.perf_counter()
    # PyHessian `trace`: Rademacher probes, stop when the running mean changes by < tol (relative)
    samples, trace = [], 0.0
    for _ in range(probes):
        z = torch.randint(0, 2, w.shape, generator=gen, dtype=torch.float32) * 2 - 1
        samples.append(float((hvp(z) * z).sum()))
        if trace_tol is not None and abs(np.mean(samples) - trace) / (abs(trace) + 1e-6) < trace_tol:
            break
        trace = float(np.mean(samples))
    t_trace = time.perf_counter()
    s = np.asarray(samples)
    se = float(s.std(ddof=1) / math.sqrt(len(s))) if len(s) > 1 else float("nan")
    return {"lambda_max": eig, "power_iters": iters, "trace": float(s.mean()), "trace_se": se, "probes": len(s),
            "hvps": hvps, "setup_s": t_setup - started, "power_s": t_power - t_setup, "trace_s": t_trace - t_power,
            "seconds": t_trace - started}


def rel(a, b):
    return abs(a - b) / abs(b) if b else float("inf")


def z_score(a, sa, b, sb):
    den = math.sqrt(sa ** 2 + sb ** 2)
    return abs(a - b) / den if den > 0 else float("inf") if a != b else 0.0


# the reference at matched precision: power iteration run to convergence, a fixed 100 probes (PyHessian's maxIter)
MATCHED = {"power_tol": 1e-6, "power_iter": 2000, "probes": 100, "trace_tol": None}


def bench_model(name: str, epoch: int, n: int, store: Store, floor: bool) -> list[dict]:
    data, train_spec = DataSpec(), TrainSpec()
    run = get_training(data, ModelSpec(name=name), train_spec, None, store=store)
    splits = get_splits(data)
    model = build_model(name, splits.image_shape, splits.num_classes, seed=train_spec.seed)
    model.load_state_dict(run.checkpoints[run.checkpoint_epochs.index(epoch)])
    spec = CurvatureSpec(n_data=n, whole_model=False)
    idx = curvature_subset(len(splits.train), spec)
    x, y = (splits.train.x, splits.train.y) if idx is None else (splits.train.x[idx], splits.train.y[idx])
    layers = weight_layers(model)
    load_start = os.getloadavg()[0]
    with limited_threads(1):
        wall, cpu = time.perf_counter(), time.process_time()
        ours = model_curvature(model, splits.train.x, splits.train.y, spec)
        ours_wall, ours_cpu = time.perf_counter() - wall, time.process_time() - cpu
        loops: dict[str, dict[str, dict]] = {"default": {}, "matched": {}, "matched_seed1": {}}
        cpu = time.process_time()
        for layer in layers:
            loops["matched"][layer] = pyhessian_layer(model, x, y, layer, 0, **MATCHED)
        matched_cpu = time.process_time() - cpu
        for layer in layers:
            loops["default"][layer] = pyhessian_layer(model, x, y, layer, 0)
            if floor:
                loops["matched_seed1"][layer] = pyhessian_layer(model, x, y, layer, 1, **MATCHED)
        # ours again after the loop: the mean of the two timings evens out a change of machine load, and the
        # second run must give the same numbers
        wall, cpu = time.perf_counter(), time.process_time()
        again = model_curvature(model, splits.train.x, splits.train.y, spec)
        ours_wall = (ours_wall + time.perf_counter() - wall) / 2
        ours_cpu = (ours_cpu + time.process_time() - cpu) / 2
    same = all(np.array_equal(again.layers[n].eigenvalues, ours.layers[n].eigenvalues)
               and again.layers[n].trace == ours.layers[n].trace for n in layers)
    out = []
    for layer in layers:
        b, ref, dflt = ours.layers[layer], loops["matched"][layer], loops["default"][layer]
        row = {
            "model": name, "layer": layer, "params": b.size, "epoch": epoch, "images": len(y),
            "ours_s": round(b.seconds, 4), "ours_hvps": b.hvps, "ours_steps": b.steps,
            "loop_s": round(ref["seconds"], 4), "loop_hvps": ref["hvps"], "loop_power_iters": ref["power_iters"],
            "loop_setup_s": round(ref["setup_s"], 4), "loop_power_s": round(ref["power_s"], 4),
            "loop_trace_s": round(ref["trace_s"], 4),
            "pyhessian_default_s": round(dflt["seconds"], 4), "pyhessian_default_hvps": dflt["hvps"],
            "lambda_max_ours": b.lambda_max, "lambda_max_ours_residual": float(b.residuals[0]),
            "lambda_max_loop": ref["lambda_max"], "lambda_max_rel_diff": rel(b.lambda_max, ref["lambda_max"]),
            "lambda_max_pyhessian_default": dflt["lambda_max"],
            "lambda_max_pyhessian_default_rel_err": rel(dflt["lambda_max"], ref["lambda_max"]),
            "trace_ours": b.trace, "trace_ours_se": b.trace_se, "trace_loop": ref["trace"],
            "trace_loop_se": ref["trace_se"], "trace_z": z_score(b.trace, b.trace_se, ref["trace"], ref["trace_se"]),
            "trace_rel_diff": rel(b.trace, ref["trace"]), "trace_pyhessian_default": dflt["trace"],
            "trace_pyhessian_default_se": dflt["trace_se"], "trace_pyhessian_default_probes": dflt["probes"],
        }
        # the loop's cost to reach our trace standard error: its measured seconds per probe x the probes needed
        per_probe = ref["trace_s"] / ref["probes"]
        need = ref["probes"] * (ref["trace_se"] / b.trace_se) ** 2 if b.trace_se > 0 else float("inf")
        row["loop_equal_se_s"] = ref["setup_s"] + ref["power_s"] + per_probe * need
        if floor:
            f = loops["matched_seed1"][layer]
            row.update(lambda_max_rel_diff_floor=rel(f["lambda_max"], ref["lambda_max"]),
                       trace_z_floor=z_score(f["trace"], f["trace_se"], ref["trace"], ref["trace_se"]),
                       trace_rel_diff_floor=rel(f["trace"], ref["trace"]))
        out.append(row)
    loop_wall = sum(r["loop_s"] for r in out)
    summary = {
        "model": name, "summary": True, "layers": len(layers), "epoch": epoch, "images": len(y), "threads": 1,
        "load_avg_start": round(load_start, 2), "load_avg_end": round(os.getloadavg()[0], 2),
        "loop_s": round(loop_wall, 3), "loop_cpu_s": round(matched_cpu, 3), "ours_s": round(ours_wall, 3),
        "ours_cpu_s": round(ours_cpu, 3), "ours_repeat_identical": same, "ratio": round(loop_wall / ours_wall, 2),
        "cpu_ratio": round(matched_cpu / ours_cpu, 2),
        "equal_se_ratio": round(sum(r["loop_equal_se_s"] for r in out) / ours_wall, 1),
        "pyhessian_default_s": round(sum(r["pyhessian_default_s"] for r in out), 3),
        "loop_hvps": sum(r["loop_hvps"] for r in out), "ours_hvps": ours.info["hvps"],
        "ours_unbatched": ours.info["unbatched"],
        "loop_s_per_layer": round(loop_wall / len(layers), 3), "ours_s_per_layer": round(ours_wall / len(layers), 3),
        "loop_setup_s": round(sum(r["loop_setup_s"] for r in out), 3),
        "loop_s_per_hvp": round(loop_wall / sum(r["loop_hvps"] for r in out), 4),
        "ours_s_per_hvp": round(ours_wall / ours.info["hvps"], 4),
        "max_lambda_rel_diff": max(r["lambda_max_rel_diff"] for r in out),
        "max_lambda_pyhessian_default_rel_err": max(r["lambda_max_pyhessian_default_rel_err"] for r in out),
        "max_trace_z": max(r["trace_z"] for r in out),
        "median_trace_se_ratio_loop_over_ours": float(np.median([r["trace_loop_se"] / r["trace_ours_se"]
                                                                 for r in out if r["trace_ours_se"] > 0])),
    }
    if floor:
        summary.update(max_lambda_rel_diff_floor=max(r["lambda_max_rel_diff_floor"] for r in out),
                       max_trace_z_floor=max(r["trace_z_floor"] for r in out))
    return [*out, summary]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="cnn,resnet18s")
    p.add_argument("--epoch", type=int, default=5, help="checkpoint of the default 30-epoch digits recipe")
    p.add_argument("--n", type=int, default=512, help="images of the Hessian batch (both methods)")
    p.add_argument("--no-floor", action="store_true", help="skip the reference's second seed (the noise floor)")
    a = p.parse_args()
    store = Store()
    path = Path(__file__).parent / "results" / "curvature_speed.jsonl"
    for name in a.models.split(","):
        rows = bench_model(name, a.epoch, a.n, store, not a.no_floor)
        with path.open("a") as f:
            for row in rows:
                f.write(json.dumps({k: v if not isinstance(v, float) or math.isfinite(v) else None
                                    for k, v in row.items()}) + "\n")
        s = rows[-1]
        floor = (f" (loop vs itself {s['max_lambda_rel_diff_floor']:.1e}, z {s['max_trace_z_floor']:.2f})"
                 if "max_trace_z_floor" in s else "")
        print(f"{name}: {s['layers']} layers, {s['images']} images, epoch {s['epoch']}: loop {s['loop_s']} s "
              f"({s['loop_hvps']} HVPs) vs ours {s['ours_s']} s ({s['ours_hvps']} HVPs): {s['ratio']}x wall, "
              f"{s['cpu_ratio']}x CPU, {s['equal_se_ratio']}x at equal trace SE; lambda_max rel diff max "
              f"{s['max_lambda_rel_diff']:.1e}, trace z max {s['max_trace_z']:.2f}{floor}; trace SE loop/ours median "
              f"{s['median_trace_se_ratio_loop_over_ours']:.1f}x; PyHessian defaults {s['pyhessian_default_s']} s, "
              f"lambda_max error up to {s['max_lambda_pyhessian_default_rel_err']:.1e}; load {s['load_avg_start']} "
              f"-> {s['load_avg_end']}")


if __name__ == "__main__":
    main()
