"""Concurrent stages: independent stages computed side by side in forked worker processes, results in the store.

`compute_concurrently(stages, ctx, workers)` makes sure every stage of `stages` is stored, with up to `workers`
processes forked from this one, each with one torch thread (`landscape.device.CPU_THREADS`, which training,
crafting and SAL use anyway, so no number depends on the worker count) and the same store. The work is cut into
tasks:

- a stage is got (`Stage.get`) in a worker, its inputs (the training run's poison, ...) computed there through
  the same stage code and keys as in this process; nothing comes back but completion, the result is in the store;
- SAL of a run's stored checkpoints (`SALStage`) is split by epochs (every epoch is measured on its own
  checkpoint with its own seeds): its run is got first, as a task of its own, then its epoch ranges are measured
  by whichever workers are free, their traces come back over the queue, and this process concatenates them and
  stores the stage's entry (`Stage.put`): the same entry, bit for bit, as computing it in one piece.

So the two chains of an experiment (the clean run and its SAL; crafting, the poisoned run and its SAL) run side
by side, and the longer one's SAL is shared out instead of running alone at the end. The caller then loads every
result from the store, as it would after computing it itself.

- **Progress.** Workers' `(stage, done, total)` reports travel over a queue to `ctx.progress` here (one bar per
  stage: the CLI's tqdm bars, the app's status box); a split stage's parts add up to one bar.
- **Errors.** An exception in a worker is raised here, the same type with the same message (a `LandscapeError`
  reads as if the stage had run here); a worker that dies without a word is a `StageWorkerError` naming its task.
- **Cancel.** Anything raised here while waiting (Ctrl-C, Streamlit's stop or rerun raised from the progress
  callback) terminates the workers before it propagates. A terminated worker unwinds (the store's temporary
  folder is removed); store writes are atomic (`landscape.store`), so no half-written entry is ever served.
- **Signals.** Workers are forked with SIGINT and SIGTERM blocked and install their own handlers first: they
  must not run their parent's (the Streamlit server's, which wait on an event loop the child does not have).

Workers only run on the CPU and where the "fork" start method exists; otherwise (an accelerator: one device,
and CUDA does not survive a fork) the stages are got one after the other in this process.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import queue
import signal
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from landscape.device import CPU_THREADS, numeric_environment
from landscape.errors import LandscapeError, SpecError
from landscape.malloc import keep_freed_memory
from landscape.sal import SALTrace, SALTracker
from landscape.stages.base import Context, Stage, get_splits
from landscape.stages.train import Replay, SALStage, run_label

__all__ = ["StageWorkerError", "compute_concurrently", "default_workers", "parse_workers"]

POLL = 0.1  # seconds between checks that the workers are alive while no message arrives
GRACE = 10.0  # seconds a terminated worker has to unwind before it is killed
PARTS_PER_WORKER = 8  # a split stage is cut into about this many epoch ranges per worker (balance vs. messages)
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
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or int(text) < 1:
        raise SpecError(f"workers = {value!r} is not valid; give an integer >= 1 (1 = one stage after the other in "
                        f"this process) or 'auto' ({default_workers()} here)")
    return int(text)


def compute_concurrently(stages: Sequence[Stage[Any]], ctx: Context, workers: int | str,
                         meanwhile: Callable[[], None] | None = None) -> None:
    """Store every stage of `stages` with up to `workers` forked processes (see the module).

    Stages already stored are skipped. With `workers == 1`, a single stage left, or no fork on this device, they
    are got in this process, in order. The stages must not depend on each other (shared inputs are fine: the
    store's key lock computes each once). `meanwhile` is called here once the workers have their first tasks (the
    caller's own preparation, e.g. imports, overlapping theirs); it is not called when nothing is forked.
    """
    count = parse_workers(workers)
    todo = [s for s in dict.fromkeys(stages) if not s.exists(ctx.store)]
    forkable = ctx.torch_device().type == "cpu" and "fork" in multiprocessing.get_all_start_methods()
    if count == 1 or len(todo) < 2 or not forkable:
        for stage in todo:
            stage.get(ctx)
        return
    _warm(todo)
    _Pool(ctx, count).run(_plan(todo, ctx, count), meanwhile)


def _warm(stages: Sequence[Stage[Any]]) -> None:
    """Load here, once, what every worker would load for itself, so the fork shares it.

    That is the data, the optimizer code (torch.optim imports torch._dynamo, with sympy, on the first optimizer:
    ~1 s of CPU per process) and the numeric environment every store entry records (its oneDNN probe runs a
    convolution). A worker that imports a module itself can also hang: another thread of this process (a Streamlit
    server's) may hold that module's import lock at the fork, and the worker inherits the lock held by a thread it
    does not have.
    """
    import torch._dynamo  # noqa: F401

    numeric_environment()
    for stage in stages:
        get_splits(stage.data)


# ------------------------------------------------------------------------------------------------ tasks


@dataclass(eq=False)
class _Task:
    """One unit of work: get `stage`, or (`within` given) measure the SAL stage `stage` at the epochs `within`.

    `after`: the task that must finish first (a SAL part waits for its run); `split`: the split stage a part
    belongs to.
    """

    stage: Stage[Any]
    within: range | None = None
    after: _Task | None = None
    split: _Split | None = None


@dataclass(eq=False)
class _Split:
    """A SAL stage computed in parts: their traces, gathered until every part is in."""

    stage: SALStage
    parts: int
    epochs: int  # measured epochs of the run (for one progress bar over the parts)
    traces: dict[int, SALTrace] = field(default_factory=dict)
    done: dict[int, int] = field(default_factory=dict)  # per part: epochs measured so far


def _plan(stages: Sequence[Stage[Any]], ctx: Context, workers: int) -> list[_Task]:
    """The tasks of `stages`, in the order they are handed out: each stage's first task, then the SAL parts."""
    first: list[_Task] = []
    parts: list[_Task] = []
    for stage in stages:
        if not isinstance(stage, SALStage):
            first.append(_Task(stage))
            continue
        run = None if stage.run.exists(ctx.store) else _Task(stage.run)
        epochs = stage.run.train.epochs
        size = max(1, math.ceil(epochs / (PARTS_PER_WORKER * workers)))
        ranges = [range(lo, min(lo + size, epochs + 1)) for lo in range(1, epochs + 1, size)]
        tracker = SALTracker(stage.sal)
        split = _Split(stage, len(ranges), sum(tracker.measures(e, epochs) for e in range(1, epochs + 1)))
        first.extend([run] if run is not None else [])
        parts.extend(_Task(stage, r, run, split) for r in ranges)
    return first + parts


# ------------------------------------------------------------------------------------------------ parent


class _Pool:
    """Forks the workers, hands out tasks whose inputs are done, relays messages, cleans up whatever happens."""

    def __init__(self, ctx: Context, workers: int) -> None:
        self.ctx, self.workers = ctx, workers
        self.mp = multiprocessing.get_context("fork")
        self.messages: Any = self.mp.Queue()
        self.processes: list[Any] = []
        self.inboxes: list[Any] = []
        self.busy: dict[int, tuple[int, _Task]] = {}  # worker -> (task id, task)

    def run(self, tasks: list[_Task], meanwhile: Callable[[], None] | None = None) -> None:
        pending, finished = list(enumerate(tasks)), set()
        try:
            for w in range(min(self.workers, len(tasks))):
                self._fork(w)
            self._assign(pending, finished)
            if meanwhile is not None:
                meanwhile()
            while pending or self.busy:
                finished.update(self._next())
                self._assign(pending, finished)
            for inbox in self.inboxes:
                inbox.put(None)
            for process in self.processes:
                process.join()
        finally:
            self._stop()

    def _assign(self, pending: list[tuple[int, _Task]], finished: set[int]) -> None:
        """Hand each idle worker the first pending task whose input is done."""
        for w in range(len(self.processes)):
            ready = next((i for i, (_, t) in enumerate(pending) if t.after is None or id(t.after) in finished), None)
            if w not in self.busy and ready is not None:
                self.busy[w] = pending.pop(ready)
                task = self.busy[w][1]
                self.inboxes[w].put((task.stage, task.within))

    def _fork(self, w: int) -> None:
        inbox = self.mp.SimpleQueue()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # no parent handler may run in the child
        try:
            process = self.mp.Process(target=_serve, args=(w, self.ctx, inbox, self.messages, blocked),
                                      name=f"landscape-stage-worker-{w}", daemon=True)
            process.start()
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        self.processes.append(process)
        self.inboxes.append(inbox)

    def _next(self) -> list[int]:
        """Handle the messages that arrive within `POLL` (checking that busy workers are alive): the finished tasks."""
        try:
            message = self.messages.get(timeout=POLL)
        except queue.Empty:
            return self._check_alive()
        return self._handle(message) + self._drain()

    def _check_alive(self) -> list[int]:
        finished = self._drain()  # a worker's last messages may arrive after the get timed out
        for w, (_, task) in self.busy.items():
            if self.processes[w].exitcode is not None:
                raise StageWorkerError(f"the worker computing {_describe(task)} ended with exit code "
                                       f"{self.processes[w].exitcode} and no result")
        return finished

    def _drain(self) -> list[int]:
        finished: list[int] = []
        while True:
            try:
                finished += self._handle(self.messages.get_nowait())
            except queue.Empty:
                return finished

    def _handle(self, message: tuple[Any, ...]) -> list[int]:
        kind, w, *rest = message
        task_id, task = self.busy[w]
        if kind == "progress":
            self._progress(task, *rest)
            return []
        if kind == "error":
            error, trace = pickle.loads(rest[0]), rest[1]
            if not isinstance(error, LandscapeError):
                error.add_note(f"raised in the stage worker computing {_describe(task)}:\n{trace}")
            raise error
        del self.busy[w]
        if task.split is not None:
            self._gather(task, rest[0])
        return [id(task)]

    def _progress(self, task: _Task, name: str, done: int, total: int) -> None:
        split = task.split
        if split is None:
            self.ctx.progress(name, done, total)
            return
        split.done[id(task)] = done
        self.ctx.progress(name, sum(split.done.values()), split.epochs)

    def _gather(self, task: _Task, trace: SALTrace) -> None:
        """Keep a part's trace; with every part in, store the split stage's entry (its parts in epoch order)."""
        split = task.split
        assert split is not None and task.within is not None
        split.traces[task.within.start] = trace
        if len(split.traces) == split.parts:
            whole = SALTrace.concat([split.traces[k] for k in sorted(split.traces)], split.stage.sal)
            split.stage.put(self.ctx, split.stage.stored(whole))
            self.ctx.progress(f"sal-{run_label(split.stage.run.poison)}", len(whole.epochs), len(whole.epochs))

    def _stop(self) -> None:
        """Terminate the workers still alive and wait for them (killed if they do not unwind within `GRACE`)."""
        for process in self.processes:
            if process.is_alive():
                process.terminate()
        for process in self.processes:
            process.join(GRACE)
            if process.is_alive():
                process.kill()
                process.join()
        for inbox in self.inboxes:
            inbox.close()
        self.messages.close()
        self.processes, self.inboxes, self.busy = [], [], {}


def _describe(task: _Task) -> str:
    what = f"{type(task.stage).__name__} {task.stage.key()[:12]}"
    return what if task.within is None else f"{what} at epochs {task.within.start}-{task.within.stop - 1}"


# ------------------------------------------------------------------------------------------------ workers


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)  # unwinds: `finally` blocks remove the store's temporary folder


def _serve(w: int, ctx: Context, inbox: Any, messages: Any, mask: Any) -> None:
    """A worker: its own signal handlers and one torch thread, then tasks from `inbox` until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the whole group: the parent stops the workers
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    torch.set_num_threads(CPU_THREADS)
    keep_freed_memory()  # also when the parent is the app's server, which keeps glibc's defaults

    def report(name: str, done: int, total: int) -> None:
        messages.put(("progress", w, name, done, total))

    here = Context(ctx.store, ctx.device, report)
    replays: dict[Stage[Any], Replay] = {}  # a split stage's run, loaded once per worker
    while (task := inbox.get()) is not None:
        stage, within = task
        try:
            if within is None:
                stage.get(here)
                result = None
            else:
                if stage not in replays:
                    replays[stage] = Replay.of(stage.run, here)
                result = stage.measure(replays[stage], here, within)
        except Exception as err:  # noqa: BLE001 - every failure is sent to the parent, which raises it
            messages.put(("error", w, _portable(err), traceback.format_exc()))
            break
        messages.put(("done", w, result))
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
