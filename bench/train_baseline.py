"""Clean digits baseline: default TrainSpec, 3 seeds; prints test accuracy mean±std and CPU wall time.

Usage: python bench/train_baseline.py [--model cnn] [--seeds 3] [--epochs 30]
Writes one JSON line per seed to bench/results/train_baseline.jsonl.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from landscape.config import DataSpec, TrainSpec
from landscape.data import load_data
from landscape.models import build_model
from landscape.train import train


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default="cnn")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=TrainSpec().epochs)
    a = p.parse_args()
    splits = load_data(DataSpec())
    rows = []
    for seed in range(a.seeds):
        spec = TrainSpec(epochs=a.epochs, seed=seed)
        model = build_model(a.model, splits.image_shape, splits.num_classes, seed=seed)
        started = time.perf_counter()
        result = train(model, splits.train, splits.test, spec)
        wall = time.perf_counter() - started
        rows.append({"model": a.model, "seed": seed, "epochs": a.epochs,
                     "test_acc": float(result.history["test_acc"][-1]),
                     "best_test_acc": float(result.history["test_acc"].max()), "wall_s": wall,
                     "threads": torch.get_num_threads()})
        print(json.dumps(rows[-1]))
    out = Path(__file__).parent / "results" / "train_baseline.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    acc = np.array([r["test_acc"] for r in rows])
    wall = np.array([r["wall_s"] for r in rows])
    print(f"SUMMARY digits/{a.model} {a.epochs} epochs: clean test acc {acc.mean():.4f} ± {acc.std():.4f} "
          f"over {a.seeds} seeds; wall {wall.mean():.1f} s ± {wall.std():.1f} per run "
          f"({torch.get_num_threads()} threads)")


if __name__ == "__main__":
    main()
