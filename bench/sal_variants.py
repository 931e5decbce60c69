"""SAL: other settings of the batched engine against the paper preset values stored by `sal_speed.py --floor`.

`sal_speed.py` spends ~95% of its time in the paper preset. This script reuses its stored per-epoch paper
SAL (seed 0 and seed 1) and measures only the candidate settings, on the same checkpoints (the runs are
loaded from the store, or retrained bit-identically on the CPU with the same thread count). For each
candidate it prints its SAL CPU seconds (all epochs of both runs), the mean per-epoch Spearman against the
paper preset (seed 0 and seed 1), the same restricted to the epochs where the paper preset reproduces its own
layer ranking across seeds (Spearman >= 0.9), and UD.

Usage:
    python bench/sal_speed.py --floor --threads 1          # once: the reference values
    python bench/sal_variants.py "rounds=2" "rounds=4,lr=0.2" "eval_size=512,rounds=4"

A candidate is a comma-separated list of `SALSpec` fields over the fast default. Results are appended to
bench/results/sal_variants.jsonl.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sal_speed import RESULTS, measure, spearman_rows

from landscape.config import DataSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.experiment import get_poisoned_train, get_splits, get_training
from landscape.models import build_model
from landscape.store import Store
from landscape.ud import unlearnable_distance

RUNS = ("clean", "poisoned")


def parse_candidate(text: str) -> SALSpec:
    """"rounds=4,lr=0.2" -> SALSpec() with those fields, each cast to the type of the field's default."""
    base = SALSpec()
    fields = {f.name for f in dataclasses.fields(base)}
    changes: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, _, value = item.partition("=")
        if key not in fields:
            raise SystemExit(f"unknown SALSpec field {key!r}; valid: {sorted(fields)}")
        default = getattr(base, key)
        if value == "None":
            changes[key] = None
        elif isinstance(default, bool):
            changes[key] = value == "True"
        elif isinstance(default, int) or default is None:
            changes[key] = int(value)
        elif isinstance(default, float):
            changes[key] = float(value)
        else:
            changes[key] = value
    return base.replace(**changes)


def load_reference(path: Path) -> tuple[dict[str, dict[str, np.ndarray]], dict[str, Any]]:
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    summary = next(r for r in rows if r.get("summary"))
    if "paper_seed1_vs_paper" not in summary:
        raise SystemExit(f"{path} has no seed-1 paper values; run `python bench/sal_speed.py --floor` first")
    per_epoch = [r for r in rows if "run" in r]
    ref = {k: {run: np.array([r[k]["sal"] for r in per_epoch if r["run"] == run]) for run in RUNS}
           for k in ("paper", "paper_seed1")}
    return ref, summary


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("candidates", nargs="+", help='SALSpec changes over the fast default, e.g. "rounds=4,lr=0.2"')
    p.add_argument("--reference", default=str(RESULTS / "sal_speed.jsonl"))
    p.add_argument("--store", default=None)
    a = p.parse_args()
    ref, summary = load_reference(Path(a.reference))
    torch.set_num_threads(summary["threads"])
    store = Store(a.store)
    data, model_spec = DataSpec(), ModelSpec()
    train_spec = TrainSpec(epochs=summary["epochs"], seed=summary["seed"])
    poison = PoisonSpec(method=summary["method"], seed=summary["seed"])
    runs = {"clean": get_training(data, model_spec, train_spec, store=store),
            "poisoned": get_training(data, model_spec, train_spec, poison, store=store)}
    sets = {"clean": get_splits(data).train, "poisoned": get_poisoned_train(data, poison, store=store)}
    splits = get_splits(data)
    net = build_model(model_spec.name, splits.image_shape, splits.num_classes, seed=summary["seed"])
    reproducible = {run: np.nan_to_num(spearman_rows(ref["paper"][run], ref["paper_seed1"][run]), nan=-1) >= 0.9
                    for run in RUNS}
    ud_paper = unlearnable_distance(ref["paper"]["clean"], ref["paper"]["poisoned"]).ud
    print(f"reference: paper seed 0 vs seed 1 mean Spearman "
          f"{summary['paper_seed1_vs_paper']['spearman_mean']:.3f}; UD paper {ud_paper:.3f}; paper SAL CPU "
          f"{summary['seconds']['paper']['cpu']:.0f} s; reproducible epochs "
          f"{int(reproducible['clean'].sum())} + {int(reproducible['poisoned'].sum())}")
    for text in a.candidates:
        spec = parse_candidate(text)
        values: dict[str, np.ndarray] = {}
        cpu = 0.0
        started = time.perf_counter()
        for run_name, run in runs.items():
            rows = []
            for epoch in [e for e in run.checkpoint_epochs if e > 0]:
                sal, _, seconds = measure(run, sets[run_name], spec, train_spec, epoch, net, torch.device("cpu"))
                rows.append(sal)
                cpu += seconds
            values[run_name] = np.array(rows)
        rho = {k: np.concatenate([spearman_rows(ref[k][run], values[run]) for run in RUNS]) for k in ref}
        kept = np.concatenate([spearman_rows(ref["paper"][run], values[run])[reproducible[run]] for run in RUNS])
        ud = unlearnable_distance(values["clean"], values["poisoned"]).ud
        row = {"candidate": text, "spec": spec.to_dict(), "cpu_s": round(cpu, 1),
               "wall_s": round(time.perf_counter() - started, 1),
               "speed_ratio_cpu": round(summary["seconds"]["paper"]["cpu"] / cpu, 2),
               "spearman_mean_paper": float(np.nanmean(rho["paper"])),
               "spearman_mean_paper_seed1": float(np.nanmean(rho["paper_seed1"])),
               "spearman_mean_reproducible": float(np.nanmean(kept)), "ud": ud, "ud_paper": ud_paper,
               "ud_abs_diff": abs(ud - ud_paper)}
        print(f"{text:40s} CPU {cpu:6.1f} s (x{row['speed_ratio_cpu']:.1f})  Spearman vs paper "
              f"{row['spearman_mean_paper']:.3f} / seed 1 {row['spearman_mean_paper_seed1']:.3f}  reproducible "
              f"epochs {row['spearman_mean_reproducible']:.3f}  UD {ud:.3f} (|diff| {row['ud_abs_diff']:.3f})",
              flush=True)
        with (RESULTS / "sal_variants.jsonl").open("a") as fh:
            fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
