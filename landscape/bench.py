"""The UD benchmark engine: a grid of cells (method x defense x seed), its scheduler, resume, and the tables.

A cell trains a clean reference model and a poisoned model under the same defense, both with SAL per
epoch, and reports clean test accuracy and UD (Ye, Su, Qian, ICLR 2025). Each cell is a pure function of
its spec (every seed is in the spec; each cell runs with a fixed number of torch threads, 1 by default),
so the numbers do not depend on which executor ran it or on how many workers there were (on the CPU,
bit for bit; on a GPU up to cuDNN's non-deterministic kernels): the jobs run in this process, in N local
processes, or as tasks on a Ray cluster (`landscape.executors`).

Every stage is cached in the content-addressed `Store`: crafted poisons (shared by every defense), the
clean reference of a (defense, seed) (shared by every method), the trained runs with their SAL, and the
summary row of each finished cell. The scheduler runs the shared stages first as jobs of their own, then
the cells that need them, so parallel workers do not wait on each other's locks; an interrupted benchmark
resumes where it stopped and recomputes nothing already stored. On a multi-node Ray cluster, point the
store at a shared file system, or shared stages are recomputed per node (with the same numbers).

Results: `BenchResult.rows` (one dict per cell), written as CSV (one row per cell), JSON (settings,
machine, rows and summary) and Markdown (mean +- sample std over seeds, one table for UD and one for
test accuracy) by `write_outputs`; `read_summary` loads the JSON back for the app. No streamlit here.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import platform
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from landscape.config import (
    MAX_SEED,
    DataSpec,
    DefenseSpec,
    ModelSpec,
    SALSpec,
    TrainSpec,
    format_value,
)
from landscape.defenses import defense_label
from landscape.errors import SpecError
from landscape.executors import Executor
from landscape.files import atomic_write
from landscape.spec import plural
from landscape.stages.bench import ROW_FIELDS, BenchCell, Cell

Progress = Callable[[int, int, str], None]  # (jobs done, jobs total, what just finished)


# ---------------------------------------------------------------------------------------------- specs


@dataclass(frozen=True)
class BenchSpec:
    """The grid: every method x every defense x every seed, on one data set, model, training and SAL spec."""

    data: DataSpec
    model: ModelSpec
    train: TrainSpec
    sal: SALSpec
    methods: tuple[str, ...]
    defenses: tuple[DefenseSpec, ...]
    seeds: tuple[int, ...]

    def __post_init__(self) -> None:
        from landscape.defenses import resolve_defense
        from landscape.poisons import POISONS

        empty = [name for name, given in (("methods", self.methods), ("defenses", self.defenses),
                                          ("seeds", self.seeds)) if not given]
        if empty:
            raise SpecError(f"a benchmark needs at least one method, one defense and one seed; no "
                            f"{', no '.join(empty)} given (methods: all or any of {', '.join(POISONS.names())})")
        bad = [s for s in self.seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED]
        if bad:
            raise SpecError(f"benchmark seeds {bad} are out of range; seeds are integers in [0, {MAX_SEED}]")
        for m in self.methods:
            POISONS.check(m)
        object.__setattr__(self, "defenses", tuple(resolve_defense(d) for d in self.defenses))
        for name, values in (("methods", self.methods), ("defenses", self.defenses), ("seeds", self.seeds)):
            if len(set(values)) != len(values):
                shown = [defense_label(v) if isinstance(v, DefenseSpec) else v for v in values]
                raise SpecError(f"benchmark {name} repeat an entry: {', '.join(map(str, shown))}")

    def cells(self) -> list[Cell]:
        """Every cell, ordered seed-major (so the first seed of every method finishes first)."""
        return [Cell(self.data, self.model, self.train, self.sal, m, d, s)
                for s in self.seeds for d in self.defenses for m in self.methods]

    def to_dict(self) -> dict[str, Any]:
        return {"data": self.data.to_dict(), "model": self.model.to_dict(), "train": self.train.to_dict(),
                "sal": self.sal.to_dict(), "methods": list(self.methods),
                "defenses": [defense_label(d) for d in self.defenses], "seeds": list(self.seeds)}


# ---------------------------------------------------------------------------------------------- cell rows

def stored_row(cell: Cell, store: Any) -> dict[str, Any] | None:
    """The stored summary row of `cell`, or None."""
    return BenchCell.of(cell).load(store)


# ---------------------------------------------------------------------------------------------- scheduler


@dataclass
class BenchResult:
    """Rows of every cell (in the grid's order), and how this invocation got them."""

    spec: BenchSpec
    rows: list[dict[str, Any]]
    computed: int  # cells computed by this invocation
    loaded: int  # cells found in the store
    wall_seconds: float
    executor: str
    workers: int
    jobs: dict[str, int] = field(default_factory=dict)  # jobs run by this invocation, per kind
    job_seconds: dict[str, float] = field(default_factory=dict)  # worker time spent on them, per kind


@dataclass
class _Job:
    kind: str
    cell: Cell
    deps: set[int]


def plan_jobs(cells: Sequence[Cell]) -> list[_Job]:
    """Jobs for the cells still to do: one craft per (method, seed), one reference per (defense, seed), then cells.

    A cell depends on the craft of its poison and on the reference of its (defense, seed); shared stages are
    therefore computed once, before the cells that read them.
    """
    jobs: list[_Job] = []
    craft: dict[tuple[str, int], int] = {}
    ref: dict[str, int] = {}
    for cell in cells:
        ck = (cell.method, cell.seed)
        if ck not in craft:
            craft[ck] = len(jobs)
            jobs.append(_Job("craft", cell, set()))
        rk = _reference_key(cell)
        if rk not in ref:
            ref[rk] = len(jobs)
            jobs.append(_Job("reference", cell, set()))
    for cell in cells:
        jobs.append(_Job("cell", cell, {craft[(cell.method, cell.seed)], ref[_reference_key(cell)]}))
    return jobs


def _reference_key(cell: Cell) -> str:
    return cell.replace(method="random").key()  # the reference ignores the method


def run_bench(spec: BenchSpec, *, store: Any, executor: Executor, progress: Progress | None = None,
              workers: int = 1) -> BenchResult:
    """Compute every cell of `spec` not yet in `store` with `executor`; return all rows in grid order.

    Finished cells are stored as they complete, so an interrupted run resumes from there.
    """
    started = time.perf_counter()
    cells = spec.cells()
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for cell in cells:
        row = stored_row(cell, store)
        if row is None:
            todo.append(cell)
        else:
            rows[cell.key()] = row
    jobs = plan_jobs(todo)
    waiting = {i: set(j.deps) for i, j in enumerate(jobs)}
    running: set[int] = set()
    done = 0
    counts = {kind: sum(j.kind == kind for j in jobs) for kind in ("craft", "reference", "cell")}
    seconds = dict.fromkeys(counts, 0.0)
    try:
        while waiting or running:
            for i in [i for i, deps in waiting.items() if not deps]:
                del waiting[i]
                running.add(i)
                executor.submit(i, jobs[i].kind, jobs[i].cell)
            for i, out in executor.wait():
                running.discard(i)
                done += 1
                for deps in waiting.values():
                    deps.discard(i)
                job = jobs[i]
                seconds[job.kind] += out["seconds"]
                if job.kind == "cell":
                    rows[job.cell.key()] = out["row"]
                if progress is not None:
                    progress(done, len(jobs), f"{job.kind} {job.cell.label if job.kind == 'cell' else _what(job)}")
    finally:
        executor.close()
    return BenchResult(spec, [rows[c.key()] for c in cells], computed=len(todo), loaded=len(cells) - len(todo),
                       wall_seconds=time.perf_counter() - started, executor=executor.name, workers=workers,
                       jobs=counts, job_seconds=seconds)


def _what(job: _Job) -> str:
    if job.kind == "craft":
        return f"{job.cell.method}/seed{job.cell.seed}"
    return f"{defense_label(job.cell.defense)}/seed{job.cell.seed}"


# ---------------------------------------------------------------------------------------------- tables


def _mean_std(values: Iterable[float]) -> tuple[float, float, int]:
    v = np.asarray([x for x in values if x is not None and math.isfinite(x)], dtype=np.float64)
    if len(v) == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if len(v) > 1 else 0.0, len(v)


def summarise(result: BenchResult) -> list[dict[str, Any]]:
    """Mean and sample standard deviation (ddof = 1) over seeds per (method, defense), plus the clean reference."""
    out = []
    spec = result.spec
    for d in spec.defenses:
        sub = [r for r in result.rows if r["defense"] == defense_label(d)]
        # the clean reference is shared by the methods: one value per seed
        per_seed = {r["seed"]: r["clean_acc"] for r in sub}
        acc = _mean_std(per_seed.values())
        out.append({"method": "clean", "defense": defense_label(d), "ud_mean": 1.0, "ud_std": 0.0, "acc_mean": acc[0],
                    "acc_std": acc[1], "n": acc[2]})
        for m in spec.methods:
            rows = [r for r in sub if r["method"] == m]
            ud, acc = _mean_std(r["ud"] for r in rows), _mean_std(r["poisoned_acc"] for r in rows)
            out.append({"method": m, "defense": defense_label(d), "ud_mean": ud[0], "ud_std": ud[1], "acc_mean": acc[0],
                        "acc_std": acc[1], "n": ud[2]})
    return out


def _fmt(mean: float, std: float, n: int, digits: int) -> str:
    if not math.isfinite(mean):
        return "n/a"
    return f"{mean:.{digits}f} ± {std:.{digits}f}" if n > 1 else f"{mean:.{digits}f}"


def markdown_tables(result: BenchResult, header: dict[str, Any]) -> str:
    """The benchmark as Markdown: a header (command, machine, settings, cost) and two tables (UD, test accuracy)."""
    spec = result.spec
    summary = summarise(result)
    by = {(s["method"], s["defense"]): s for s in summary}
    labels = [defense_label(d) for d in spec.defenses]
    lines = [f"# UD benchmark: {spec.data.name} / {spec.model.name}", ""]
    for k, v in header.items():
        lines.append(f"- **{k}**: {v}")
    lines.append("")

    def table(title: str, key: str, digits: int, scale: float) -> None:
        lines.extend([f"## {title}", "", "| method | " + " | ".join(labels) + " |",
                      "|---|" + "---:|" * len(labels)])
        for m in ("clean", *spec.methods):
            cells = []
            for lab in labels:
                s = by[(m, lab)]
                if m == "clean" and key == "ud":
                    cells.append("1")  # the reference against itself, by definition
                    continue
                cells.append(_fmt(s[f"{key}_mean"] * scale, s[f"{key}_std"] * scale, s["n"], digits))
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")

    table("UD (mean ± std over seeds; clean = 1 by definition, lower = more unlearnable)", "ud", 3, 1.0)
    table("Clean test accuracy (%) after training on the poisoned data under the defense (mean ± std over seeds; "
          "row clean = the reference trained on clean data under the same defense)", "acc", 1, 100.0)
    return "\n".join(lines)


def machine_description() -> str:
    """CPU model, core count, OS, Python and torch versions (and the GPU if one is used)."""
    import torch

    from landscape.device import cpu_model

    cpu = cpu_model()
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""
    return (f"{cpu}, {os.cpu_count()} logical cores{gpu}; {platform.system()} {platform.release()}; "
            f"Python {platform.python_version()}, torch {torch.__version__}")


OUTPUTS = ("csv", "json", "md")


def output_files(prefix: str | Path) -> dict[str, Path]:
    """The files `write_outputs` writes for the prefix `prefix`: ``<prefix>.csv``, ``.json`` and ``.md``.

    A dot in the prefix is kept (``results/ud.v2`` -> ``results/ud.v2.csv``); a prefix that names one of the
    three files (``results/ud.csv``) stands for its own prefix (``results/ud``).
    """
    prefix = Path(prefix)
    if prefix.suffix[1:] in OUTPUTS:
        prefix = prefix.with_suffix("")
    return {kind: prefix.with_name(f"{prefix.name}.{kind}") for kind in OUTPUTS}


def write_outputs(result: BenchResult, out: str | Path, *, command: str, device: str) -> dict[str, Path]:
    """Write `<out>.csv` (one row per cell), `<out>.json` and `<out>.md` (`output_files`); return their paths."""
    from landscape.device import numeric_environment_line

    paths = output_files(out)
    paths["csv"].parent.mkdir(parents=True, exist_ok=True)
    spec = result.spec
    cells = len(result.rows)
    header = {
        "command": f"`{command}`",
        "machine": machine_description(),
        "numerics": numeric_environment_line(),
        "device": device,
        "executor": f"{result.executor} ({plural(result.workers, 'worker')}, 1 torch thread per cell)",
        "cells": f"{cells} ({plural(len(spec.methods), 'method')} × {plural(len(spec.defenses), 'defense')} × "
                 f"{plural(len(spec.seeds), 'seed')}); "
                 f"computed now: {result.computed}, loaded from the store: {result.loaded}",
        "wall time": f"{result.wall_seconds:.0f} s ({result.wall_seconds / 60:.1f} min) for this invocation",
        "worker time": _worker_time(result),
        "settings": settings_line(spec),
    }
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=ROW_FIELDS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in result.rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    atomic_write(paths["csv"], buf.getvalue())
    payload = {"header": header, "spec": spec.to_dict(), "rows": result.rows, "summary": summarise(result),
               "wall_seconds": result.wall_seconds, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    atomic_write(paths["json"], json.dumps(payload, indent=1, default=str) + "\n")
    atomic_write(paths["md"], markdown_tables(result, header) + "\n")
    return paths


def _worker_time(result: BenchResult) -> str:
    if not result.jobs or not sum(result.jobs.values()):
        return "nothing computed by this invocation (every cell loaded from the store)"
    parts = [f"{result.job_seconds[k]:.0f} s for {result.jobs[k]} {name}"
             for k, name in (("craft", "poison crafts"), ("reference", "clean references (defense x seed)"),
                             ("cell", "poisoned runs + UD"))]
    total = sum(result.job_seconds.values())
    return f"{total:.0f} s in all: " + ", ".join(parts) + " (jobs already in the store take ~0 s)"


def settings_line(spec: BenchSpec) -> str:
    t, s = spec.train, spec.sal
    n = f"n_train={spec.data.n_train}" if spec.data.n_train else "full training split"
    return (f"{spec.data.name} ({n}), model {spec.model.name}; {plural(t.epochs, 'epoch')}, {t.optimizer} lr {t.lr}, "
            f"batch {t.batch_size}, augment {t.augment}; SAL preset {s.preset_name} "
            f"({', '.join(f'{k}={v}' for k, v in s.to_dict().items() if k != 'seed')}; seed = the cell's seed); "
            f"poisons at each method's default budget for the data set; "
            f"defenses: {', '.join(defense_label(d) + _opts(d) for d in spec.defenses)}")


def _opts(d: DefenseSpec) -> str:
    return f" ({', '.join(f'{k}={format_value(v)}' for k, v in d.options)})" if d.options else ""


def read_summary(path: str | Path) -> dict[str, Any]:
    """Load a benchmark JSON written by `write_outputs` (for the app's UD page)."""
    return json.loads(Path(path).read_text())


__all__ = ["BenchResult", "BenchSpec", "Cell", "markdown_tables", "output_files", "plan_jobs", "read_summary",
           "run_bench", "stored_row", "summarise", "write_outputs"]
