"""The per-channel SAL stage: SAL of each output channel of one layer, at every measured epoch of a run.

`landscape.sal.channel_sal` on the run's stored checkpoints (each channel's weights moved within its own
relative ball); the result is a `SALTrace` whose "layers" are the channels, named "<layer>[c]", so a
channel x epoch heatmap is drawn like the layer x epoch one. Runs that do not keep every epoch's weights
(`sal_from_checkpoints` false) are measured at the epochs they kept.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from landscape.config import DataSpec, DefenseSpec, ModelSpec, PoisonSpec, SALSpec, Spec, TrainSpec
from landscape.device import reproducible_threads
from landscape.errors import ShapeError
from landscape.models import weight_layers
from landscape.sal import SALTrace, channel_sal
from landscape.stages.base import Computed, Context, build_net
from landscape.stages.train import Replay, SALOnRun, TrainStage, run_label


@dataclass(frozen=True)
class ChannelLayer(Spec):
    """Which weight tensor's output channels the per-channel SAL stage measures (part of its key)."""

    layer: str


@dataclass(frozen=True)
class ChannelSALStage(SALOnRun):
    """Per-channel SAL of one layer of one run, every `sal.every`-th stored epoch (and the last)."""

    folder = "sal-channels"
    run: TrainStage
    sal: SALSpec
    layer: ChannelLayer

    @classmethod
    def of(cls, data: DataSpec, model: ModelSpec, train: TrainSpec, poison: PoisonSpec | None, sal: SALSpec,
           layer: str, *, defense: DefenseSpec | None = None) -> ChannelSALStage:
        run = TrainStage.of(data, model, train, poison, defense=defense)
        layers = weight_layers(build_net(run.model, run.data))
        if layer not in layers:
            raise ShapeError(f"model {run.model.name!r} has no weight layer {layer!r}; valid: {layers}")
        return cls(run, sal, ChannelLayer(layer))

    def parts(self) -> tuple[Spec | None, ...]:
        r = self.run
        return (r.data, r.model, r.train, r.poison, self.sal, self.layer, r.defense)

    def record(self) -> dict[str, Any]:
        return {**super().record(), "layer": self.layer.layer}

    def compute(self, ctx: Context) -> Computed:
        r, stage, layer = self.run, f"sal-channels-{run_label(self.run.poison)}", self.layer.layer
        replay = Replay.of(r, ctx)
        epochs = replay.measured_epochs(self.sal, r.train.epochs)  # the layer SAL's epochs, so rows line up
        rows, seconds = [], []
        with reproducible_threads(replay.device):
            for i, epoch in enumerate(epochs):
                started = time.perf_counter()
                rows.append(channel_sal(replay.at(epoch), replay.x, replay.y, self.sal, layer, train_spec=r.train,
                                        epoch=epoch, running=replay.running(epoch)))
                seconds.append(time.perf_counter() - started)
                ctx.progress(stage, i + 1, len(epochs))
        names = [f"{layer}[{c}]" for c in range(len(rows[0]) if rows else 0)]
        return self.stored(SALTrace.from_rows(names, epochs, rows, seconds, self.sal))
