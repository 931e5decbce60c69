"""Shared helpers of the UE benchmarks: craft + train one victim, timing both, and table formatting."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch

from landscape.config import DataSpec, PoisonSpec, TrainSpec
from landscape.data import Splits
from landscape.models import build_model
from landscape.poisons import craft
from landscape.train import train

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(splits: Splits, dataset: str, method: str, eps: float | None, seed: int, epochs: int,
            model: str = "cnn", device: str = "cpu") -> dict[str, Any]:
    """Craft `method` (seed `seed`; "clean" = none) and train a fresh victim on it; returns one result row."""
    row: dict[str, Any] = {"method": method, "seed": seed, "epochs": epochs, "model": model, "dataset": dataset}
    train_set = splits.train
    started = time.perf_counter()
    if method != "clean":
        crafted = craft(splits.train, PoisonSpec(method=method, eps=eps, seed=seed), dataset=dataset, device=device)
        train_set = crafted.apply(splits.train)
        m = crafted.meta
        row.update(eps=m["eps"], norm=m["norm"], granularity=m["granularity"], budget=m["budget"],
                   options=m["options"],
                   surrogate={k: v for k, v in m.items() if k.startswith("surrogate") or k == "loops"})
    else:
        row.update(eps=None, norm="none", granularity=None, budget=None)
    row["craft_seconds"] = time.perf_counter() - started
    net = build_model(model, splits.image_shape, splits.num_classes, seed=seed)
    started = time.perf_counter()
    result = train(net, train_set, splits.test, TrainSpec(epochs=epochs, seed=seed, checkpoint_every=epochs),
                   device=device)
    row["train_seconds"] = time.perf_counter() - started
    h = result.history
    row.update(test_acc=float(h["test_acc"][-1]), best_test_acc=float(h["test_acc"].max()),
               train_acc=float(h["train_acc"][-1]), diverged=result.diverged)
    return row


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for row in rows:
            fh.write(json.dumps(row, default=str) + "\n")


def load_splits(dataset: str, n_train: int | None = None) -> Splits:
    from landscape.data import load_data

    return load_data(DataSpec(name=dataset, n_train=n_train))


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
