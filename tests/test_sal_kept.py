"""SAL's split graphs kept across the epochs of one run (`SALTracker(kept=)`, `Replay.kept`) follow the weights.

A replay loads every checkpoint into one network and reuses each layer's `Copies` across epochs; if a kept graph
held a stale copy of the weights, every epoch after the first would be measured on the first epoch's weights.
Oracle: each epoch measured on a fresh network built for that checkpoint alone, with no kept graphs.
"""

from __future__ import annotations

import numpy as np

from landscape.config import DataSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.device import reproducible_threads
from landscape.sal import model_sal
from landscape.stages.base import Context, build_net
from landscape.stages.train import Replay, SALStage, TrainStage
from landscape.store import Store


def test_kept_graphs_measure_each_epoch_on_its_own_weights(tmp_path):
    run = TrainStage.of(DataSpec(n_train=200, n_test=50), ModelSpec(name="cnn"), TrainSpec(epochs=3),
                        PoisonSpec(method="clean"))
    sal = SALSpec.preset("fast")
    ctx = Context(Store(tmp_path))
    replay = Replay.of(run, ctx)
    trace = SALStage(run, sal).measure(replay, ctx)
    assert replay.kept, "the replay keeps its split graphs"
    assert list(trace.epochs) == [1, 2, 3]
    for t, epoch in enumerate(trace.epochs):
        net = build_net(run.model, run.data, run.train.seed)
        net.load_state_dict(replay.run.checkpoints[replay.run.checkpoint_epochs.index(int(epoch))])
        with reproducible_threads(replay.device):
            rows = model_sal(net, replay.x, replay.y, sal, train_spec=run.train, running=replay.running(int(epoch)),
                             epoch=int(epoch))
        np.testing.assert_array_equal(trace.sal[t], [r.sal for r in rows], err_msg=f"epoch {epoch}")
        np.testing.assert_array_equal(trace.s_max[t], [r.s_max for r in rows], err_msg=f"epoch {epoch}")
    assert not np.array_equal(trace.sal[0], trace.sal[-1]), "the epochs differ, so a stale graph would show"
