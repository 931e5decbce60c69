"""Loss-surface speed: the classic per-point loop vs our batched evaluator, same plane, grid and data, one run.

(a) classic: for every grid point, build theta + a d1 + b d2, copy it into the model with `load_state_dict`,
    then loop a `DataLoader` (batch 128) over the evaluation set, summing loss and accuracy with `.item()`,
    as tomgoldstein/loss-landscape's `crunch`/`eval_loss` do (without MPI and h5 writes, which only slow it).
(b) ours: `landscape.surface.slice_2d`, batched (data batches outer, grid chunks inner, automatic chunk).

The grid is cut into row blocks and the two methods alternate block by block, so a change in machine
load during the run hits both alike. Reported: grid points per second of each, the ratio, the achieved
forward GFLOP/s (FLOPs of one image counted by `torch.utils.flop_counter`, x images x points / wall), the
machine's measured float32 matmul GFLOP/s (best of several 2048^2 products at the same thread count),
the agreement of the two (max |loss difference|), and the wall time of a 21x21 preview through
`slice_2d` end to end (first call, cold, and a second call). CPU time (`process_time`) is reported beside
wall time: on a shared machine wall times stretch with the load (printed as the load average), and
OpenMP threads that wait for a core spin, which hurts the many small operations of the classic loop
most, so the wall ratio is inflated there; with `--threads 1` the CPU-time ratio is the cleanest measure.

Usage: python bench/surface_speed.py [--resolution 51] [--preview 21] [--model cnn] [--threads N]
       [--blocks 3] [--trained]
Writes one JSON line to bench/results/surface_speed.jsonl and prints a one-line summary.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, TensorDataset

from landscape import directions as D
from landscape.config import DataSpec, ModelSpec, TrainSpec
from landscape.data import load_data
from landscape.models import build_model
from landscape.surface import estimate_cost, slice_2d


def classic_grid(model, center, d1, d2, alpha, beta, x, y, batch_size=128):
    """The classic tool's loop: per point, load_state_dict then a DataLoader pass."""
    net = copy.deepcopy(model).eval()
    loader = DataLoader(TensorDataset(x, y), batch_size=batch_size, shuffle=False)
    loss = np.zeros((len(alpha), len(beta)))
    acc = np.zeros_like(loss)
    for i, a in enumerate(alpha):
        for j, b in enumerate(beta):
            state = {k: (v + float(a) * d1[k] + float(b) * d2[k]) if k in d1 else v for k, v in center.items()}
            net.load_state_dict(state)
            total, correct, n = 0.0, 0, 0
            with torch.no_grad():
                for xb, yb in loader:
                    out = net(xb)
                    total += F.cross_entropy(out, yb).item() * len(yb)
                    correct += out.argmax(1).eq(yb).sum().item()
                    n += len(yb)
            loss[i, j], acc[i, j] = total / n, correct / n
    return loss, acc


def matmul_gflops(n=2048, repeats=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - started)
    return 2 * n ** 3 / best / 1e9


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn")
    p.add_argument("--resolution", type=int, default=51)
    p.add_argument("--preview", type=int, default=21)
    p.add_argument("--batch-size", type=int, default=128, help="the classic loop's DataLoader batch")
    p.add_argument("--blocks", type=int, default=3, help="row blocks the two methods alternate over")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--trained", action="store_true", help="slice the trained default model (trains or loads it)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    load_start = os.getloadavg()[0]
    splits = load_data(DataSpec())
    x, y = splits.test.x, splits.test.y
    model = build_model(a.model, splits.image_shape, splits.num_classes, seed=0)
    if a.trained:
        from landscape.experiment import get_training
        from landscape.store import Store

        run = get_training(DataSpec(), ModelSpec(name=a.model), TrainSpec(), None, store=Store())
        model.load_state_dict(run.final_state)
    model.eval()
    center = D.float_state(model.state_dict())
    plane = D.random_plane(center, D.parameter_names(model), torch.Generator().manual_seed(0))
    grid = np.linspace(-1, 1, a.resolution)
    n_points = a.resolution ** 2
    peak = matmul_gflops()
    est = estimate_cost(model, n_points, (x, y), calibrate=False)
    flop_per_point = est.gflop * 1e9 / n_points

    # (a) and (b), alternating over row blocks of the same grid
    classic_s = ours_s = classic_cpu = ours_cpu = 0.0
    loss_a = np.zeros((a.resolution, a.resolution))
    loss_b = np.zeros_like(loss_a)
    chunk = None
    for rows in np.array_split(np.arange(a.resolution), a.blocks):
        started, cpu = time.perf_counter(), time.process_time()
        loss_a[rows], _ = classic_grid(model, center, plane.d1, plane.d2, grid[rows], grid, x, y, a.batch_size)
        classic_s += time.perf_counter() - started
        classic_cpu += time.process_time() - cpu
        started, cpu = time.perf_counter(), time.process_time()
        s = slice_2d(model, plane.d1, plane.d2, (x, y), grid[rows], grid, center=center)
        ours_s += time.perf_counter() - started
        ours_cpu += time.process_time() - cpu
        loss_b[rows], chunk = s.loss, s.info["chunk"]
    diff = float(np.nanmax(np.abs(loss_a - loss_b)))

    # the preview, end to end, first (cold) and second call
    pgrid = np.linspace(-1, 1, a.preview)
    preview = []
    for _ in range(2):
        started = time.perf_counter()
        slice_2d(model, plane.d1, plane.d2, (x, y), pgrid, pgrid, center=center)
        preview.append(time.perf_counter() - started)
    peak = max(peak, matmul_gflops())

    row = {
        "model": a.model, "trained": a.trained, "grid": f"{a.resolution}x{a.resolution}", "images": len(y),
        "threads": torch.get_num_threads(), "load_avg_start": round(load_start, 2),
        "load_avg_end": round(os.getloadavg()[0], 2),
        "classic_s": round(classic_s, 3), "ours_s": round(ours_s, 3),
        "classic_points_per_s": round(n_points / classic_s, 2), "ours_points_per_s": round(n_points / ours_s, 2),
        "ratio": round(classic_s / ours_s, 2),
        "classic_cpu_s": round(classic_cpu, 3), "ours_cpu_s": round(ours_cpu, 3),
        "cpu_ratio": round(classic_cpu / ours_cpu, 2),
        "classic_gflops": round(flop_per_point * n_points / classic_s / 1e9, 2),
        "ours_gflops": round(flop_per_point * n_points / ours_s / 1e9, 2),
        "matmul_gflops": round(peak, 1), "mflop_per_point": round(flop_per_point / 1e6, 2),
        "chunk": chunk, "max_abs_loss_diff": diff,
        "preview": f"{a.preview}x{a.preview}", "preview_cold_s": round(preview[0], 3),
        "preview_warm_s": round(preview[1], 3),
    }
    print(json.dumps(row))
    out = Path(__file__).parent / "results" / "surface_speed.jsonl"
    out.parent.mkdir(exist_ok=True)
    with open(out, "a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(f"SUMMARY digits/{a.model} {row['grid']} x {len(y)} images: classic {row['classic_points_per_s']} pts/s, "
          f"ours {row['ours_points_per_s']} pts/s, ratio {row['ratio']}x (CPU time {row['cpu_ratio']}x); "
          f"achieved {row['ours_gflops']} GFLOP/s "
          f"(classic {row['classic_gflops']}) vs matmul {row['matmul_gflops']} GFLOP/s; max |dloss| {diff:.1e}; "
          f"{row['preview']} preview {row['preview_cold_s']} s cold, {row['preview_warm_s']} s warm; "
          f"{row['threads']} threads, load average {row['load_avg_start']} -> {row['load_avg_end']}")


if __name__ == "__main__":
    main()
