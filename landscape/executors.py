"""How benchmark jobs run: in this process, in local processes, or as tasks on a Ray cluster.

A job is `execute(kind, cell, ...)` (craft a cell's poison, train its clean reference, or compute its row), a
module-level function so that process and Ray workers can import it; it leaves its result in the store. The
scheduler (`landscape.bench.run_bench`) submits jobs to an `Executor` and waits for them:

* `SerialExecutor` runs jobs in this process (`--workers 1`);
* `ProcessExecutor` runs them in N local processes (`--workers N`, spawn start method);
* `RayExecutor` submits them as tasks to a Ray cluster (`--ray ADDRESS`; Ray is an optional extra).

Each job runs with a fixed number of torch threads (1 by default), so its numbers do not depend on the executor.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterator
from typing import Any, Protocol

from landscape.config import PoisonSpec
from landscape.device import limited_threads
from landscape.errors import LandscapeError, SpecError, one_line_warning
from landscape.experiment import get_poisoned_train, get_training
from landscape.stages.base import Context
from landscape.stages.bench import BenchCell, Cell
from landscape.store import Store

__all__ = ["Executor", "ProcessExecutor", "RayExecutor", "SerialExecutor", "execute", "make_executor"]


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
