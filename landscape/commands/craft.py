"""`python -m landscape craft`: craft one unlearnable-example poison (cached in the store) and summarise it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from landscape.commands import COMMANDS, Command
from landscape.commands.common import (
    add_data_args,
    add_run_args,
    data_spec,
    output_path,
    print_json,
    refuse_given,
    working,
)
from landscape.config import DataSpec, PoisonSpec
from landscape.device import resolve_device
from landscape.errors import SpecError
from landscape.paths import user_path, writable_folder
from landscape.store import Store

if TYPE_CHECKING:
    import torch

    from landscape.data.imageset import Splits


def parse_number(text: str) -> float:
    """A float written plainly or as a fraction ("8/255")."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number or a fraction like 8/255") from None


def parse_option(text: str) -> tuple[str, Any]:
    """`name=value`; the value becomes an int, a float, a bool (true/false) or stays a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"option {text!r} must look like name=value (e.g. steps=20)")
    name, raw = text.split("=", 1)
    value: Any = raw
    if raw.lower() in ("true", "false"):
        value = raw.lower() == "true"
    else:
        for cast in (int, float):
            try:
                value = cast(raw)
                break
            except ValueError:
                continue
    return name.strip(), value


def add_poison_args(p: argparse.ArgumentParser) -> None:
    from landscape.poisons import POISONS

    p.add_argument("--method", default="em", help=f"poison method ({', '.join(POISONS.names())}), or provided with "
                                                  f"--option images=FILE.npz: your own poisoned training images")
    p.add_argument("--eps", type=parse_number, default=None,
                   help="budget under the method's norm, e.g. 8/255 for L∞ (default: the method's data-set default)")
    p.add_argument("--ratio", type=float, default=1.0, help="fraction of training images poisoned, in (0, 1]")
    p.add_argument("--poison-seed", type=int, default=0, help="seed of the crafting procedure")
    p.add_argument("--option", type=parse_option, action="append", default=[], metavar="NAME=VALUE",
                   help="method option, repeatable (e.g. --option mode=class --option pgd_steps=20)")


def poison_spec(a: argparse.Namespace) -> PoisonSpec:
    return PoisonSpec(method=a.method, eps=a.eps, ratio=a.ratio, seed=a.poison_seed, options=tuple(a.option))


def require_poison(command: str, poison: PoisonSpec, hint: str = "") -> None:
    """Refuse method 'clean' for a command that crafts a poison, naming the methods there are."""
    if poison.method == "clean":
        from landscape.poisons import POISONS

        raise SpecError(f"{command} needs a poison method, not 'clean'; choose one of "
                        f"{', '.join(POISONS.names())}{hint}")


def craft_cached(data: DataSpec, poison: PoisonSpec, *, store: Store, device: str,
                 progress: Any = None) -> tuple[Any, bool, str]:
    """(Crafted, was it stored already, store key): the poison stage `experiment.get_poisoned_train` uses."""
    from landscape.stages.base import Context, no_progress
    from landscape.stages.poison import PoisonStage

    stage = PoisonStage.of(data, poison)
    cached = stage.exists(store)
    return stage.get(Context(store, resolve_device(device), progress or no_progress)), cached, stage.key()


def add_arguments(p: argparse.ArgumentParser) -> None:
    from landscape.poisons.release import DEFAULT_DTYPE, DTYPES

    add_data_args(p)
    add_poison_args(p)
    g = p.add_argument_group("export the poisoned training set")
    g.add_argument("--out", default=None, metavar="FILE.npz|FOLDER",
                   help="write the poisoned training images: an .npz (x, y, the clean x_test, y_test, class_names; "
                        "a data set for --dataset npz:FILE and an images file for --method provided) or a new or "
                        "empty folder of PNGs, one sub-folder per class (--dataset folder:PATH); default: none, "
                        "nothing is written")
    g.add_argument("--out-dtype", default=DEFAULT_DTYPE, choices=DTYPES,
                   help="pixels of --out: uint8 (default: what you publish, rounded to the 1/255 grid; its budget "
                        "figures are printed) or float32 (exact, .npz only)")
    add_run_args(p)


def out_target(a: argparse.Namespace) -> tuple[Path, str] | None:
    """(path, "npz" or "folder") of --out, checked before any work (None without --out)."""
    if a.out is None:
        refuse_given(a, {"out_dtype"}, "without --out")
        return None
    from landscape.poisons.release import FOLDER, target_kind

    kind = target_kind(user_path(a.out, "--out"), a.out_dtype, "--out")
    path = writable_folder(user_path(a.out, "--out"), "--out") if kind == FOLDER else \
        output_path(a.out, "--out", "poisoned.npz")
    return path, kind


def budget_line(b: dict[str, Any]) -> str:
    """The budget figures of `budget_figures` on one line."""
    psnr = "n/a" if b["psnr"] is None else f"{b['psnr']:.1f} dB"
    return (f"L∞ {b['linf']:.4f} ({b['linf'] * 255:.1f}/255)   L2 mean {b['l2_mean']:.3f} max {b['l2_max']:.3f}   "
            f"L0 mean {b['l0_mean']:.1f} px   PSNR {psnr}")


def announcement(data: DataSpec, poison: PoisonSpec, splits: Splits, store: Store, device: torch.device) -> str:
    """What craft is about to do, checked before it does it (resolving the poison refuses a bad one).

    `provided` images (`landscape.poisons.provided`) are measured, not crafted: no method and no cost estimate.
    """
    from landscape.poisons import build, provided
    from landscape.stages.poison import PoisonStage

    stage = PoisonStage.of(data, poison)  # resolves: an unknown method, a ratio that poisons no image, provided
    # images missing or of another shape are refused here
    if poison.method == provided.PROVIDED:
        what = f"measuring {dict(stage.poison.options)['images']} against the {len(splits.train)} clean {data.name} " \
               f"training images"
    else:
        method = build(poison, dataset=data, device=device)
        cost = method.estimate_cost(len(splits.train), splits.image_shape)
        what = f"crafting {poison.method} on {len(splits.train)} {data.name} images: " + (
            f"at most {cost['gradient_evals']:,} image-gradient evaluations (~{cost['cpu_seconds']:.0f} s on one CPU "
            f"thread)" if cost["gradient_evals"] else "model-free, seconds")
    if stage.exists(store):  # a rerun: no cost to announce
        return f"{poison.method} on {data.name}: stored in {store.root}, nothing to craft"
    return what


def run(a: argparse.Namespace) -> int:
    from landscape.experiment import get_splits

    data, poison = data_spec(a), poison_spec(a)
    require_poison("craft", poison)
    target = out_target(a)
    with working(a) as (store, device, progress):
        splits = get_splits(data)
        text = announcement(data, poison, splits, store, device)
        if not a.json:
            print(text, file=sys.stderr)
        crafted, cached, key = craft_cached(data, poison, store=store, device=a.device, progress=progress)
    written = None
    if target is not None:
        from landscape.poisons.release import write

        written = write(target[0], crafted, splits, a.out_dtype)
    m, b = crafted.meta, crafted.meta["budget"]  # m["eps_is_default"] is the resolved spec's: always False
    summary = {
        "dataset": data.name, "method": m["method"], "eps": m["eps"],
        "eps_is_default": poison.eps is None and m["eps"] is not None,  # provided images have no budget
        "norm": m["norm"], "granularity": m["granularity"], "ratio": m["ratio"], "n_poisoned": m["n_poisoned"],
        "budget": b, "seconds": m["seconds"], "options": m["options"], "cached": cached,
        "store_key": key, **({"out": written.to_dict()} if written is not None else {}),
        **{k: v for k, v in m.items() if k.startswith("surrogate") or k in ("loops", "stopped_early", "adv_eps")},
    }
    if a.json:
        print_json(summary)
        return 0
    if m["eps"] is None:  # provided images: measured, no budget was set
        print(f"method {m['method']} ({m['options']['images']}, no budget set), {m['n_poisoned']} of "
              f"{len(crafted.mask)} images changed")
    else:
        eps = f"{m['eps'] * 255:.1f}/255" if m["norm"] == "linf" else f"{m['eps']:g}"
        print(f"method {m['method']} ({m['granularity']}-wise, {m['norm']} eps {eps}"
              f"{' default' if poison.eps is None else ''}), {m['n_poisoned']} of {len(crafted.mask)} images poisoned")
    print(f"  {budget_line(b)}")
    done = "read" if m["eps"] is None else "crafting"
    print(f"  {done} {m['seconds']:.1f} s{'' if 'device' not in m else ' on ' + m['device']}"
          f"{' (from the store)' if cached else ''}; store key {summary['store_key']}")
    for key in ("surrogate_acc", "surrogate_adv_acc", "surrogate_train_acc"):
        if key in m and m[key]:
            print(f"  {key}: {' '.join(f'{v:.2f}' for v in m[key])}")
    if written is not None:
        print(f"wrote {written.path} ({written.n_images} training images, {written.dtype}"
              f"{', PNG' if written.kind == 'folder' else ', clean test split included'})")
        print(f"  as written: {budget_line(written.budget)}")
        if written.unpoisoned["n_changed"]:
            print(f"  rounding also changed {written.unpoisoned['n_changed']} unpoisoned image(s), L∞ "
                  f"{written.unpoisoned['linf'] * 255:.2f}/255")
    return 0


COMMANDS.register("craft")(Command("craft an unlearnable-example poison and report its budget figures",
                                   add_arguments, run))
