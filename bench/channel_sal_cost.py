"""How good is the app's cost estimate for per-channel SAL? Measured time against the FLOP factor, per layer.

The SAL page prices per-channel SAL of a layer as the layer SAL's measured seconds (every layer, same epochs)
times `landscape.sal_cost.channel_sal_factor` (C_l F(l) / sum F, a forward-FLOP ratio). Here both are timed in
one process on the same checkpoint of the shipped demo's runs (digits, cnn, the default recipe, the fast SAL
preset), on one thread as the stages run them: the layer SAL of every layer (`model_sal`), then per-channel SAL
of each layer (`channel_sal`); the measured ratio is compared with the factor (estimate / measured > 1: the
estimate is high). The load average is recorded beside the times.

Usage: python bench/channel_sal_cost.py [--run clean|em] [--epoch 5] [--repeats 2]
Writes JSON lines to bench/results/channel_sal_cost.jsonl (one per layer) and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from landscape.config import DataSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.demo import snapshot_store
from landscape.device import CPU_THREADS, limited_threads
from landscape.models import weight_layers
from landscape.sal import channel_sal, model_sal
from landscape.sal_cost import channel_sal_factor
from landscape.stages.base import Context
from landscape.stages.train import Replay, TrainStage

OUT = Path(__file__).parent / "results" / "channel_sal_cost.jsonl"


def timed(work, repeats: int) -> float:
    """The fastest of `repeats` wall times of `work()` (seconds)."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", default="em", choices=["clean", "em"])
    parser.add_argument("--epoch", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    poison = PoisonSpec() if args.run == "clean" else PoisonSpec(method="em")
    stage = TrainStage.of(DataSpec(name="digits"), ModelSpec(name="cnn"), TrainSpec(epochs=10), poison)
    with tempfile.TemporaryDirectory() as root:
        replay = Replay.of(stage, Context(snapshot_store(root)))
    net, sal = replay.at(args.epoch), SALSpec.preset("fast")
    running = replay.running(args.epoch)
    common = dict(train_spec=stage.train, running=running, epoch=args.epoch)
    x1 = replay.x[:1]
    rows = []
    with limited_threads(CPU_THREADS):
        layer_s = timed(lambda: model_sal(net, replay.x, replay.y, sal, **common), args.repeats)
        for layer in weight_layers(net):
            s = timed(lambda layer=layer: channel_sal(net, replay.x, replay.y, sal, layer, **common), args.repeats)
            factor = channel_sal_factor(net, x1, layer)
            rows.append({"bench": "channel_sal_cost", "run": args.run, "epoch": args.epoch, "layer": layer,
                         "channels": int(dict(net.named_parameters())[layer].shape[0]), "layer_sal_s": layer_s,
                         "channel_sal_s": s, "measured_ratio": s / layer_s, "flop_factor": factor,
                         "estimate_over_measured": factor / (s / layer_s), "threads": CPU_THREADS,
                         "loadavg": os.getloadavg()})
    OUT.parent.mkdir(exist_ok=True)
    with OUT.open("a") as f:
        for row in rows:
            f.write(json.dumps(row) + "\n")
    print(f"layer SAL of every layer: {layer_s:.2f} s (run {args.run}, epoch {args.epoch}, "
          f"load {os.getloadavg()[0]:.2f})")
    print("layer       C  channel s  measured ratio  FLOP factor  estimate/measured")
    for r in rows:
        print(f"{r['layer']:<10} {r['channels']:>3} {r['channel_sal_s']:>10.2f} {r['measured_ratio']:>15.2f} "
              f"{r['flop_factor']:>12.2f} {r['estimate_over_measured']:>18.2f}")


if __name__ == "__main__":
    main()
