"""`python -m landscape evaluate-ue`: train the victim on a poisoned training set and report clean test accuracy."""

from __future__ import annotations

import argparse
from typing import Any

from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_experiment_args, experiment_specs, print_json, working
from landscape.commands.craft import add_poison_args, craft_cached, poison_spec, require_poison
from landscape.config import PoisonSpec
from landscape.experiment import get_training
from landscape.spec import plural


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    add_poison_args(p)
    p.add_argument("--no-clean", action="store_true", help="skip the clean reference training")


def run(a: argparse.Namespace) -> int:
    (data, model, tspec), poison = experiment_specs(a), poison_spec(a)
    require_poison("evaluate-ue", poison, " (for clean training: train --method clean)")
    with working(a) as (store, device, progress):
        crafted, _, _ = craft_cached(data, poison, store=store, device=a.device, progress=progress)
        poisoned = get_training(data, model, tspec, poison, store=store, device=device, progress=progress)
        clean = None if a.no_clean else get_training(data, model, tspec, PoisonSpec(), store=store, device=device,
                                                     progress=progress)
    hp = poisoned.history
    diverged = [f"{label} run: {r.diverged}" for label, r in (("poisoned", poisoned), ("clean", clean))
                if r is not None and r.diverged]
    summary = {
        "dataset": data.name, "model": model.name, "method": poison.method, "eps": crafted.meta["eps"],
        "norm": crafted.meta["norm"], "ratio": crafted.meta["ratio"], "epochs": poisoned.epochs_done,
        "budget": crafted.meta["budget"], "craft_seconds": crafted.meta["seconds"],
        "poisoned_test_acc": _last(hp["test_acc"]),
        "poisoned_best_test_acc": float(hp["test_acc"].max()) if len(hp["test_acc"]) else None,
        "poisoned_train_acc": _last(hp["train_acc"]), "train_seconds": float(hp["seconds"].sum()),
        "clean_test_acc": None if clean is None else _last(clean.history["test_acc"]),
        "diverged": poisoned.diverged,
    }
    if clean is not None:
        summary["clean_diverged"] = clean.diverged
        both = summary["clean_test_acc"] is not None and summary["poisoned_test_acc"] is not None
        summary["drop_points"] = 100 * (summary["clean_test_acc"] - summary["poisoned_test_acc"]) if both else None
    if a.json:
        print_json(summary)
        return 1 if diverged else 0
    eps = crafted.meta["eps"]  # None for provided images: no budget was set
    budget = "no budget" if eps is None else f"{crafted.meta['norm']} eps {eps:.4g}"
    print(f"{poison.method} on {data.name} ({budget}, "
          f"ratio {round(crafted.meta['ratio'], 4)}),"
          f" victim {model.name}, {plural(poisoned.epochs_done, 'epoch')}")
    if poisoned.epochs_done:
        print(f"  clean test accuracy of the poisoned model: {summary['poisoned_test_acc']:.3f} (best epoch "
              f"{summary['poisoned_best_test_acc']:.3f}; train accuracy {summary['poisoned_train_acc']:.3f})")
    if summary.get("drop_points") is not None:
        print(f"  clean model: {summary['clean_test_acc']:.3f}  ->  drop {summary['drop_points']:.1f} points")
    for message in diverged:
        print(f"warning: {message}")
    return 1 if diverged else 0


def _last(values: Any) -> float | None:
    """The last epoch's value of a history array, None when no epoch finished (a run diverged in its first)."""
    return float(values[-1]) if len(values) else None


COMMANDS.register("evaluate-ue")(Command("train on a poisoned set and report the victim's clean test accuracy",
                                         add_arguments, run))
