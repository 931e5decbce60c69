"""`python -m landscape evaluate-ue`: train the victim on a poisoned training set and report clean test accuracy."""

from __future__ import annotations

import argparse

from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_experiment_args, experiment_specs, print_json, working
from landscape.commands.craft import add_poison_args, craft_cached, poison_spec
from landscape.config import PoisonSpec
from landscape.errors import SpecError
from landscape.experiment import get_training


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    add_poison_args(p)
    p.add_argument("--no-clean", action="store_true", help="skip the clean reference training")


def run(a: argparse.Namespace) -> int:
    (data, model, tspec), poison = experiment_specs(a), poison_spec(a)
    if poison.method == "clean":
        raise SpecError("evaluate-ue needs a poison method; use `train --method clean` for clean training")
    with working(a) as (store, device, progress):
        crafted, _, _ = craft_cached(data, poison, store=store, device=a.device, progress=progress)
        poisoned = get_training(data, model, tspec, poison, store=store, device=device, progress=progress)
        clean = None if a.no_clean else get_training(data, model, tspec, PoisonSpec(), store=store, device=device,
                                                     progress=progress)
    hp = poisoned.history
    summary = {
        "dataset": data.name, "model": model.name, "method": poison.method, "eps": crafted.meta["eps"],
        "norm": crafted.meta["norm"], "ratio": poison.ratio, "epochs": poisoned.epochs_done,
        "budget": crafted.meta["budget"], "craft_seconds": crafted.meta["seconds"],
        "poisoned_test_acc": float(hp["test_acc"][-1]), "poisoned_best_test_acc": float(hp["test_acc"].max()),
        "poisoned_train_acc": float(hp["train_acc"][-1]), "train_seconds": float(hp["seconds"].sum()),
        "clean_test_acc": None if clean is None else float(clean.history["test_acc"][-1]),
        "diverged": poisoned.diverged,
    }
    if clean is not None:
        summary["drop_points"] = 100 * (summary["clean_test_acc"] - summary["poisoned_test_acc"])
    if a.json:
        print_json(summary)
        return 0
    print(f"{poison.method} on {data.name} ({crafted.meta['norm']} eps {crafted.meta['eps']:.4g}, "
          f"ratio {poison.ratio}),"
          f" victim {model.name}, {poisoned.epochs_done} epochs")
    print(f"  clean test accuracy of the poisoned model: {summary['poisoned_test_acc']:.3f} "
          f"(best epoch {summary['poisoned_best_test_acc']:.3f}; train accuracy {summary['poisoned_train_acc']:.3f})")
    if clean is not None:
        print(f"  clean model: {summary['clean_test_acc']:.3f}  ->  drop {summary['drop_points']:.1f} points")
    if poisoned.diverged:
        print(f"warning: {poisoned.diverged}")
    return 1 if poisoned.diverged else 0


COMMANDS.register("evaluate-ue")(Command("train on a poisoned set and report the victim's clean test accuracy",
                                         add_arguments, run))
