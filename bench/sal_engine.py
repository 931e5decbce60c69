"""SAL's batched engine on `landscape.copies` against the engine of main at 2a70475, side by side, same values.

Loads (or trains) a clean digits run of `--model` (default `resnet18s`, the 21-layer ResNet-18 topology), then,
for each chosen epoch's checkpoint, measures SAL with the fast default (`SALSpec()`) through both engines, one
after the other on the same state (order alternating per epoch, so load on a shared machine hits both alike):

- speed: wall and CPU seconds of each engine (float32, as SAL runs), and the ratio old / new;
- equality: the same measurement in float64 (model and data cast), max |SAL_new - SAL_old| relative to
  max |SAL_old| of that epoch (acceptance: <= 1e-5), and the float32 difference for information.

The old engine is the file `landscape/sal.py` of commit 2a70475, read with `git show` and imported as its own
module (it runs on today's config, models and trainer, which it only imports).

Usage: `python bench/sal_engine.py [--model resnet18s] [--epochs 10] [--at 1,5,10] [--threads 1]`; one JSON line
per epoch and a summary line are appended to bench/results/sal_engine.jsonl.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch

from landscape import sal as new_engine
from landscape.bench import machine_description
from landscape.config import DataSpec, ModelSpec, SALSpec, TrainSpec
from landscape.experiment import get_splits, get_training
from landscape.models import build_model
from landscape.sal_cost import suffix_flops
from landscape.store import Store

RESULTS = Path(__file__).resolve().parent / "results"
OLD_COMMIT = "2a70475"


def old_engine() -> ModuleType:
    """`landscape/sal.py` as of `OLD_COMMIT`, imported as the module `sal_2a70475`."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(["git", "show", f"{OLD_COMMIT}:landscape/sal.py"], cwd=root, check=True,
                            capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"sal_{OLD_COMMIT}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[path.stem] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def timed(engine: ModuleType, model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, spec: SALSpec,
          train_spec: TrainSpec, running: tuple[float, float], epoch: int) -> tuple[np.ndarray, float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = engine.model_sal(model, x, y, spec, train_spec=train_spec, running=running, epoch=epoch)
    return np.array([r.sal for r in out]), time.perf_counter() - wall, time.process_time() - cpu


def flop_ceiling(net: torch.nn.Module, x1: torch.Tensor, copies: int = 2) -> dict[str, float]:
    """The most any engine that skips the frozen prefix can gain over one that runs it, counted in FLOPs.

    Per weight layer l, S_l = the forward FLOPs of one image `x1` (1, C, H, W) from l on
    (`landscape.sal_cost.suffix_flops`) and P_l = the FLOPs before l. The old engine runs, per SGD step of layer l,
    the prefix once (vmap leaves it unbatched: it does not depend on the copies) and the suffix for each of the
    `copies` stacked copies, forward and backward (~3x forward); the new engine the suffix only. So the ceilings:
    SGD steps sum(P + 3 G S) / sum(3 G S), evaluation passes sum(P + G S) / sum(G S), and for a baseline
    that ran the whole network forward and backward for every copy, sum(3 G (P + S)) / sum(3 G S).
    """
    suffix = list(suffix_flops(net, x1).values())
    total = max(suffix)  # the first layer's suffix is the whole network
    g, ps, ss = copies, sum(total - s for s in suffix), sum(suffix)
    return {"sgd_steps": (ps + 3 * g * ss) / (3 * g * ss), "evaluation": (ps + g * ss) / (g * ss),
            "whole_network": (ps + ss) / ss}


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(np.abs(b).max(), 1e-30))


def main(argv: list[str] | None = None) -> dict[str, Any]:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="resnet18s")
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--at", default="1,5,10", help="checkpoint epochs to measure")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--no-float64", action="store_true", help="skip the float64 equality check")
    p.add_argument("--store", default=None)
    p.add_argument("--out", default=str(RESULTS / "sal_engine.jsonl"))
    a = p.parse_args(argv)
    torch.set_num_threads(a.threads)
    old = old_engine()
    data, model_spec = DataSpec(), ModelSpec(name=a.model)
    train_spec = TrainSpec(epochs=a.epochs)
    run = get_training(data, model_spec, train_spec, store=Store(a.store))
    splits = get_splits(data)
    net = build_model(a.model, splits.image_shape, splits.num_classes)
    x, y = splits.train.x, splits.train.y
    spec = SALSpec()
    engines = {"old": old, "new": new_engine}
    secs = {k: {"wall": 0.0, "cpu": 0.0} for k in engines}
    rows = []
    for i, epoch in enumerate(int(e) for e in a.at.split(",")):
        net.load_state_dict(run.checkpoints[run.checkpoint_epochs.index(epoch)])
        running = (float(run.history["train_loss"][epoch - 1]), float(run.history["train_acc"][epoch - 1]))
        row: dict[str, Any] = {"model": a.model, "epoch": epoch}
        order = ["old", "new"] if i % 2 == 0 else ["new", "old"]
        sal32 = {}
        for name in order:
            sal32[name], wall, cpu = timed(engines[name], net, x, y, spec, train_spec, running, epoch)
            secs[name]["wall"] += wall
            secs[name]["cpu"] += cpu
            row[name] = {"wall": wall, "cpu": cpu, "sal": sal32[name].tolist()}
        row["rel_diff_float32"] = rel_diff(sal32["new"], sal32["old"])
        if not a.no_float64:
            net64 = net.double()
            sal64 = {name: timed(engines[name], net64, x.double(), y, spec, train_spec, running, epoch)[0]
                     for name in engines}
            row["rel_diff_float64"] = rel_diff(sal64["new"], sal64["old"])
            net.float()
        rows.append(row)
        print(f"epoch {epoch}: old {row['old']['wall']:.1f}s, new {row['new']['wall']:.1f}s, "
              f"x{row['old']['wall'] / row['new']['wall']:.2f}; rel diff float32 {row['rel_diff_float32']:.1e}"
              + (f", float64 {row['rel_diff_float64']:.1e}" if "rel_diff_float64" in row else ""), flush=True)
    summary = {"summary": True, "model": a.model, "epochs": a.epochs, "at": a.at, "threads": a.threads,
               "old_commit": OLD_COMMIT, "spec": spec.to_dict(), "seconds": secs,
               "ratio_wall": secs["old"]["wall"] / secs["new"]["wall"],
               "ratio_cpu": secs["old"]["cpu"] / secs["new"]["cpu"],
               "max_rel_diff_float32": max(r["rel_diff_float32"] for r in rows),
               "max_rel_diff_float64": max((r["rel_diff_float64"] for r in rows if "rel_diff_float64" in r),
                                           default=None),
               "flop_ceiling": flop_ceiling(net, x[:1]), "machine": machine_description()}
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a") as fh:
        for row in [*rows, summary]:
            fh.write(json.dumps(row) + "\n")
    print(f"SUMMARY sal_engine {a.model}: x{summary['ratio_wall']:.2f} wall (x{summary['ratio_cpu']:.2f} CPU; old "
          f"{secs['old']['wall']:.0f}s, new {secs['new']['wall']:.0f}s), max rel |dSAL| float64 "
          f"{summary['max_rel_diff_float64']}, float32 {summary['max_rel_diff_float32']:.1e}; FLOP ceiling of "
          f"skipping the prefix: SGD steps x{summary['flop_ceiling']['sgd_steps']:.2f}, evaluation "
          f"x{summary['flop_ceiling']['evaluation']:.2f}, whole network per copy "
          f"x{summary['flop_ceiling']['whole_network']:.2f}")
    return summary


if __name__ == "__main__":
    main()
