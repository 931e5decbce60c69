"""Shared helpers of the UE benchmarks: craft + train one victim, timing both, and table formatting."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import torch

from landscape.config import DataSpec, PoisonSpec, TrainSpec, freeze_options
from landscape.data import Splits
from landscape.models import build_model
from landscape.poisons import craft
from landscape.train import train

RESULTS = Path(__file__).resolve().parent / "results"


def run_one(splits: Splits, dataset: str, method: str, eps: float | None, seed: int, epochs: int,
            model: str = "cnn", device: str = "cpu", *, defaults_of: str | None = None,
            options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Craft `method` (seed `seed`; "clean" = none) and train a fresh victim on it; returns one result row.

    `defaults_of` names the data set whose poison-defaults family supplies the options that `options` does not
    set (None = `dataset`'s own family).
    """
    row: dict[str, Any] = {"method": method, "seed": seed, "epochs": epochs, "model": model, "dataset": dataset,
                           "poison_defaults_of": defaults_of or dataset}
    train_set = splits.train
    started = time.perf_counter()
    if method != "clean":
        spec = PoisonSpec(method=method, eps=eps, seed=seed, options=freeze_options(options))
        crafted = craft(splits.train, spec, dataset=defaults_of or dataset, device=device)
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


def add_poison_arguments(p: argparse.ArgumentParser) -> None:
    """The victim model and where the poison options come from (shared by the UE benchmarks)."""
    p.add_argument("--model", default="cnn", help="victim model")
    p.add_argument("--defaults-of", default=None, metavar="DATASET",
                   help="craft with the poison defaults of this data set's family (default: --dataset's own); "
                        "for sweeping a data set before it has a family of its own")
    p.add_argument("--option", action="append", default=[], metavar="METHOD:NAME=VALUE",
                   help="set one method option, e.g. lsp:patch=7 or em:surrogate=lenet5 (repeatable)")


def _value(text: str) -> Any:
    try:
        return json.loads(text)  # 7, 0.5, true
    except json.JSONDecodeError:
        return text  # a plain string such as lenet5


def method_options(items: list[str]) -> dict[str, dict[str, Any]]:
    """`["lsp:patch=7", "em:surrogate=lenet5"]` -> `{"lsp": {"patch": 7}, "em": {"surrogate": "lenet5"}}`."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        method, sep, rest = item.partition(":")
        name, sep2, value = rest.partition("=")
        if not (sep and sep2 and method and name):
            raise SystemExit(f"--option {item!r} must look like METHOD:NAME=VALUE, e.g. lsp:patch=7")
        out.setdefault(method, {})[name] = _value(value)
    return out


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
