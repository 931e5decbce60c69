"""`python -m landscape bench`: the UD benchmark, every method x defense x seed, cached, resumable, parallel.

Example: `python -m landscape bench --dataset digits --model cnn --methods all --defenses none,cutout,jpeg,at
--seeds 3 --workers 2`. Writes `<out>.csv`, `<out>.json` and `<out>.md` (default
`assets/benchmarks/ud_<dataset>_<model>`); rerunning the same command loads the finished cells from the store.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from landscape.commands import COMMANDS, Command
from landscape.commands.common import (
    add_data_args,
    add_model_args,
    add_train_args,
    at_least,
    experiment_specs,
    open_store,
    output_path,
)
from landscape.config import SAL_PRESETS, DefenseSpec, SALSpec
from landscape.errors import SpecError
from landscape.spec import plural


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_data_args(p)  # not add_experiment_args: the benchmark's own --device and --store, no --json
    add_model_args(p)
    add_train_args(p)
    p.add_argument("--methods", default="all", help="comma-separated poison methods, or 'all' (every registered one)")
    p.add_argument("--defenses", default="none",
                   help="comma-separated defenses, each NAME or NAME:opt=value;opt=value "
                        "(e.g. none,cutout,jpeg:quality=10,at:eps=32/255;steps=5)")
    p.add_argument("--seeds", type=at_least(1), default=3, help="number of seeds (0..N-1), or see --seed-list")
    p.add_argument("--seed-list", default=None, help="explicit comma-separated seeds (overrides --seeds)")
    p.add_argument("--sal", default="fast", choices=SAL_PRESETS, help="SAL preset")
    p.add_argument("--sal-every", type=int, default=1, help="measure SAL every this many epochs (and the last)")
    p.add_argument("--workers", type=at_least(1), default=1, help="local worker processes (1 = run in this process)")
    p.add_argument("--ray", default=None, metavar="ADDRESS",
                   help="submit cells to the Ray cluster at ADDRESS ('auto', 'HOST:PORT'; 'local' starts one)")
    p.add_argument("--threads", type=at_least(1), default=1,
                   help="torch threads per cell (part of what fixes the numbers)")
    p.add_argument("--out", default=None, help="output prefix of the .csv, .json and .md files, dots kept (ud.v2: "
                   "ud.v2.csv, ...; default: assets/benchmarks/ud_<dataset>_<model> under the current folder)")
    p.add_argument("--device", default="cpu", help="cpu, cuda, mps or auto")
    p.add_argument("--store", default=None, help="store folder (default: $UE_LANDSCAPE_STORE or ~/.cache/ue-landscape)")
    p.add_argument("--dry-run", action="store_true", help="print the cells and how many are stored, then stop")


def parse_defenses(text: str) -> tuple[DefenseSpec, ...]:
    """"none,jpeg:quality=30,at:eps=32/255;steps=5" -> specs (';' separates one defense's options)."""
    out = []
    for item in filter(None, (s.strip() for s in text.split(","))):
        out.append(DefenseSpec.parse(item.replace(";", ",")))
    if not out:
        raise SpecError("--defenses is empty; give e.g. none,cutout,jpeg,at")
    return tuple(out)


def parse_seeds(text: str) -> tuple[int, ...]:
    """"0,1,7" -> (0, 1, 7); anything that is not a comma-separated list of integers is refused."""
    items = [s.strip() for s in text.split(",")]
    if not all(s.lstrip("-").isdigit() for s in items):
        raise SpecError(f"--seed-list {text!r} must be comma-separated integers, e.g. 0,1,2")
    return tuple(int(s) for s in items)


def parse_methods(text: str) -> tuple[str, ...]:
    from landscape.poisons import POISONS

    if text.strip() == "all":
        return tuple(POISONS.names())
    return tuple(POISONS.check(m.strip()) for m in text.split(",") if m.strip())


def run(a: argparse.Namespace) -> int:
    from landscape.bench import BenchSpec, output_files, run_bench, stored_row, write_outputs
    from landscape.device import resolve_device
    from landscape.executors import make_executor

    seeds = parse_seeds(a.seed_list) if a.seed_list is not None else tuple(range(a.seeds))
    sal = SALSpec.preset(a.sal).replace(every=a.sal_every)
    data, model, train = experiment_specs(a)
    spec = BenchSpec(data, model, train, sal, parse_methods(a.methods), parse_defenses(a.defenses), seeds)
    store = open_store(a, write=not a.dry_run)
    # On a Ray cluster the workers resolve the device (the driver may have no GPU).
    device = a.device if a.ray is not None else str(resolve_device(a.device))
    cells = spec.cells()
    if a.dry_run:
        stored = sum(stored_row(c, store) is not None for c in cells)
        print(f"{plural(len(cells), 'cell')} ({plural(len(spec.methods), 'method')} x "
              f"{plural(len(spec.defenses), 'defense')} x {plural(len(seeds), 'seed')}); "
              f"{stored} already stored in {store.root}")
        return 0
    name = f"ud_{spec.data.name}_{spec.model.name}"
    out = output_path(a.out if a.out is not None else f"assets/benchmarks/{name}", "--out",
                      hint=f"--out is the prefix of the three files the benchmark writes: give e.g. {{path}}/{name} "
                           f"to write {{path}}/{name}.csv, .json and .md")
    for kind, path in output_files(out).items():
        output_path(str(path), f"--out (its .{kind} file)")
    executor = make_executor(workers=a.workers, ray_address=a.ray, store_root=str(Path(store.root).resolve()),
                             device=device, threads=a.threads)

    def progress(done: int, total: int, what: str) -> None:
        print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)

    result = run_bench(spec, store=store, executor=executor, progress=progress,
                       workers=a.workers if a.ray is None else 0)
    command = "python -m landscape bench " + " ".join(shlex.quote(x) for x in sys.argv[2:]) \
        if len(sys.argv) > 1 and sys.argv[1] == "bench" else "python -m landscape bench (called from Python)"
    paths = write_outputs(result, out, command=command, device=device)
    print(paths["md"].read_text())
    print(f"wrote {', '.join(str(p) for p in paths.values())}; {plural(result.computed, 'cell')} computed, "
          f"{result.loaded} loaded from the store, {result.wall_seconds:.0f} s")
    return 0


COMMANDS.register("bench")(Command("UD benchmark: methods x defenses x seeds (cached, parallel)", add_arguments, run))
