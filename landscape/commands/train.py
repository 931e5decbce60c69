"""`python -m landscape train`: train one model (clean or on a poison) and print its per-epoch summary."""

from __future__ import annotations

import argparse

from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_experiment_args, experiment_specs, print_json, working
from landscape.config import PoisonSpec
from landscape.experiment import get_training
from landscape.spec import plural

COLUMNS = ("train_loss", "train_acc", "test_loss", "test_acc")  # the per-epoch table, printed and in --json


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    p.add_argument("--method", default="clean", help="poison method to train on ('clean' = no poison)")


def run(a: argparse.Namespace) -> int:
    specs = (*experiment_specs(a), PoisonSpec(method=a.method))
    with working(a) as (store, device, progress):
        result = get_training(*specs, store=store, device=device, progress=progress)
    h = result.history
    summary = {
        "dataset": a.dataset, "model": a.model, "method": a.method, "device": str(device),
        "epochs_done": result.epochs_done, "diverged": result.diverged,
        "final": {k: float(v[-1]) for k, v in h.items() if len(v)},
        "best_test_acc": float(h["test_acc"].max()) if len(h["test_acc"]) else None,
        "seconds": float(h["seconds"].sum()),
        "epochs": [{"epoch": i + 1, **{k: float(h[k][i]) for k in COLUMNS}} for i in range(result.epochs_done)],
    }
    if a.json:
        print_json(summary)
    else:
        print(f"{'epoch':>5} {'train loss':>10} {'train acc':>9} {'test loss':>9} {'test acc':>8}")
        for i in range(result.epochs_done):
            print(f"{i + 1:>5} {h['train_loss'][i]:>10.4f} {h['train_acc'][i]:>9.3f} "
                  f"{h['test_loss'][i]:>9.4f} {h['test_acc'][i]:>8.3f}")
        if result.epochs_done:  # a run that diverged in its first epoch has no accuracy to report
            print(f"clean test accuracy {summary['final']['test_acc']:.3f} after {plural(result.epochs_done, 'epoch')} "
                  f"({summary['seconds']:.1f} s training on {device})")
        if result.diverged:
            print(f"warning: {result.diverged}")
    return 1 if result.diverged else 0


COMMANDS.register("train")(Command("train a model and report per-epoch loss/accuracy", add_arguments, run))
