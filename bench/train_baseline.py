"""Clean digits baseline: default TrainSpec (or a model's documented recipe), 3 seeds, several models in one run.

Prints test accuracy mean ± std and the wall time per epoch of each model (the models alternate seed by seed,
so a change in machine load hits them alike; the load average is printed).

Usage: python bench/train_baseline.py [--models cnn,resnet18s] [--seeds 3] [--epochs 30]
Writes one JSON line per (model, seed) and one summary line per model to bench/results/train_baseline.jsonl.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from landscape.config import DataSpec, TrainSpec
from landscape.data import load_data
from landscape.device import CPU_THREADS
from landscape.models import build_model
from landscape.train import train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--models", default="cnn", help="comma-separated model names")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=TrainSpec().epochs)
    a = p.parse_args()
    models = a.models.split(",")
    splits = load_data(DataSpec())
    rows = []
    for seed in range(a.seeds):
        for name in models:
            spec = TrainSpec(epochs=a.epochs, seed=seed)
            model = build_model(name, splits.image_shape, splits.num_classes, seed=seed)
            started = time.perf_counter()
            result = train(model, splits.train, splits.test, spec)
            wall = time.perf_counter() - started
            rows.append({"model": name, "seed": seed, "epochs": a.epochs,
                         "test_acc": float(result.history["test_acc"][-1]),
                         "best_test_acc": float(result.history["test_acc"].max()), "wall_s": wall,
                         "s_per_epoch": wall / a.epochs, "train_threads": CPU_THREADS,
                         "load": os.getloadavg()[0]})
            print(json.dumps(rows[-1]), flush=True)
    summaries = []
    for name in models:
        acc = np.array([r["test_acc"] for r in rows if r["model"] == name])
        per_epoch = np.array([r["s_per_epoch"] for r in rows if r["model"] == name])
        summaries.append({"summary": True, "model": name, "seeds": a.seeds, "epochs": a.epochs,
                          "test_acc_mean": float(acc.mean()), "test_acc_std": float(acc.std()),
                          "test_acc_min": float(acc.min()), "s_per_epoch_mean": float(per_epoch.mean())})
        print(f"SUMMARY digits/{name} {a.epochs} epochs: clean test acc {acc.mean():.4f} ± {acc.std():.4f} "
              f"(min {acc.min():.4f}) over {a.seeds} seeds; {per_epoch.mean():.3f} s per epoch "
              f"({CPU_THREADS} training thread, load {os.getloadavg()[0]:.2f})")
    out = Path(__file__).parent / "results" / "train_baseline.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in [*rows, *summaries]))


if __name__ == "__main__":
    main()
