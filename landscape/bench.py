"""The UD benchmark engine: a grid of cells (method x defense x seed), executors, resume, and the tables.

A cell trains a clean reference model and a poisoned model under the same defense, both with SAL per
epoch, and reports clean test accuracy and UD (Ye, Su, Qian, ICLR 2025). Each cell is a pure function of
its spec (every seed is in the spec; each cell runs with a fixed number of torch threads, 1 by default),
so the numbers do not depend on which executor ran it or on how many workers there were (on the CPU,
bit for bit; on a GPU up to cuDNN's non-deterministic kernels):

* `SerialExecutor` runs jobs in this process (`--workers 1`);
* `ProcessExecutor` runs them in N local processes (`--workers N`, spawn start method);
* `RayExecutor` submits them as tasks to a Ray cluster (`--ray ADDRESS`; Ray is an optional extra).

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

import contextlib
import csv
import io
import json
import math
import os
import platform
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from landscape.config import (
    MAX_SEED,
    DataSpec,
    DefenseSpec,
    ModelSpec,
    PoisonSpec,
    SALSpec,
    TrainSpec,
    format_value,
)
from landscape.defenses import defense_label
from landscape.device import limited_threads
from landscape.errors import LandscapeError, SpecError, one_line_warning
from landscape.experiment import get_poisoned_train, get_training
from landscape.files import atomic_write
from landscape.spec import plural
from landscape.stages.base import Context
from landscape.stages.bench import ROW_FIELDS, BenchCell, Cell
from landscape.store import Store

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

        if not self.methods or not self.defenses or not self.seeds:
            raise SpecError("a benchmark needs at least one method, one defense and one seed")
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


# ---------------------------------------------------------------------------------------------- cell work

# Stage functions (module level so that process and Ray workers can import them). Each takes the cell,
# the store root and the device name, and leaves its result in the store.


def execute(kind: str, cell: Cell, store_root: str, device: str, threads: int) -> dict[str, Any]:
    """Run one job of `kind` ("craft", "reference" or "cell") for `cell`: {"row": the cell's row or None, "seconds"}.

    "craft" crafts the cell's poison, "reference" trains its clean reference with SAL (both shared by other
    cells), "cell" computes its row (the poisoned run, SAL and UD); each leaves its result in the store.
    """
    if kind not in ("craft", "reference", "cell"):
        raise ValueError(f"unknown job kind {kind!r}; valid: craft, reference, cell")
    store = Store(store_root)
    started = time.perf_counter()
    row = None
    with limited_threads(threads):
        if kind == "craft":
            get_poisoned_train(cell.data, cell.poison, store=store, device=device)
        elif kind == "reference":
            exp = cell.experiment()
            get_training(exp.data, exp.model, exp.train, PoisonSpec(), store=store, device=device, sal=exp.sal,
                         defense=exp.defense)
        else:
            row = BenchCell.of(cell).get(Context(store, device))
    return {"row": row, "seconds": time.perf_counter() - started}


def stored_row(cell: Cell, store: Any) -> dict[str, Any] | None:
    """The stored summary row of `cell`, or None."""
    return BenchCell.of(cell).load(store)


# ---------------------------------------------------------------------------------------------- executors


class Executor(Protocol):
    """Runs `execute(kind, cell, ...)` jobs; `wait` blocks until at least one submitted job finished."""

    name: str

    def submit(self, job_id: int, kind: str, cell: Cell) -> None: ...

    def wait(self) -> list[tuple[int, dict[str, Any]]]: ...

    def close(self) -> None: ...


class SerialExecutor:
    """Runs each job in this process, one after the other (`--workers 1`)."""

    name = "serial"

    def __init__(self, store_root: str, device: str, threads: int = 1) -> None:
        self.args = (store_root, device, threads)
        self.queue: list[tuple[int, str, Cell]] = []

    def submit(self, job_id: int, kind: str, cell: Cell) -> None:
        self.queue.append((job_id, kind, cell))

    def wait(self) -> list[tuple[int, dict[str, Any]]]:
        job_id, kind, cell = self.queue.pop(0)
        return [(job_id, execute(kind, cell, *self.args))]

    def close(self) -> None:
        self.queue.clear()


def _init_worker(threads: int) -> None:
    warnings.formatwarning = one_line_warning  # as the CLI that started the worker prints them
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    import torch

    from landscape.malloc import keep_freed_memory

    torch.set_num_threads(threads)
    keep_freed_memory()  # a spawned process does not inherit the CLI's malloc settings


class ProcessExecutor:
    """Runs jobs in `workers` local processes (spawned, so no state is inherited from this process)."""

    name = "processes"

    def __init__(self, workers: int, store_root: str, device: str, threads: int = 1) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.workers = workers
        self.args = (store_root, device, threads)
        self.pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                        initializer=_init_worker, initargs=(threads,))
        self.futures: dict[Any, int] = {}

    def submit(self, job_id: int, kind: str, cell: Cell) -> None:
        self.futures[self.pool.submit(execute, kind, cell, *self.args)] = job_id

    def wait(self) -> list[tuple[int, dict[str, Any]]]:
        from concurrent.futures import FIRST_COMPLETED, wait

        done, _ = wait(list(self.futures), return_when=FIRST_COMPLETED)
        return [(self.futures.pop(f), f.result()) for f in done]

    def close(self) -> None:
        for f in self.futures:
            f.cancel()
        self.pool.shutdown(wait=True, cancel_futures=True)


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise LandscapeError("Ray is not installed; it is an optional extra: pip install 'ue-landscape[ray]' "
                             "(or pip install ray)") from None
    return ray


class RayExecutor:
    """Submits jobs as tasks (1 CPU each, and 1 GPU each when `device` is "cuda") to a Ray cluster.

    Args:
        address: a cluster address ("HOST:PORT", "auto", "ray://HOST:PORT"); "local" starts a private local
            instance; None uses the instance this process already initialised (e.g. in a test).
        store_root: absolute store path, as seen by the workers (a shared file system on a multi-node cluster).
    """

    name = "ray"

    def __init__(self, address: str | None, store_root: str, device: str, threads: int = 1) -> None:
        with _bounded_wait(address):  # around the import too: Ray reads one of the settings when it is imported
            ray = _ray()
            self.ray = ray
            self.owns = False
            if address is not None and not ray.is_initialized():
                self._connect(address)
        if not ray.is_initialized():
            raise LandscapeError("no Ray instance: pass --ray ADDRESS (or --ray local)")
        gpus = 1 if device.startswith("cuda") else 0  # Ray then sets CUDA_VISIBLE_DEVICES for each task
        self.task = ray.remote(num_cpus=1, num_gpus=gpus)(_ray_execute)
        self.args = (store_root, device, threads)
        self.refs: dict[Any, int] = {}

    def _connect(self, address: str) -> None:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False}
        try:
            if address == "local":
                self.ray.init(**kwargs)
            else:
                self.ray.init(address=address, **kwargs)
        except (ConnectionError, ValueError, RuntimeError) as err:
            # Ray's ConnectionError is an OSError: uncaught, the CLI would call it a file error.
            raise LandscapeError(_ray_unreachable(address, err)) from None
        self.owns = True

    def submit(self, job_id: int, kind: str, cell: Cell) -> None:
        self.refs[self.task.remote(kind, cell, *self.args)] = job_id

    def wait(self) -> list[tuple[int, dict[str, Any]]]:
        done, _ = self.ray.wait(list(self.refs), num_returns=1)
        return [(self.refs.pop(r), self.ray.get(r)) for r in done]

    def close(self) -> None:
        for r in self.refs:
            with contextlib.suppress(Exception):
                self.ray.cancel(r)
        self.refs.clear()
        if self.owns:
            self.ray.shutdown()


# Where no cluster answers, Ray tries the address 20 times, each try waiting ~35 s (over 10 minutes in all, Ray
# 2.60); these make it one try of ~20 s. A value already in the environment is the user's and is kept.
RAY_CONNECT_BOUND = {"RAY_gcs_server_port_wait_time_s": "1",  # tries, ~1 s apart; read on each connect
                     "RAY_py_gcs_connect_timeout_s": "8"}  # each try's wait (+ ~10 s); read when Ray is imported


@contextlib.contextmanager
def _bounded_wait(address: str | None) -> Iterator[None]:
    """`RAY_CONNECT_BOUND` set while Ray is imported and connects to `address` (not "local": it starts its own)."""
    bound = {} if address in (None, "local") else {k: v for k, v in RAY_CONNECT_BOUND.items() if k not in os.environ}
    os.environ.update(bound)
    try:
        yield
    finally:
        for k in bound:
            os.environ.pop(k, None)


def _ray_unreachable(address: str, err: Exception) -> str:
    """One line for a Ray instance that could not be reached or started: Ray's reason, then what to do instead.

    Ray's own text goes on to recommend its `--address` flag and `RAY_ADDRESS` (of `ray` commands, not of
    this one), so only its first sentence is kept.
    """
    reason = str(err).strip().split(". ")[0].rstrip(".") or type(err).__name__
    if address == "local":
        return (f"cannot start a local Ray instance ({reason}); run the cells in local processes with "
                f"--workers N instead")
    start = ("start one first ('ray start --head' on this machine is what 'auto' finds), or "
             if isinstance(err, ConnectionError) else "")  # not when Ray itself lacks a part (ray[client])
    return (f"cannot connect to a Ray cluster at {address!r} ({reason}); {start}pass --ray local to start a private "
            f"one for this run, or --workers N to run the cells in N local processes instead")


def _ray_execute(kind: str, cell: Cell, store_root: str, device: str, threads: int) -> dict[str, Any]:
    _init_worker(threads)
    return execute(kind, cell, store_root, device, threads)


def make_executor(*, workers: int = 1, ray_address: str | None = None, store_root: str, device: str = "cpu",
                  threads: int = 1) -> Executor:
    """The executor for `--workers N` / `--ray ADDRESS`."""
    if workers < 1:
        raise SpecError(f"workers = {workers} must be at least 1")
    if threads < 1:
        raise SpecError(f"threads = {threads} must be at least 1 (torch threads per cell)")
    if ray_address is not None:
        return RayExecutor(ray_address, store_root, device, threads)
    if workers == 1:
        return SerialExecutor(store_root, device, threads)
    return ProcessExecutor(workers, store_root, device, threads)


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


__all__ = ["BenchResult", "BenchSpec", "Cell", "ProcessExecutor", "RayExecutor", "SerialExecutor", "execute",
           "make_executor", "markdown_tables", "output_files", "plan_jobs", "read_summary", "run_bench", "stored_row",
           "summarise", "write_outputs"]
