"""Concurrent stages: independent stages computed side by side in forked worker processes, results in the store.

`compute_concurrently(stages, ctx, workers)` makes sure every stage of `stages` is stored. Each stage is got
(`Stage.get`) in a process of its own, forked from this one, with one torch thread (`landscape.device.CPU_THREADS`,
which training, crafting and SAL use anyway, so a result does not depend on the worker count) and the same store;
the inputs a stage needs (the training run under its SAL, the poison under that run) are computed in that process,
through the same stage code and keys as in this one. Nothing comes back but progress, completion and errors: the
caller then loads the results from the store, as it would after computing them itself.

- **Progress.** A worker's `(stage, done, total)` reports travel over a queue to `ctx.progress` in this process
  (one bar per stage: the CLI's tqdm bars, the app's status box).
- **Errors.** An exception in a worker is raised here, the same type with the same message (a `LandscapeError`
  reads as if the stage had run here); a worker that dies without a word is a `StageWorkerError` naming it.
- **Cancel.** Anything raised here while waiting (Ctrl-C, Streamlit's stop or rerun raised from the progress
  callback) terminates the workers before it propagates. A terminated worker unwinds (its temporary store
  folder is removed); store writes are atomic (`landscape.store`), so no half-written entry is ever served.
- **Signals.** Workers are forked with SIGINT and SIGTERM blocked and restore their own handlers first: they
  must not run the handlers of their parent (the Streamlit server's, which would wait on its event loop).

Workers only run on the CPU and where the "fork" start method exists; otherwise (an accelerator: one device,
and CUDA does not survive a fork) the stages are got one after the other in this process.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import queue
import signal
import traceback
from collections.abc import Sequence
from typing import Any

import torch

from landscape.device import CPU_THREADS
from landscape.errors import LandscapeError, SpecError
from landscape.stages.base import Context, Stage

__all__ = ["StageWorkerError", "compute_concurrently", "default_workers", "parse_workers"]

POLL = 0.1  # seconds between checks that the workers are still alive while no message arrives
GRACE = 10.0  # seconds a terminated worker has to unwind before it is killed
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StageWorkerError(LandscapeError):
    """A worker process computing a stage ended without a result or an error (killed, out of memory)."""


def default_workers() -> int:
    """Workers when none are asked for: 2 (an experiment has two independent chains), or 1 on a one-CPU machine."""
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(2, cpus))


def parse_workers(value: int | str) -> int:
    """`value` as a worker count: an integer >= 1, or "auto" (`default_workers()`); anything else is a SpecError."""
    if value == "auto":
        return default_workers()
    try:
        workers = int(value)
    except (TypeError, ValueError):
        workers = 0
    if isinstance(value, bool) or workers < 1 or str(workers) != str(value).strip():
        raise SpecError(f"workers = {value!r} is not valid; give an integer >= 1 (1 = one stage after the other in "
                        f"this process) or 'auto' ({default_workers()} here)")
    return workers


def _forkable(ctx: Context) -> bool:
    return ctx.torch_device().type == "cpu" and "fork" in multiprocessing.get_all_start_methods()


def compute_concurrently(stages: Sequence[Stage[Any]], ctx: Context, workers: int) -> None:
    """Store every stage of `stages`, up to `workers` of them at a time, each in a forked process (see the module).

    Stages already stored are skipped. With `workers == 1`, one stage left, or no fork on this device, they are
    got in this process, in order. The stages must not depend on each other (shared inputs are fine: the store's
    key lock computes each once).
    """
    workers = parse_workers(workers)
    todo = [s for s in dict.fromkeys(stages) if not s.exists(ctx.store)]
    if workers == 1 or len(todo) < 2 or not _forkable(ctx):
        for stage in todo:
            stage.get(ctx)
        return
    _Pool(ctx, workers).run(todo)


class _Pool:
    """Forks a worker per stage (at most `workers` alive), relays their messages, and cleans up whatever happens."""

    def __init__(self, ctx: Context, workers: int) -> None:
        self.ctx, self.workers = ctx, workers
        self.mp = multiprocessing.get_context("fork")
        self.messages: Any = self.mp.Queue()
        self.running: dict[int, tuple[Stage[Any], Any]] = {}

    def run(self, stages: Sequence[Stage[Any]]) -> None:
        pending = list(enumerate(stages))
        try:
            while pending or self.running:
                while pending and len(self.running) < self.workers:
                    self._start(*pending.pop(0))
                self._relay()
        finally:
            self._stop()
            self.messages.close()

    def _start(self, index: int, stage: Stage[Any]) -> None:
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # no parent handler may run in the child
        try:
            process = self.mp.Process(target=_work, args=(stage, self.ctx, index, self.messages, blocked),
                                      name=f"landscape-stage-{index}", daemon=True)
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.running[index] = (stage, process)

    def _relay(self) -> None:
        """Handle the next message; when none comes within `POLL`, check that every running worker is alive."""
        try:
            message = self.messages.get(timeout=POLL)
        except queue.Empty:
            self._check_alive()
        else:
            self._handle(message)

    def _check_alive(self) -> None:
        for index, (stage, process) in list(self.running.items()):
            if process.exitcode is not None and index in self.running:
                self._drain()  # its last messages may have arrived after the get timed out
                if index in self.running:
                    raise StageWorkerError(f"the worker computing {type(stage).__name__} {stage.key()[:12]} "
                                           f"ended with exit code {process.exitcode} and no result")

    def _drain(self) -> None:
        while True:
            try:
                self._handle(self.messages.get_nowait())
            except queue.Empty:
                return

    def _handle(self, message: tuple[Any, ...]) -> None:
        kind, index, *rest = message
        if kind == "progress":
            self.ctx.progress(*rest)
        elif kind == "done":
            self.running.pop(index)[1].join()
        else:  # "error": the pickled exception and the worker's traceback
            error, trace = pickle.loads(rest[0]), rest[1]
            self.running.pop(index)[1].join()
            if not isinstance(error, LandscapeError):
                error.add_note(f"raised in the stage worker:\n{trace}")
            raise error

    def _stop(self) -> None:
        """Terminate the workers still running and wait for them (killed if they do not unwind in `GRACE`)."""
        for _, process in self.running.values():
            if process.is_alive():
                process.terminate()
        for _, process in self.running.values():
            process.join(GRACE)
            if process.is_alive():
                process.kill()
                process.join()
        self.running.clear()


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: `finally` blocks remove the store's temporary folder


def _work(stage: Stage[Any], ctx: Context, index: int, messages: Any, mask: set[signal.Signals]) -> None:
    """A worker: its own signal handlers and one torch thread, then `stage.get` reporting over `messages`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the workers
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    torch.set_num_threads(CPU_THREADS)

    def report(name: str, done: int, total: int) -> None:
        messages.put(("progress", index, name, done, total))

    try:
        stage.get(Context(ctx.store, ctx.device, report))
    except Exception as err:  # noqa: BLE001 - every failure is sent to the parent, which raises it
        messages.put(("error", index, _portable(err), traceback.format_exc()))
    else:
        messages.put(("done", index))
    messages.close()
    messages.join_thread()  # every message is in the pipe before the process ends


def _portable(err: Exception) -> bytes:
    """`err` pickled; if it does not survive pickling, a plain exception of the nearest kind with its message."""
    try:
        data = pickle.dumps(err)
        pickle.loads(data)
        return data
    except Exception:  # noqa: BLE001 - an exception with unpicklable state: keep its type name and message
        kind = LandscapeError if isinstance(err, LandscapeError) else RuntimeError
        return pickle.dumps(kind(f"{type(err).__name__}: {err}" if kind is RuntimeError else str(err)))
