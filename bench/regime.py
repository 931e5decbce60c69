"""Regime study (issue #15): where does UD separate unlearnable examples from random noise, beyond the seed spread?

A cell is (block, method, seed): block = data set x model x training recipe x epochs. The cell trains the poisoned
model (the clean reference of the block and seed is shared by every method, through the store) and measures SAL
every `SAL.every`-th epoch with BOTH baselines of L_0 (the authors' running training loss, and a fresh evaluation
at theta; two SAL stages on the same stored checkpoints, since the inner problems' best values are clamped at L_0
and cannot be rebased afterwards), then UD (Ye, Su, Qian, ICLR 2025) and our threshold-free measures, beside
clean-test accuracy. Seed s sets the training, crafting and SAL seeds (`landscape.seeds.seed_specs`).

Recipes: "sgd" = the project's default `TrainSpec()` (SGD lr 0.05, momentum 0.9, weight decay 5e-4); "adam" = the
cross-task bench's recipe (`landscape.multitask.DEFAULT_TRAIN`: Adam lr 3e-3, no weight decay). Poisons at each
method's default budget for the data set's family. Nothing here is tuned toward an outcome: the grid is fixed in
`BLOCKS` before any cell runs, and the report shows every cell.

Resumable: every finished cell is appended to `bench/results/regime.jsonl` at once; a run skips the cells already
there and stops starting new ones once `--budget-s` would be exceeded (chunks of <= 10 min on a shared machine).
The store (`--store`) keeps the shared stages (poisons, clean references) between chunks.

    python bench/regime.py run --budget-s 540                  # the next cells of the grid, in BLOCKS order
    python bench/regime.py run --blocks digits/cnn/sgd --budget-s 300
    python bench/regime.py report                              # assets/benchmarks/regime.{md,csv,json}
    python bench/regime.py plan                                # the grid, what is done, what is left out

"Separates" (computed, the rule printed with the table): mean UD(m) + std < mean UD(random) - std, the sample
standard deviations over the seeds, i.e. the one-std intervals do not overlap. For a separating (setting, method)
the drop is decomposed over layers exactly: with the same clean run (so the same beta) per seed,
#LP_p(random) - #LP_p(m) = sum over layers of d_l, d_l = (fraction of epochs layer l is learnable under random)
- (the same under m), averaged over seeds; "a minority of layers accounts for it" when fewer than half the layers
carry 80 % of the positive sum. Ours, threshold-free and labelled so: the per-layer mean-SAL ratio m / random, and
the per-epoch layer share SAL_l(t) / sum_l SAL_l(t) (the epoch's overall scale divided out), m minus random.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.device import cpu_model, limited_threads
from landscape.experiment import ExperimentResult, run_experiment
from landscape.files import atomic_write
from landscape.multitask import DEFAULT_TRAIN
from landscape.stages.ud import resolve_experiment
from landscape.store import Store

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "regime.jsonl"
ASSETS = ROOT / "assets" / "benchmarks" / "regime"
RECIPES = {"sgd": TrainSpec(), "adam": DEFAULT_TRAIN}
SAL = SALSpec(every=2)  # the fast default (K = 2 rounds on a fixed 1024-image subset), every 2nd epoch and the last
BASELINES = ("running", "fresh")
METHODS = ("em", "ops", "lsp", "tap", "random")
CONTROL = "random"
SEEDS = (0, 1, 2)
UD_FIELDS = ("ud", "ud_defined", "beta", "lp_clean", "lp_poisoned", "w1_overall", "mean_ratio_overall")
EARLY_CPU = "an earlier session's machine (not recorded per cell; its report named an AMD EPYC)"
MINORITY_SHARE = 0.8  # "accounts for it": carries 80 % of the positive per-layer drop


@dataclass(frozen=True)
class Block:
    """Data set x model x recipe x epochs: one setting of the grid (every method and seed runs in it)."""

    dataset: str
    model: str
    recipe: str
    epochs: int

    @property
    def label(self) -> str:
        return f"{self.dataset}/{self.model}/{self.recipe}"

    def spec(self, method: str, seed: int, baseline: str) -> ExperimentSpec:
        train = RECIPES[self.recipe].replace(epochs=self.epochs, seed=seed)
        return ExperimentSpec(data=DataSpec(self.dataset), model=ModelSpec(self.model), train=train,
                              poison=PoisonSpec(method=method, seed=seed),
                              sal=SAL.replace(baseline=baseline, seed=seed))


# The grid, in the order it runs (chosen from one measured cell per model before any result; see the note).
BLOCKS = (
    Block("digits", "cnn", "sgd", 30),
    Block("digits", "cnn", "adam", 30),
    Block("mnist-5k", "lenet5", "sgd", 20),
    Block("mnist-5k", "lenet5", "adam", 20),
    Block("digits", "lenet5", "sgd", 30),
    Block("digits", "lenet5", "adam", 30),
    Block("digits", "resnet18s", "adam", 30),
    Block("digits", "resnet18s", "sgd", 30),
)
# Measured not to fit this session's CPU budget (one slot of a 2-core machine shared by 8 people, ~60-70 min):
LEFT_OUT = ("mnist-5k/cnn (both recipes)", "mnist-5k/resnet18s (both recipes)",
            "other epoch counts and budgets (each block runs one epoch count, every method at its default budget)",
            "the paper SAL preset (the fast default only, checked against it in bench/sal_speed.py)")


def _git_commit() -> str:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ------------------------------------------------------------------------------------------------ one cell


def layer_shares(sal: np.ndarray) -> np.ndarray:
    """(ours) SAL_l(t) / sum_l SAL_l(t) per epoch (T, L): each layer's part of the epoch, its scale divided out."""
    total = sal.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total != 0, sal / total, np.nan)


def measures(result: ExperimentResult) -> dict[str, Any]:
    """The numbers of one baseline of a cell: UD and its parts, ours, per-layer learnable fractions and shares."""
    s, ud = result.summary(), result.ud
    return {
        "spec": resolve_experiment(result.spec).to_dict(),
        **{k: s[k] for k in UD_FIELDS},
        "counts_clean": ud.counts_clean.tolist(), "counts_poisoned": ud.counts_poisoned.tolist(),
        "learnable_clean": ud.flags_clean.mean(0).tolist(), "learnable_poisoned": ud.flags_poisoned.mean(0).tolist(),
        "mean_sal_clean": result.sal_clean.sal.mean(0).tolist(),
        "mean_sal_poisoned": result.sal_poisoned.sal.mean(0).tolist(),
        "share_clean": layer_shares(result.sal_clean.sal).tolist(),
        "share_poisoned": layer_shares(result.sal_poisoned.sal).tolist(),
        "sal_seconds": s["sal_seconds"],
    }


def run_cell(block: Block, method: str, seed: int, store: Store) -> dict[str, Any]:
    """Train (or load) the cell's runs, SAL with both baselines, UD; one JSON-ready line."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    per_baseline, first = {}, None
    with limited_threads(1):
        for baseline in BASELINES:
            result = run_experiment(block.spec(method, seed, baseline), store=store)
            first = first or result
            per_baseline[baseline] = measures(result)
    s = first.summary()
    return {"kind": "cell", "block": block.label, "dataset": block.dataset, "model": block.model,
            "recipe": block.recipe, "epochs": block.epochs, "method": method, "seed": seed,
            "clean_acc": s["clean_test_acc"], "poisoned_acc": s["poisoned_test_acc"],
            "poisoned_train_acc": s["poisoned_train_acc"], "diverged": s["diverged"],
            "layers": s["layers"], "baselines": per_baseline, "wall_s": time.perf_counter() - started,
            "load_start": load, "load_end": os.getloadavg()[0], "commit": _git_commit(), "cpu": cpu_model()}


def read_cells(path: Path = RESULTS) -> list[dict[str, Any]]:
    """The finished cells (the last line of a cell wins, in case one was rerun)."""
    if not path.exists():
        return []
    cells: dict[tuple, dict] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            row = json.loads(line)
            if row.get("kind") == "cell":
                cells[(row["block"], row["method"], row["seed"])] = row
    return list(cells.values())


def grid(blocks: tuple[Block, ...], seeds: tuple[int, ...] = SEEDS,
         methods: tuple[str, ...] = METHODS) -> list[tuple[Block, str, int]]:
    """Every cell, block by block, seed-major inside a block (a block's first seed of every method comes first)."""
    return [(b, m, s) for b in blocks for s in seeds for m in methods]


def run_chunk(blocks: tuple[Block, ...], store: Store, budget_s: float, path: Path = RESULTS,
              seeds: tuple[int, ...] = SEEDS, methods: tuple[str, ...] = METHODS) -> int:
    """Run the grid's next cells until `budget_s` would be exceeded; append each to `path` as it finishes.

    Two chunks may run at once on disjoint blocks or seeds (the store locks each entry; a cell run twice is
    written twice with the same numbers, and `read_cells` keeps one).
    """
    done = {(c["block"], c["method"], c["seed"]) for c in read_cells(path)}
    walls: dict[tuple[str, str], float] = {}  # the longest cell of (block, method) seen (crafting included)
    for c in read_cells(path):
        walls[c["block"], c["method"]] = max(walls.get((c["block"], c["method"]), 0.0), c["wall_s"])
    started, ran = time.perf_counter(), 0
    for block, method, seed in grid(blocks, seeds, methods):
        if (block.label, method, seed) in done:
            continue
        elapsed = time.perf_counter() - started
        guess = walls.get((block.label, method), max((w for (b, _), w in walls.items() if b == block.label),
                                                     default=0.0))
        if ran and elapsed + guess > budget_s:
            print(f"budget: {elapsed:.0f} s used of {budget_s:.0f} s; next cell {block.label} {method} seed {seed} "
                  f"(~{guess:.0f} s) left for the next chunk", flush=True)
            continue  # a cheaper cell later in the grid may still fit
        row = run_cell(block, method, seed, store)
        walls[block.label, method] = max(walls.get((block.label, method), 0.0), row["wall_s"])
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("a") as f:
            f.write(json.dumps(row, allow_nan=True) + "\n")
        ran += 1
        b = row["baselines"]
        print(f"{block.label} {method} seed {seed}: acc {row['clean_acc']:.3f}/{row['poisoned_acc']:.3f}, UD running "
              f"{b['running']['ud']:.3f}, fresh {b['fresh']['ud']:.3f}, {row['wall_s']:.0f} s (load "
              f"{row['load_start']:.1f})", flush=True)
    return ran


# ------------------------------------------------------------------------------------------------ report


def _ms(values: list[float | None]) -> tuple[float, float, int]:
    finite = [float(v) for v in values if v is not None and np.isfinite(v)]
    if not finite:
        return float("nan"), float("nan"), 0
    return statistics.fmean(finite), (statistics.stdev(finite) if len(finite) > 1 else float("nan")), len(finite)


def _pm(values: list[float | None], digits: int = 3) -> str:
    mean, std, n = _ms(values)
    if n == 0:
        return "n/a"
    if n == 1:
        return f"{mean:.{digits}f} (1 seed)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" + ("" if n == len(values) else f" ({n} of {len(values)})")


def welch_p(ue: list[float | None], control: list[float | None]) -> float:
    """One-sided Welch t-test p-value of mean UD(ue) < mean UD(control) (NaN with fewer than 2 values each)."""
    from scipy.stats import ttest_ind

    a = [float(v) for v in ue if v is not None and np.isfinite(v)]
    b = [float(v) for v in control if v is not None and np.isfinite(v)]
    if len(a) < 2 or len(b) < 2:
        return float("nan")
    return float(ttest_ind(a, b, equal_var=False, alternative="less").pvalue)


def minority(ue: list[dict], control: list[dict], layers: list[str], baseline: str) -> dict[str, Any]:
    """Decompose #LP_p(random) - #LP_p(m) over layers (seeds paired); ours: per-layer SAL ratio and share change."""
    by_seed = {c["seed"]: c for c in control}
    pairs = [(c["baselines"][baseline], by_seed[c["seed"]]["baselines"][baseline]) for c in ue if c["seed"] in by_seed]
    d = np.mean([np.subtract(r["learnable_poisoned"], m["learnable_poisoned"]) for m, r in pairs], 0)  # (L,)
    positive = np.clip(d, 0, None)
    order = np.argsort(-positive)
    total = float(positive.sum())
    k, acc = 0, 0.0
    for i in order:
        if total <= 0 or acc >= MINORITY_SHARE * total:
            break
        acc += positive[i]
        k += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.mean([np.divide(m["mean_sal_poisoned"], r["mean_sal_poisoned"]) for m, r in pairs], 0)
        vs_clean = np.mean([np.divide(m["mean_sal_poisoned"], m["mean_sal_clean"]) for m, _ in pairs], 0)
        share = np.mean([np.nanmean(np.subtract(m["share_poisoned"], r["share_poisoned"]), 0) for m, r in pairs], 0)
    return {"d_layers": d.tolist(), "drop_lp": float(d.sum()), "k": k, "layers": len(layers),
            "minority": bool(total > 0 and k < len(layers) / 2), "top": [layers[i] for i in order[:k]],
            "sal_ratio_layers": ratio.tolist(), "sal_ratio_clean_layers": vs_clean.tolist(),
            "share_change_layers": share.tolist()}


def settings(cells: list[dict]) -> list[dict[str, Any]]:
    """One entry per (block, baseline, method): means ± stds over seeds, and the separation test vs random."""
    out = []
    for block in dict.fromkeys(c["block"] for c in cells):
        in_block = [c for c in cells if c["block"] == block]
        layers = in_block[0]["layers"]
        for baseline in BASELINES:
            control = [c for c in in_block if c["method"] == CONTROL]
            r_mean, r_std, _ = _ms([c["baselines"][baseline]["ud"] for c in control])
            for method in METHODS:
                sel = sorted((c for c in in_block if c["method"] == method), key=lambda c: c["seed"])
                if not sel:
                    continue
                uds = [c["baselines"][baseline]["ud"] for c in sel]
                m_mean, m_std, n = _ms(uds)
                separated = (method != CONTROL and n > 1 and len(control) > 1
                             and m_mean + m_std < r_mean - r_std)
                welch = welch_p(uds, [c["baselines"][baseline]["ud"] for c in control]) if method != CONTROL \
                    else float("nan")
                entry = {"block": block, "baseline": baseline, "method": method, "seeds": [c["seed"] for c in sel],
                         "ud": uds, "ud_mean": m_mean, "ud_std": m_std,
                         "clean_acc": [c["clean_acc"] for c in sel], "poisoned_acc": [c["poisoned_acc"] for c in sel],
                         **{k: [c["baselines"][baseline][k] for c in sel]
                            for k in ("beta", "lp_clean", "lp_poisoned", "w1_overall", "mean_ratio_overall")},
                         "separated": bool(separated), "welch_p": welch, "wall_s": sum(c["wall_s"] for c in sel)}
                if separated:
                    entry["layers"] = minority(sel, control, layers, baseline)
                out.append(entry)
    return out


def verdict(rows: list[dict]) -> list[str]:
    """Plain sentences: which settings separate EM or OPS from random, and whether a minority of layers does it."""
    lines = []
    for r in rows:
        if r["method"] not in ("em", "ops", "lsp", "tap"):
            continue
        control = next((x for x in rows if (x["block"], x["baseline"], x["method"]) == (r["block"], r["baseline"],
                                                                                           CONTROL)), None)
        if control is None:
            lines.append(f"not comparable yet: {r['block']} ({r['baseline']} baseline), {r['method']}: no random-noise "
                         f"cells in this block")
            continue
        what = (f"{r['block']} ({r['baseline']} baseline), {r['method']}: UD {r['ud_mean']:.3f} ± {r['ud_std']:.3f} "
                f"vs random {control['ud_mean']:.3f} ± {control['ud_std']:.3f} (Welch p = {r['welch_p']:.3f})")
        if r["separated"]:
            lay = r["layers"]
            who = (f"a minority of layers accounts for it ({lay['k']} of {lay['layers']} carry 80 % of the drop: "
                   f"{', '.join(lay['top'])})" if lay["minority"] else
                   f"no minority of layers accounts for it ({lay['k']} of {lay['layers']} layers are needed for 80 % "
                   f"of the drop)")
            lines.append(f"SEPARATES: {what}; {who}.")
        else:
            lines.append(f"does not separate: {what}.")
    return lines


def unfinished(cells: list[dict]) -> str:
    """The planned blocks with fewer cells than the grid's, e.g. ``digits/resnet18s/adam (0 of 15 cells)``."""
    have = {b.label: 0 for b in BLOCKS}
    for c in cells:
        have[c["block"]] = have.get(c["block"], 0) + 1
    full = len(SEEDS) * len(METHODS)
    return "; ".join(f"{b} ({n} of {full} cells)" for b, n in have.items() if n < full)


def per_epoch_shares(cells: list[dict]) -> list[dict[str, Any]]:
    """(ours) Per (block, baseline, method): each layer's share of the epoch's SAL, (T, L), mean over the seeds.

    The clean reference's shares come with every method (the same clean runs); rounded to 4 decimals.
    """
    out = []
    for block in dict.fromkeys(c["block"] for c in cells):
        for baseline in BASELINES:
            for method in METHODS:
                sel = [c for c in cells if c["block"] == block and c["method"] == method]
                if not sel:
                    continue
                mean = {k: np.round(np.nanmean([c["baselines"][baseline][f"share_{k}"] for c in sel], 0), 4)
                        for k in ("clean", "poisoned")}
                epochs = sel[0]["epochs"]
                measured = [*range(SAL.every, epochs + 1, SAL.every)] + ([epochs] if epochs % SAL.every else [])
                out.append({"block": block, "baseline": baseline, "method": method, "seeds": len(sel),
                            "layers": sel[0]["layers"], "epochs": measured, "clean": mean["clean"].tolist(),
                            "poisoned": mean["poisoned"].tolist()})
    return out


def write_report(cells: list[dict], out: Path = ASSETS) -> dict[str, Path]:
    """assets/benchmarks/regime.{md,csv,json} from the finished cells."""
    from landscape.bench import machine_description
    from landscape.device import numeric_environment_line

    rows = settings(cells)
    wall = sum(c["wall_s"] for c in cells)
    blocks = list(dict.fromkeys(f"{c['block']} ({c['epochs']} epochs)" for c in cells))
    loads = [c["load_start"] for c in cells]
    commits = sorted({c["commit"] for c in cells})
    # the cells of earlier sessions did not record their CPU (their report was written on an AMD EPYC)
    cpus = [c.get("cpu", EARLY_CPU) for c in cells]
    machines = "; ".join(f"{n} cells on {cpu}" for cpu, n in Counter(cpus).most_common())
    flat = []  # one row per (cell, baseline): what `landscape.seeds` reads
    for c in cells:
        for baseline in BASELINES:
            b = c["baselines"][baseline]
            flat.append({"block": c["block"], "dataset": c["dataset"], "model": c["model"], "recipe": c["recipe"],
                         "epochs": c["epochs"], "method": c["method"], "seed": c["seed"], "baseline": baseline,
                         "clean_acc": c["clean_acc"], "poisoned_acc": c["poisoned_acc"],
                         **{k: b[k] for k in UD_FIELDS},
                         "wall_s": c["wall_s"], "spec": b["spec"]})
    header = [
        f"# Regime study: UD of EM, OPS, LSP, TAP vs random noise ({len(cells)} cells, seeds "
        f"{', '.join(str(s) for s in sorted({c['seed'] for c in cells}))}, "
        f"wall time {wall:.0f} s = {wall / 60:.1f} min of one CPU slot)", "",
        "- **command**: `python bench/regime.py run` in chunks of <= 10 min, then `python bench/regime.py report`",
        f"- **machines**: {machines} (2 logical cores each; float rounding differs between them, so a cell rerun "
        f"on another CPU may not reproduce bit for bit); report written on {machine_description()}; 1 torch thread "
        f"per cell; shared machines, load average {min(loads):.1f} to {max(loads):.1f} at the cells' starts "
        f"(timings are not comparable between cells)",
        f"- **numerics**: {numeric_environment_line()}",
        f"- **code**: commit(s) {', '.join(commits)}",
        "- **recipes**: sgd = `TrainSpec()` (SGD lr 0.05, momentum 0.9, wd 5e-4, batch 64); adam = the cross-task "
        "bench's `DEFAULT_TRAIN` (Adam lr 3e-3, wd 0, batch 64); no augmentation; epochs per block: blocks run",
        f"- **SAL**: the fast default (eps 0.05, K = {SAL.rounds} rounds, lr {SAL.lr}, batched engine, a fixed "
        f"{SAL.eval_size}-image subset of each model's own training set), every {SAL.every}nd epoch and the last; "
        f"baselines: running (the authors' L_0, the epoch's running training loss) and fresh (L_0 evaluated at "
        f"theta), both on the same stored runs",
        "- **poisons**: each method at its default budget for the data set's family, 100 % poisoned, crafting seed = "
        "the cell's seed",
        f"- **blocks run**: {', '.join(blocks)}",
        f"- **left out** (did not fit the CPU budget): {'; '.join(LEFT_OUT)}",
        f"- **planned, not finished this session** (the shared CPU queue): {unfinished(cells) or 'none'}",
        "", "Separates = mean UD(m) + std < mean UD(random) − std (sample std over the 3 seeds; the one-std intervals "
        "do not overlap), the rule fixed before the grid ran. With 3 seeds that is a weak test: the one-sided Welch "
        "t-test p-value of UD(m) < UD(random) is shown beside it. W1 and the SAL ratio are ours (threshold-free), "
        "not the paper's.", "",
        "| block | baseline | method | clean acc | poisoned acc | UD | #LP clean | #LP poisoned | W1 (ours) | "
        "SAL ratio (ours) | separates | Welch p | cells' wall s |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|"]
    for r in rows:
        sep = "—" if r["method"] == CONTROL else ("**yes**" if r["separated"] else "no")
        p = "" if r["method"] == CONTROL or not np.isfinite(r["welch_p"]) else f"{r['welch_p']:.3f}"
        header.append(f"| {r['block']} | {r['baseline']} | {r['method']} | {_pm(r['clean_acc'])} | "
                      f"{_pm(r['poisoned_acc'])} | {_pm(r['ud'])} | {_pm(r['lp_clean'], 2)} | "
                      f"{_pm(r['lp_poisoned'], 2)} | {_pm(r['w1_overall'], 4)} | {_pm(r['mean_ratio_overall'])} | "
                      f"{sep} | {p} | {r['wall_s']:.0f} |")
    lines = header + ["", "## Verdict (computed from the table with the rule above)", ""]
    lines += [f"- {v}" for v in verdict(rows)]
    layer_rows = [r for r in rows if r["separated"]]
    if layer_rows:
        lines += ["", "## Which layers, where UD separates", "",
                  "d_l = fraction of epochs layer l is learnable under random minus under the UE (mean over the "
                  "paired seeds; sums to #LP_p(random) − #LP_p(UE)). Ours: SAL ratios = the layer's mean SAL under "
                  "the UE / under random, and / clean (the paper's poisoned/clean view); share change = mean over "
                  "epochs of the layer's share of the epoch's SAL, UE minus random (the epoch trend divided out).", ""]
        for r in layer_rows:
            lay = r["layers"]
            layers = next(c["layers"] for c in cells if c["block"] == r["block"])
            lines += [f"### {r['block']}, {r['baseline']} baseline, {r['method']}: #LP drop {lay['drop_lp']:.2f}, "
                      f"{lay['k']} of {lay['layers']} layers carry 80 %", "",
                      "| layer | d_l | SAL ratio UE/random (ours) | SAL ratio UE/clean | share change (ours) |",
                      "|---|---:|---:|---:|---:|"]
            for name, d, ratio, clean, share in zip(layers, lay["d_layers"], lay["sal_ratio_layers"],
                                                    lay["sal_ratio_clean_layers"], lay["share_change_layers"],
                                                    strict=True):
                lines.append(f"| {name} | {d:+.2f} | {ratio:.3f} | {clean:.3f} | {share:+.3f} |")
            lines.append("")
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {"md": out.with_suffix(".md"), "csv": out.with_suffix(".csv"), "json": out.with_suffix(".json")}
    atomic_write(paths["md"], "\n".join(lines) + "\n")
    buf = io.StringIO()
    fields = [k for k in flat[0] if k != "spec"]
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(flat)
    atomic_write(paths["csv"], buf.getvalue())
    atomic_write(paths["json"], json.dumps(_strict({
        "header": {"cells": len(cells), "wall_s": wall, "blocks": blocks, "left_out": list(LEFT_OUT),
                   "machine": machine_description(), "python": platform.python_version(), "commits": commits,
                   "sal": SAL.to_dict(), "recipes": {k: v.to_dict() for k, v in RECIPES.items()}},
        "cells": flat, "settings": rows, "verdict": verdict(rows),
        "per_epoch_shares": per_epoch_shares(cells),
    }), allow_nan=False, separators=(",", ":")))
    return paths


def _strict(obj: Any) -> Any:
    """NaN/inf -> None, recursively (strict JSON)."""
    if isinstance(obj, float):
        return obj if np.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _strict(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_strict(v) for v in obj]
    return obj


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("action", choices=("run", "report", "plan"))
    p.add_argument("--blocks", default=None, help="comma-separated block labels (default: every block, in order)")
    p.add_argument("--budget-s", type=float, default=540.0, help="run: start no cell that would end after this")
    p.add_argument("--store", default="/tmp/regime-store", help="store of the shared stages between chunks")
    p.add_argument("--results", default=str(RESULTS))
    p.add_argument("--seeds", default=None, help="run: only these seeds (comma-separated; default 0,1,2)")
    p.add_argument("--methods", default=None,
                   help=f"run: only these methods (comma-separated; default {','.join(METHODS)}), e.g. to redo a "
                        "method's cells into a separate --results file after the method changed")
    a = p.parse_args(argv)
    blocks = BLOCKS
    if a.blocks:
        by_label = {b.label: b for b in BLOCKS}
        unknown = [x for x in a.blocks.split(",") if x not in by_label]
        if unknown:
            p.error(f"unknown block(s) {unknown}; valid: {', '.join(by_label)}")
        blocks = tuple(by_label[x] for x in a.blocks.split(","))
    path = Path(a.results)
    if a.action == "run":
        seeds = tuple(int(x) for x in a.seeds.split(",")) if a.seeds else SEEDS
        methods = tuple(a.methods.split(",")) if a.methods else METHODS
        if set(methods) - set(METHODS):
            p.error(f"unknown method(s) {sorted(set(methods) - set(METHODS))}; valid: {', '.join(METHODS)}")
        ran = run_chunk(blocks, Store(a.store), a.budget_s, path, seeds, methods)
        print(f"{ran} cell(s) run; {len(read_cells(path))} of {len(grid(BLOCKS))} in {path}")
    elif a.action == "plan":
        done = {(c["block"], c["method"], c["seed"]): c["wall_s"] for c in read_cells(path)}
        for b in blocks:
            walls = [done[(b.label, m, s)] for s in SEEDS for m in METHODS if (b.label, m, s) in done]
            print(f"{b.label:28} {len(walls):>2}/{len(SEEDS) * len(METHODS)} cells, {sum(walls):.0f} s")
        print("left out:", "; ".join(LEFT_OUT))
    else:
        cells = [c for c in read_cells(path) if c["block"] in {b.label for b in blocks}]
        paths = write_report(cells)
        print("\n".join(str(v) for v in paths.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
