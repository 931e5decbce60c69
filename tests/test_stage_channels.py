"""The per-channel SAL stage: cached by run, SAL spec and layer; the channels of the layer as the trace's rows."""

from __future__ import annotations

import numpy as np
import pytest

from landscape.config import DataSpec, ModelSpec, SALSpec, TrainSpec
from landscape.errors import ShapeError
from landscape.stages.base import Context
from landscape.stages.channels import ChannelSALStage

pytestmark = pytest.mark.usefixtures("one_thread")


def test_channel_sal_stage_computes_once_per_layer(store, monkeypatch):
    data, model, train = DataSpec(n_train=120, n_test=40), ModelSpec(name="cnn"), TrainSpec(epochs=2)
    sal = SALSpec(eval_size=64)
    ctx = Context(store)
    stage = ChannelSALStage.of(data, model, train, None, sal, "0.weight")
    trace = stage.get(ctx)
    assert trace.epochs.tolist() == [1, 2]
    assert trace.layers[0] == "0.weight[0]" and trace.sal.shape == (2, len(trace.layers))
    assert np.isfinite(trace.sal).all()
    other = ChannelSALStage.of(data, model, train, None, sal, "2.weight")
    assert other.key() != stage.key()
    monkeypatch.setattr("landscape.stages.channels.channel_sal", lambda *a, **k: pytest.fail("recomputed"))
    np.testing.assert_array_equal(stage.get(ctx).sal, trace.sal)
    with pytest.raises(ShapeError, match="no weight layer 'nope'.*valid"):
        ChannelSALStage.of(data, model, train, None, sal, "nope")
