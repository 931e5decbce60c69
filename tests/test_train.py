import numpy as np
import pytest
import torch

from landscape.config import DataSpec, TrainSpec
from landscape.data import ImageSet, load_data
from landscape.models import build_model
from landscape.train import EpochState, TrainResult, evaluate, random_crop_flip, train


def _run(splits, spec, **kw):
    model = build_model("cnn", splits.image_shape, splits.num_classes, seed=spec.seed)
    return train(model, splits.train, splits.test, spec, **kw), model


def test_digits_split_sizes_and_range():
    s = load_data(DataSpec())
    assert (len(s.train), len(s.test)) == (1437, 360)
    assert s.train.x.dtype == torch.float32 and s.train.x.shape[1:] == (1, 8, 8)
    assert float(s.train.x.min()) == 0.0 and float(s.train.x.max()) == 1.0
    assert s.train.y.dtype == torch.int64
    # stratified: every class holds 79-80% of its images in train
    counts = np.bincount(s.train.y.numpy(), minlength=10) / (
        np.bincount(s.train.y.numpy(), minlength=10) + np.bincount(s.test.y.numpy(), minlength=10))
    assert np.all(np.abs(counts - 0.8) < 0.01)


def test_same_spec_and_seed_give_identical_metrics_and_checkpoints(tiny_splits):
    spec = TrainSpec(epochs=3, batch_size=16, augment="crop_flip", seed=5)
    a, _ = _run(tiny_splits, spec)
    b, _ = _run(tiny_splits, spec)
    for k in a.history:
        if k != "seconds":
            np.testing.assert_array_equal(a.history[k], b.history[k])
    assert a.checkpoint_epochs == b.checkpoint_epochs == [0, 1, 2, 3]
    for sa, sb in zip(a.checkpoints, b.checkpoints, strict=True):
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k
    c, _ = _run(tiny_splits, spec.replace(seed=6))
    assert not np.array_equal(a.history["train_loss"], c.history["train_loss"])


def test_training_learns_and_records_history(tiny_splits):
    result, model = _run(tiny_splits, TrainSpec(epochs=15, batch_size=8, lr=0.05))
    h = result.history
    assert all(len(v) == 15 for v in h.values())
    assert h["train_loss"][-1] < h["train_loss"][0]
    assert h["test_acc"][-1] >= 0.9
    loss, acc = evaluate(model, tiny_splits.test.x, tiny_splits.test.y)
    assert acc == pytest.approx(h["test_acc"][-1]) and loss == pytest.approx(h["test_loss"][-1], rel=1e-5)


def test_checkpoint_stride_and_dtype(tiny_splits):
    spec = TrainSpec(epochs=5, batch_size=32, checkpoint_every=2, checkpoint_dtype="float16")
    result, _ = _run(tiny_splits, spec)
    assert result.checkpoint_epochs == [0, 2, 4, 5] == list(spec.kept_epochs)  # what requests are checked against
    assert all(t.dtype == torch.float16 for t in result.checkpoints[1].values() if t.is_floating_point())


def test_divergence_stops_cleanly_and_keeps_finished_epochs(tiny_splits):
    calls = []

    def poison_at_epoch_3(state: EpochState) -> None:
        calls.append(state.epoch)
        if state.epoch == 2:  # corrupt the weights so epoch 3 yields a NaN loss
            with torch.no_grad():
                next(state.model.parameters()).fill_(float("nan"))

    result, _ = _run(tiny_splits, TrainSpec(epochs=6, batch_size=16), callbacks=[poison_at_epoch_3])
    assert result.diverged is not None and "epoch 3" in result.diverged and "lr" in result.diverged
    assert result.epochs_done == 2 and calls == [1, 2]
    assert result.checkpoint_epochs[-1] == 2


def test_store_round_trip_is_exact(tiny_splits):
    result, _ = _run(tiny_splits, TrainSpec(epochs=2, batch_size=32))
    meta, arrays = result.to_store()
    back = TrainResult.from_store(meta, arrays)
    assert back.checkpoint_epochs == result.checkpoint_epochs
    for k in result.history:
        np.testing.assert_array_equal(back.history[k], result.history[k])
    for sa, sb in zip(result.checkpoints, back.checkpoints, strict=True):
        assert all(torch.equal(sa[k], sb[k]) for k in sa)


def test_crop_flip_shapes_and_content():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10, 3, 8, 8)
    out = random_crop_flip(x, padding=2, flip=True, generator=g)
    assert out.shape == x.shape
    # zero padding 0 and no flip is the identity
    assert torch.equal(random_crop_flip(x, 0, False, g), x)
    # each crop is a shifted window: the non-zero part equals a window of the original (possibly flipped)
    only_flip = random_crop_flip(x, 0, True, torch.Generator().manual_seed(1))
    for i in range(10):
        assert torch.equal(only_flip[i], x[i]) or torch.equal(only_flip[i], x[i].flip(2))


def test_imageset_validation():
    from landscape.errors import ShapeError

    with pytest.raises(ShapeError, match=r"\[0, 1\]"):
        ImageSet(torch.full((2, 1, 4, 4), 2.0), torch.zeros(2, dtype=torch.long), ("a",))
    with pytest.raises(ShapeError, match="2 images but 3 labels"):
        ImageSet(torch.zeros(2, 1, 4, 4), torch.zeros(3, dtype=torch.long), ("a",))
    with pytest.raises(ShapeError, match="float32"):
        ImageSet(torch.zeros(2, 4, 4), torch.zeros(2, dtype=torch.long), ("a",))


def test_cpu_results_do_not_depend_on_the_callers_thread_count():
    """oneDNN's reductions depend on the thread count; training pins it (landscape.device.CPU_THREADS).

    Unpinned (`train.__wrapped__`), two epochs of the digits cnn already end with different weights under 1
    and 2 threads; pinned they are bit-identical, and the caller's setting is restored afterwards.
    """
    from landscape.device import CPU_THREADS

    splits = load_data(DataSpec())
    spec = TrainSpec(epochs=2)
    seen: list[int] = []
    before = torch.get_num_threads()
    try:
        finals = []
        for threads in (1, 2):
            torch.set_num_threads(threads)
            model = build_model("cnn", splits.image_shape, splits.num_classes, seed=0)
            result = train(model, splits.train, splits.test, spec,
                           callbacks=[lambda state: seen.append(torch.get_num_threads())])
            assert torch.get_num_threads() == threads
            finals.append(result.checkpoints[-1])
    finally:
        torch.set_num_threads(before)
    assert set(seen) == {CPU_THREADS}
    assert all(torch.equal(finals[0][k], finals[1][k]) for k in finals[0])


# The "multistep" schedule in closed form (Witches' Brew: MultiStepLR(milestones=[E // 2.667, E // 1.6, E // 1.142],
# gamma=0.1) stepped once per epoch): 40 epochs drop at 14, 24, 35; 8 epochs at 2, 4, 7 (the float floor divisions
# land an epoch before 3/8, 5/8 of these lengths).
MULTISTEP_CLOSED_FORM = {
    40: [0.1] * 14 + [0.01] * 10 + [1e-3] * 11 + [1e-4] * 5,
    8: [0.1] * 2 + [0.01] * 2 + [1e-3] * 3 + [1e-4],
}


@pytest.mark.parametrize("epochs", sorted(MULTISTEP_CLOSED_FORM))
def test_multistep_lr_per_epoch_is_the_closed_form_and_torchs_multisteplr(epochs):
    from landscape.train import lr_at, multistep_milestones

    spec = TrainSpec(epochs=epochs, lr=0.1, schedule="multistep")
    got = [lr_at(spec, e) for e in range(epochs)]
    assert got == pytest.approx(MULTISTEP_CLOSED_FORM[epochs], rel=1e-12)
    assert multistep_milestones(40) == (14, 24, 35) and multistep_milestones(8) == (2, 4, 7)
    for n in range(1, 61):  # the official code's scheduler, stepped per epoch, for every length up to 60
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=[n // 2.667, n // 1.6, n // 1.142], gamma=0.1)
        official = []
        for _ in range(n):
            official.append(opt.param_groups[0]["lr"])
            opt.step()
            sched.step()
        assert [lr_at(TrainSpec(epochs=n, lr=0.1, schedule="multistep"), e) for e in range(n)] == \
            pytest.approx(official, rel=1e-12), n


def test_the_trainer_sets_each_schedules_lr_per_epoch(tiny_splits):
    """The trainer's recorded lr per epoch: multistep's closed form; constant and cosine as before (exactly)."""
    import math

    for schedule, expected in [("multistep", MULTISTEP_CLOSED_FORM[8]), ("constant", [0.1] * 8),
                               ("cosine", [0.1 * 0.5 * (1 + math.cos(math.pi * e / 8)) for e in range(8)])]:
        result, _ = _run(tiny_splits, TrainSpec(epochs=8, batch_size=32, lr=0.1, schedule=schedule))
        lrs = [float(v) for v in result.history["lr"]]
        if schedule == "multistep":
            assert lrs == pytest.approx(expected, rel=1e-12), schedule
        else:
            assert lrs == expected, schedule


def test_schedule_flag_offers_every_schedule_of_the_spec():
    from landscape.cli import build_parser
    from landscape.commands.common import train_spec
    from landscape.config import choices

    assert "multistep" in choices(TrainSpec, "schedule")
    for schedule in choices(TrainSpec, "schedule"):
        assert train_spec(build_parser().parse_args(["train", "--schedule", schedule])) == \
            TrainSpec(schedule=schedule), schedule


def _hand_sgd_epoch(splits, spec, *, nesterov):
    """One epoch of a hand-written `torch.optim.SGD` loop over the trainer's batches (its seeded order, no augment).

    Run under the trainer's thread pinning (`reproducible_threads`), so the two are comparable bit for bit.
    """
    import torch.nn.functional as F

    from landscape.device import reproducible_threads

    with reproducible_threads("cpu"):
        model = build_model("cnn", splits.image_shape, splits.num_classes, seed=spec.seed)
        opt = torch.optim.SGD(model.parameters(), lr=spec.lr, momentum=spec.momentum, weight_decay=spec.weight_decay,
                              nesterov=nesterov)
        x, y = splits.train.x, splits.train.y
        order = torch.randperm(len(y), generator=torch.Generator().manual_seed(spec.seed))
        model.train()
        for start in range(0, len(y), spec.batch_size):
            idx = order[start:start + spec.batch_size]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_nesterov_trains_as_torchs_nesterov_sgd(tiny_splits):
    """TrainSpec.nesterov: one epoch equals a hand-written SGD(nesterov=True) loop, and differs from plain momentum."""
    spec = TrainSpec(epochs=1, batch_size=16, lr=0.1, nesterov=True, seed=3)
    result, _ = _run(tiny_splits, spec)
    trained = result.checkpoints[-1]
    nesterov = _hand_sgd_epoch(tiny_splits, spec, nesterov=True)
    plain = _hand_sgd_epoch(tiny_splits, spec, nesterov=False)
    assert all(torch.equal(trained[k], nesterov[k]) for k in nesterov)
    assert not all(torch.allclose(trained[k], plain[k], atol=1e-6) for k in plain)
    default, _ = _run(tiny_splits, spec.replace(nesterov=False))  # the default is plain momentum, as before
    assert all(torch.equal(default.checkpoints[-1][k], plain[k]) for k in plain)


def test_the_optimizer_has_nesterov_only_when_asked():
    from landscape.train import _make_optimizer

    model = torch.nn.Linear(3, 2)
    for spec, expected in [(TrainSpec(nesterov=True), True), (TrainSpec(), False)]:
        assert [g["nesterov"] for g in _make_optimizer(model, spec).param_groups] == [expected]


def test_nesterov_flag_reaches_the_train_spec():
    from landscape.cli import build_parser
    from landscape.commands.common import train_spec

    parse = build_parser().parse_args
    assert train_spec(parse(["train", "--nesterov"])) == TrainSpec(nesterov=True)
    assert train_spec(parse(["train"])) == TrainSpec() and not TrainSpec().nesterov
    assert train_spec(parse(["bench", "--nesterov", "--momentum", "0.5"])) == TrainSpec(nesterov=True, momentum=0.5)
