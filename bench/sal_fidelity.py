"""SAL fidelity (issue #14, acceptance 3): the fast default against the paper preset and the paper preset's own floor.

For one model (`--model`, e.g. `cnn` or `resnet18s`), a clean and a poisoned digits run (trained or loaded from
the store, no SAL), and each chosen epoch's checkpoint, measures SAL with the paper preset (seed 0), the paper
preset with seeds 1 and 2 (its noise floor, and a held-out copy of it) and the fast default (plus any
`--candidate` settings), one after the other on the same state and running baseline. Long studies run in
resumable chunks: each call measures the epochs of `--at` for the runs of `--runs` and APPENDS one JSON line
per (run, epoch) to `--out`;
`--summarize` then reads every row of that model/method/training length and reports:

- per run and epoch: the floor (Spearman of the paper preset's per-layer SAL, seed 0 vs seed 1) and each fast
  setting's Spearman against the paper preset (seed 0);
- on the epochs where the floor is >= `--threshold` (0.95): the mean floor, each setting's mean agreement,
  and whether agreement >= floor - 0.03 (the acceptance rule), with the cost ratio paper / setting (CPU s);
- the same rule against the held-out floor: seed 2 vs seed 0 on the kept epochs. The epochs are kept for
  seed 1's agreement, so seed 1's mean on them is biased upward (on a 6-layer model Spearman moves in steps of
  1/35 x sum d^2, and ">= 0.95" keeps only the epochs where seed 1 happened to rank every layer alike: mean 1.0);
  a third seed measures the preset's reproducibility on those epochs without that selection.

Usage:
    python bench/sal_fidelity.py --model cnn --at 1-10 --runs clean
    python bench/sal_fidelity.py --model cnn --at 1-10 --runs poisoned
    python bench/sal_fidelity.py --model cnn --summarize
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sal_speed import RESULTS, measure, spearman_rows
from sal_variants import parse_candidate

from landscape.bench import machine_description
from landscape.config import DataSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.experiment import get_poisoned_train, get_splits, get_training
from landscape.models import build_model
from landscape.store import Store


def epochs_of(text: str) -> list[int]:
    """"1-3,5" -> [1, 2, 3, 5]."""
    out: list[int] = []
    for part in filter(None, text.split(",")):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


def measure_chunk(a: argparse.Namespace) -> None:
    store = Store(a.store)
    data, model_spec = DataSpec(), ModelSpec(name=a.model)
    train_spec = TrainSpec(epochs=a.epochs, seed=a.seed)
    poison = PoisonSpec(method=a.method, seed=a.seed)
    splits = get_splits(data)
    net = build_model(a.model, splits.image_shape, splits.num_classes, seed=a.seed)
    paper = SALSpec.preset("paper")
    specs = {"paper": paper, "paper_seed1": paper.replace(seed=1), "paper_seed2": paper.replace(seed=2),
             "fast": SALSpec(), **{text: parse_candidate(text) for text in a.candidate}}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    reused = reusable_rows(Path(a.reuse), a) if a.reuse else {}
    for run_name in a.runs.split(","):
        p = None if run_name == "clean" else poison
        run = get_training(data, model_spec, train_spec, p, store=store)
        images = splits.train if p is None else get_poisoned_train(data, poison, store=store)
        for epoch in epochs_of(a.at):
            row: dict[str, Any] = {"model": a.model, "method": a.method, "train_epochs": a.epochs, "seed": a.seed,
                                   "run": run_name, "epoch": epoch, "threads": a.threads,
                                   "test_acc": float(run.history["test_acc"][epoch - 1])}
            for name, spec in specs.items():
                earlier = reused.get((run_name, epoch), {}).get(name)
                if earlier is not None and earlier["spec"] == spec.to_dict():
                    row[name] = earlier  # the same setting on the same checkpoint, measured before
                    continue
                values, wall, cpu = measure(run, images, spec, train_spec, epoch, net, torch.device("cpu"))
                row[name] = {"spec": spec.to_dict(), "sal": values.tolist(), "wall": wall, "cpu": cpu}
            row["time"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            with out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
            floor = spearman_rows(np.array([row["paper"]["sal"]]), np.array([row["paper_seed1"]["sal"]]))[0]
            fast = spearman_rows(np.array([row["paper"]["sal"]]), np.array([row["fast"]["sal"]]))[0]
            print(f"{a.model} {run_name} epoch {epoch}: floor {floor:.3f}, fast {fast:.3f}; paper "
                  f"{row['paper']['cpu']:.1f} s, fast {row['fast']['cpu']:.2f} s CPU", flush=True)


def reusable_rows(path: Path, a: argparse.Namespace) -> dict[tuple[str, int], dict[str, Any]]:
    """The rows of `path` for this model/method/training length/seed, by (run, epoch): their settings are reused.

    SAL is deterministic on one machine (one thread, seeded), so a setting measured on the same stored checkpoint
    gives the same values again; only its CPU seconds would differ (they are kept as measured then).
    """
    rows = {}
    for line in path.read_text().splitlines():
        r = json.loads(line)
        if (r.get("model"), r.get("method"), r.get("train_epochs"), r.get("seed")) == (a.model, a.method, a.epochs,
                                                                                      a.seed):
            rows[(r["run"], r["epoch"])] = r
    return rows


def summarize(a: argparse.Namespace) -> dict[str, Any]:
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for line in Path(a.out).read_text().splitlines():
        r = json.loads(line)
        if (r.get("model"), r.get("method"), r.get("train_epochs"), r.get("seed")) == (a.model, a.method, a.epochs,
                                                                                      a.seed):
            rows[(r["run"], r["epoch"])] = r  # the latest measurement of a cell wins
    if not rows:
        raise SystemExit(f"no rows for {a.model}/{a.method}/{a.epochs} epochs in {a.out}")
    cells = sorted(rows)
    settings = [k for k in rows[cells[0]] if isinstance(rows[cells[0]][k], dict) and "sal" in rows[cells[0]][k]
                and k not in ("paper", "paper_seed1", "paper_seed2")]

    def rho(r: dict[str, Any], name: str) -> float:
        return float(spearman_rows(np.array([r["paper"]["sal"]]), np.array([r[name]["sal"]]))[0])

    floor = np.array([rho(rows[c], "paper_seed1") for c in cells])
    keep = np.nan_to_num(floor, nan=-1.0) >= a.threshold
    paper_cpu = sum(rows[c]["paper"]["cpu"] for c in cells)
    summary: dict[str, Any] = {
        "summary": True, "model": a.model, "method": a.method, "train_epochs": a.epochs, "seed": a.seed,
        "threshold": a.threshold, "cells": [f"{r}:{e}" for r, e in cells], "floor": floor.tolist(),
        "kept": [f"{r}:{e}" for (r, e), k in zip(cells, keep, strict=True) if k],
        "floor_mean_kept": float(floor[keep].mean()) if keep.any() else None,
        "floor_mean_all": float(np.nanmean(floor)), "paper_cpu_s": paper_cpu, "settings": {},
        # the floor on the kept cells from a third seed: the cells were kept for seed 1's agreement, so seed 1's
        # mean there is biased upward (selected on its own noise); seed 2 vs seed 0 is not
        "floor_heldout_kept": (float(np.nanmean([rho(rows[c], "paper_seed2") for c, k in zip(cells, keep, strict=True)
                                                 if k])) if keep.any() and all("paper_seed2" in rows[c] for c in cells)
                               else None),
        "machine": machine_description()}
    for name in settings:
        agree = np.array([rho(rows[c], name) for c in cells])
        cpu = sum(rows[c][name]["cpu"] for c in cells)
        kept_mean = float(np.nanmean(agree[keep])) if keep.any() else None
        summary["settings"][name] = {
            "spec": rows[cells[0]][name]["spec"], "agreement": agree.tolist(), "agreement_mean_kept": kept_mean,
            "agreement_mean_all": float(np.nanmean(agree)), "cpu_s": cpu, "cost_ratio": paper_cpu / cpu,
            "passes": None if kept_mean is None else bool(kept_mean >= summary["floor_mean_kept"] - 0.03
                                                           and paper_cpu / cpu >= 10),
            "passes_heldout": None if kept_mean is None or summary["floor_heldout_kept"] is None else bool(
                kept_mean >= summary["floor_heldout_kept"] - 0.03 and paper_cpu / cpu >= 10)}
    print(f"{a.model} ({a.method}, {a.epochs} epochs): {len(cells)} cells, floor mean {summary['floor_mean_all']:.3f};"
          f" {int(keep.sum())} cells with floor >= {a.threshold} (mean {summary['floor_mean_kept']}; held-out seed 2 "
          f"on those cells: {summary['floor_heldout_kept']})")
    for name, s in summary["settings"].items():
        print(f"  {name:30s} agreement on those {s['agreement_mean_kept']}, all {s['agreement_mean_all']:.3f}; "
              f"cost x{s['cost_ratio']:.1f} less; passes: {s['passes']} (against the held-out floor: "
              f"{s['passes_heldout']})")
    with Path(a.out).with_suffix(".summary.jsonl").open("a") as fh:
        fh.write(json.dumps(summary) + "\n")
    return summary


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="cnn")
    p.add_argument("--method", default="em")
    p.add_argument("--epochs", type=int, default=10, help="training epochs of the runs")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--at", default="1-10", help="epochs to measure in this chunk, e.g. 1-5,8")
    p.add_argument("--runs", default="clean,poisoned")
    p.add_argument("--candidate", action="append", default=[], help='other fast settings, e.g. "rounds=4"')
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--threshold", type=float, default=0.95)
    p.add_argument("--summarize", action="store_true")
    p.add_argument("--store", default=None)
    p.add_argument("--out", default=str(RESULTS / "sal_fidelity.jsonl"))
    p.add_argument("--reuse", default=None, help="an earlier JSONL of this bench: settings it measured on the same "
                   "checkpoints are copied from it, not measured again (same machine: the runs and SAL are "
                   "deterministic)")
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    if a.summarize:
        summarize(a)
    else:
        measure_chunk(a)


if __name__ == "__main__":
    main()
