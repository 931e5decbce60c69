"""`python -m landscape weights`: export a run's weights as safetensors, or analyse weights trained elsewhere.

Export: ``weights --export run.safetensors [data, model, training flags] [--method M] [--epoch N]`` trains (or
loads from the store) the run of those specs and writes its weights at an epoch (default: the last) with the
specs as metadata (`landscape.weights`).

Analyse: ``weights --analyse FILE [--dataset ... --model ...] [SAL flags]`` reads a user's trained weights
(``.safetensors``, or a state dict read with ``torch.load(weights_only=True)``; a checkpoint that would run code
is refused), loads them into the model built for the data and prints SAL of every weight layer at that point
(Ye et al., ICLR 2025; L_0 evaluated at the weights, as there is no training run), cached in the store.
Weights exported by ``--export`` record their data set; analysing them on another one is refused, naming both.
An option the mode does not use is refused, naming it, before any work: the SAL flags with ``--export``; the
training flags, ``--method``, ``--epoch`` and ``--sal-every`` with ``--analyse``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from landscape.commands import COMMANDS, Command
from landscape.commands.common import (
    add_experiment_args,
    add_train_args,
    experiment_specs,
    option_dests,
    output_path,
    print_json,
    refuse_given,
    working,
)
from landscape.commands.run import add_sal_args, sal_spec
from landscape.config import DataSpec


def add_arguments(p: argparse.ArgumentParser) -> None:
    mode = p.add_mutually_exclusive_group(required=True)
    mode.add_argument("--export", metavar="OUT.safetensors", help="write the weights of the run the flags describe")
    mode.add_argument("--analyse", metavar="FILE", help="SAL per layer of weights trained elsewhere")
    add_experiment_args(p)
    p.add_argument("--method", default="clean", help="--export: the poison the run trains on ('clean' = none)")
    p.add_argument("--epoch", type=int, default=None, help="--export: the epoch's weights (default: the last)")
    add_sal_args(p)


def export(a: argparse.Namespace) -> dict:
    from landscape.config import PoisonSpec
    from landscape.errors import SpecError
    from landscape.experiment import get_training
    from landscape.stages.train import TrainStage
    from landscape.weights import save_weights

    specs = (*experiment_specs(a), PoisonSpec(method=a.method))
    out = output_path(a.export, "--export", "weights.safetensors")
    if a.epoch is not None:  # before anything trains; a run that diverges keeps fewer (checked below)
        specs[2].check_kept(a.epoch, "--epoch")
    with working(a) as (store, device, progress):
        run = get_training(*specs, store=store, device=device, progress=progress)
    epoch = run.checkpoint_epochs[-1] if a.epoch is None else a.epoch
    if epoch not in run.checkpoint_epochs:
        raise SpecError(f"--epoch {epoch} has no checkpoint; the run keeps epochs {run.checkpoint_epochs}")
    record = {**TrainStage.of(*specs).record(), "epoch": epoch}
    path = save_weights(run.checkpoints[run.checkpoint_epochs.index(epoch)], out, metadata=record)
    return {"weights": str(path), "epoch": epoch, **record}


def check_recorded_data(path: str, data: DataSpec) -> None:
    """Refuse weights whose metadata (written by ``--export``) records another data set than `data` (SpecError).

    The same data set: the same name and image size, and for a user data set (npz, folder) a file or folder of
    the same name (it may have moved). Weights without our metadata (any state dict) are not checked.
    """
    from safetensors import SafetensorError

    from landscape.errors import LandscapeError, SpecError
    from landscape.weights import SAFETENSORS, weights_metadata

    if not path.endswith(SAFETENSORS):
        return
    try:
        metadata = weights_metadata(path)
        record = metadata.get("data") if isinstance(metadata, dict) else None
        recorded = None if record is None else DataSpec.from_dict(record)
    except (SafetensorError, OSError, ValueError, RecursionError, LandscapeError):  # damaged or foreign: refused
        return  # when it is read (JSON nested 10^5 deep raises RecursionError)
    if recorded is None:  # not exported by us: nothing to check
        return

    def identity(d: DataSpec) -> tuple[object, ...]:
        return d.name, d.resize, Path(d.root).name if d.name in ("npz", "folder") and d.root else None

    if identity(recorded) != identity(data):
        raise SpecError(f"the weights {path} were trained on data set {recorded.text()!r} (recorded in the file), "
                        f"but the analysis asks for {data.text()!r}; give --dataset {recorded.text()}, or weights "
                        f"trained on {data.text()!r}")


def analyse(a: argparse.Namespace) -> dict:
    from landscape.stages.base import Context
    from landscape.stages.weights import ImportedRun, ImportedSALStage

    data, model, _ = experiment_specs(a)  # the training flags are refused (`run`): the weights were trained elsewhere
    run = ImportedRun.of(data, model, a.analyse)
    check_recorded_data(run.path, run.data)
    stage = ImportedSALStage.of(run, sal_spec(a))
    with working(a) as (store, device, progress):
        trace = stage.get(Context(store, device, progress))
    return {"weights": a.analyse, "sha256": stage.run.weights.sha256, "layers": list(trace.layers),
            "sal": trace.sal[0].tolist(), "s_min": trace.s_min[0].tolist(), "s_max": trace.s_max[0].tolist(),
            "loss": trace.baseline[0].tolist(), "acc_variant": trace.acc_variant[0].tolist(),
            "sal_spec": trace.spec.to_dict()}


def run(a: argparse.Namespace) -> int:
    if a.export is not None:
        refuse_given(a, option_dests(add_sal_args), "by --export, which writes a run's weights and measures no SAL "
                                                    "(the SAL flags are for --analyse)")
    else:
        refuse_given(a, {"method", "epoch", "sal_every", *option_dests(add_train_args)},
                     "by --analyse: it reads weights trained elsewhere, one point (the training flags, --method and "
                     "--epoch describe the run --export writes; --sal-every, a run's epochs)")
    out = export(a) if a.export is not None else analyse(a)
    if a.json:
        print_json(out)
    elif a.export is not None:
        print(f"wrote the weights of epoch {out['epoch']} to {out['weights']} (safetensors, specs in its metadata)")
    else:
        print(f"SAL at the weights of {out['weights']} (L_0 = loss at the weights, {out['loss'][0]:.4g}):")
        print(f"{'layer':<40} {'SAL':>11} {'S_min':>11} {'S_max':>11}")
        for name, sal, s_min, s_max in zip(out["layers"], out["sal"], out["s_min"], out["s_max"], strict=True):
            print(f"{name:<40} {sal:>11.4g} {s_min:>11.4g} {s_max:>11.4g}")
    return 0


COMMANDS.register("weights")(Command("export a run's weights as safetensors, or SAL of weights trained elsewhere",
                                     add_arguments, run))
