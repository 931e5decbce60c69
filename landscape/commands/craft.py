"""`python -m landscape craft`: craft one unlearnable-example poison (cached in the store) and summarise it."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_data_args, add_run_args, data_spec, print_json, working
from landscape.config import DataSpec, PoisonSpec
from landscape.device import resolve_device
from landscape.errors import SpecError
from landscape.store import Store


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

    p.add_argument("--method", default="em", help=f"poison method ({', '.join(POISONS.names())})")
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
    add_data_args(p)
    add_poison_args(p)
    add_run_args(p)


def run(a: argparse.Namespace) -> int:
    from landscape.experiment import get_splits
    from landscape.poisons import build
    from landscape.stages.poison import PoisonStage

    data, poison = data_spec(a), poison_spec(a)
    require_poison("craft", poison)
    with working(a) as (store, device, progress):
        splits = get_splits(data)
        method = build(poison, dataset=data, device=device)
        method.poisoned_count(len(splits.train))  # refuses a ratio that poisons no image, before the announcement
        cost = method.estimate_cost(len(splits.train), splits.image_shape)
        if not a.json:
            what = (f"at most {cost['gradient_evals']:,} image-gradient evaluations (~{cost['cpu_seconds']:.0f} s on "
                    f"one CPU thread)" if cost["gradient_evals"] else "model-free, seconds")
            if PoisonStage.of(data, poison).exists(store):  # a rerun: no cost to announce
                announce = f"{poison.method} on {data.name}: stored in {store.root}, nothing to craft"
            else:
                announce = f"crafting {poison.method} on {len(splits.train)} {data.name} images: {what}"
            print(announce, file=sys.stderr)
        crafted, cached, key = craft_cached(data, poison, store=store, device=a.device, progress=progress)
    m, b = crafted.meta, crafted.meta["budget"]  # m["eps_is_default"] is the resolved spec's: always False
    summary = {
        "dataset": data.name, "method": m["method"], "eps": m["eps"], "eps_is_default": poison.eps is None,
        "norm": m["norm"], "granularity": m["granularity"], "ratio": m["ratio"], "n_poisoned": m["n_poisoned"],
        "budget": b, "seconds": m["seconds"], "options": m["options"], "cached": cached,
        "store_key": key,
        **{k: v for k, v in m.items() if k.startswith("surrogate") or k in ("loops", "stopped_early", "adv_eps")},
    }
    if a.json:
        print_json(summary)
        return 0
    eps = f"{m['eps'] * 255:.1f}/255" if m["norm"] == "linf" else f"{m['eps']:g}"
    print(f"method {m['method']} ({m['granularity']}-wise, {m['norm']} eps {eps}"
          f"{' default' if poison.eps is None else ''}), {m['n_poisoned']} of {len(crafted.mask)} images poisoned")
    psnr = "n/a" if b["psnr"] is None else f"{b['psnr']:.1f} dB"
    print(f"  L∞ {b['linf']:.4f} ({b['linf'] * 255:.1f}/255)   L2 mean {b['l2_mean']:.3f} max {b['l2_max']:.3f}   "
          f"L0 mean {b['l0_mean']:.1f} px   PSNR {psnr}")
    print(f"  crafting {m['seconds']:.1f} s on {m['device']}{' (from the store)' if cached else ''}; "
          f"store key {summary['store_key']}")
    for key in ("surrogate_acc", "surrogate_adv_acc", "surrogate_train_acc"):
        if key in m and m[key]:
            print(f"  {key}: {' '.join(f'{v:.2f}' for v in m[key])}")
    return 0


COMMANDS.register("craft")(Command("craft an unlearnable-example poison and report its budget figures",
                                   add_arguments, run))
