"""Tasks of the cross-task probe: registry contract, clean-only targets, metric oracles, trainer and SAL hooks."""

import math

import numpy as np
import pytest
import torch

from landscape.config import SALSpec, TrainSpec
from landscape.data import ImageSet, Splits
from landscape.errors import ShapeError, SpecError, UnknownNameError
from landscape.models import weight_layers
from landscape.tasks import PSNR_CAP, STROKE_THRESHOLD, TASKS, get_task, sobel_magnitude, tasks_for
from landscape.train import evaluate, evaluate_task, train

SHAPES = {"digits": ((1, 8, 8), 10), "cifar10": ((3, 32, 32), 10)}


def _images(n: int, shape: tuple[int, int, int], num_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, *shape, generator=g), torch.randint(0, num_classes, (n,), generator=g)


def _perfect(task, targets: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Outputs that predict `targets` exactly."""
    if task.name == "classify":
        return torch.nn.functional.one_hot(targets, num_classes).float() * 10
    if task.name == "segment":
        return torch.nn.functional.one_hot(targets, num_classes + 1).permute(0, 3, 1, 2).float() * 10
    return targets.clone().float()


CASES = [(name, ds) for name in TASKS.names() for ds in SHAPES if TASKS.get(name).supports(ds)]


def test_registry_lists_the_issue_tasks_and_fails_loudly():
    assert TASKS.names()[:4] == ["classify", "segment", "edges", "reconstruct"]
    assert tasks_for("digits") == ["classify", "segment", "edges", "reconstruct"]
    assert tasks_for("cifar10") == ["classify", "edges", "reconstruct"]
    with pytest.raises(UnknownNameError, match="valid choices: classify, segment"):
        get_task("depth")


@pytest.mark.parametrize(("name", "dataset"), CASES)
def test_task_contract(name, dataset):
    task = TASKS.get(name)
    assert task.name == name and task.primary and isinstance(task.higher_is_better, bool)
    shape, k = SHAPES[dataset]
    x, y = _images(6, shape, k)
    x0 = x.clone()
    t = task.targets(x, y)
    assert torch.equal(x, x0)  # inputs untouched
    assert len(t) == len(x) and torch.equal(t, task.targets(x, y))  # one per image, deterministic
    model = task.build(shape, k, seed=3)
    same = task.build(shape, k, seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), same.state_dict().values(), strict=True))
    assert len(weight_layers(model)) == 6  # SAL vectors line up by depth across tasks
    out = model(x)
    loss = task.loss(out, t)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert task.sample_loss(out, t).shape == (len(x),)
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
    # statistics are summable: two halves give exactly the metrics of the whole
    whole = task.metrics(task.stats(out.detach(), t))
    halves = task.metrics(task.stats(out[:3].detach(), t[:3]) + task.stats(out[3:].detach(), t[3:]))
    assert whole.keys() == halves.keys() and task.primary in whole
    for key in whole:
        assert whole[key] == pytest.approx(halves[key], rel=1e-12, abs=1e-12)


def test_dense_encoder_matches_the_cnn_architecture_and_initialisation():
    cls, seg = get_task("classify").build((1, 8, 8), 10, seed=7), get_task("segment").build((1, 8, 8), 10, seed=7)
    cls_convs = [m for m in cls.modules() if isinstance(m, torch.nn.Conv2d)]
    seg_convs = [m for m in seg.modules() if isinstance(m, torch.nn.Conv2d)][:4]
    for a, b in zip(cls_convs, seg_convs, strict=True):
        assert a.weight.shape == b.weight.shape and torch.equal(a.weight, b.weight)
    with pytest.raises(ShapeError, match="divisible by 4"):
        get_task("edges").build((1, 6, 6), 10)


@pytest.mark.parametrize("name", TASKS.names())
def test_targets_come_from_clean_images_only(name):
    """Poisoning changes the images a model sees, never its targets (training_pair takes them from the clean set)."""
    from landscape.multitask import training_pair

    task = get_task(name)
    x, y = _images(8, (1, 8, 8), 10, seed=1)
    clean = ImageSet(x, y, tuple(str(i) for i in range(10)))
    poisoned = clean.with_images((x + 0.3 * torch.rand_like(x)).clamp(0, 1))
    images, targets = training_pair(task, clean, poisoned)
    assert images is poisoned
    assert torch.equal(targets, task.targets(x, y))
    if name != "classify":  # image-derived targets would differ had they been taken from the poisoned images
        assert not torch.equal(targets, task.targets(poisoned.x, y))
    relabelled = ImageSet(poisoned.x, (y + 1) % 10, clean.class_names)
    with pytest.raises(ShapeError, match="image for image"):
        training_pair(task, clean, relabelled)


@pytest.mark.parametrize(("name", "dataset"), CASES)
def test_perfect_prediction_gets_the_best_score(name, dataset):
    task = get_task(name)
    shape, k = SHAPES[dataset]
    x, y = _images(5, shape, k, seed=2)
    t = task.targets(x, y)
    best = task.score(_perfect(task, t, k), t)
    expected = {"accuracy": 1.0, "miou": 1.0, "pixel_acc": 1.0, "mse": 0.0, "psnr": PSNR_CAP}
    for key, value in best.items():
        assert value == pytest.approx(expected[key], abs=1e-9), key
    # any other prediction scores no better on the primary metric
    worse = task.score(_perfect(task, t, k) + torch.randn(_perfect(task, t, k).shape, generator=torch.Generator()
                                                          .manual_seed(0)) * 20, t)[task.primary]
    assert (worse <= best[task.primary]) if task.higher_is_better else (worse >= best[task.primary])
    assert worse != pytest.approx(best[task.primary])


def test_metric_known_values():
    seg = get_task("segment")
    # 2 classes + background on a 1x1x4 "image": truth [0, 1, 1, 2], prediction [0, 1, 2, 2]
    truth = torch.tensor([[[0, 1, 1, 2]]])
    logits = torch.nn.functional.one_hot(torch.tensor([[[0, 1, 2, 2]]]), 3).permute(0, 3, 1, 2).float()
    m = seg.score(logits, truth)
    assert m["pixel_acc"] == pytest.approx(0.75)
    assert m["miou"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)  # IoU bg 1/1, class1 1/2, class2 1/2
    rec = get_task("reconstruct")
    target = torch.full((2, 1, 4, 4), 0.5)
    m = rec.score(target + 0.1, target)  # constant error 0.1: MSE 0.01, PSNR 20 dB
    assert m["psnr"] == pytest.approx(20.0) and m["mse"] == pytest.approx(0.01)
    assert rec.score(target + 2.0, target)["psnr"] == pytest.approx(10 * math.log10(1 / 0.25))  # clipped to 1
    edges = get_task("edges")
    assert edges.score(torch.zeros(1, 1, 2, 2), torch.full((1, 1, 2, 2), 0.5))["mse"] == pytest.approx(0.25)


def test_segmentation_and_edge_targets():
    x = torch.zeros(2, 1, 8, 8)
    x[0, 0, 2:6, 3] = 1.0  # a vertical stroke
    x[0, 0, 2:6, 4] = STROKE_THRESHOLD - 0.01  # faint ink: background
    y = torch.tensor([7, 2])
    seg = get_task("segment").targets(x, y)
    assert seg.dtype == torch.int64 and seg.shape == (2, 8, 8)
    assert set(seg[0].unique().tolist()) == {0, 8} and int((seg[0] == 8).sum()) == 4
    assert int(seg[1].abs().sum()) == 0  # a blank image is all background
    e = sobel_magnitude(x)
    assert e.shape == (2, 1, 8, 8) and float(e.min()) >= 0 and float(e.max()) <= 1
    assert float(e[1].abs().max()) == 0.0  # constant image: no edges (replicated border)
    assert float(e[0, 0, 3, 2]) > 0 and float(e[0, 0, 0, 0]) == 0.0  # beside the stroke / far from it
    rgb = torch.rand(3, 3, 8, 8)
    assert torch.allclose(sobel_magnitude(rgb), sobel_magnitude(rgb.mean(1, keepdim=True)))


@pytest.fixture
def tiny_task_splits(tiny_splits) -> Splits:
    return tiny_splits


@pytest.mark.parametrize("name", ["segment", "reconstruct"])
def test_trainer_trains_a_task_and_reports_its_primary_metric(name, tiny_task_splits):
    s = tiny_task_splits
    task = get_task(name)
    tr, te = task.targets(s.train.x, s.train.y), task.targets(s.test.x, s.test.y)
    model = task.build(s.image_shape, s.num_classes, seed=0)
    spec = TrainSpec(epochs=4, batch_size=16, optimizer="adam", lr=3e-3, weight_decay=0.0)
    seen = []
    result = train(model, s.train, s.test, spec, task=task, train_targets=tr, test_targets=te,
                   callbacks=[lambda st: seen.append((st.task, st.y_train.shape))])
    h = result.history
    assert h["train_loss"][-1] < h["train_loss"][0]
    loss, stats = evaluate_task(model, s.test.x, te, task)
    assert h["test_acc"][-1] == pytest.approx(task.primary_metric(stats))
    assert h["test_loss"][-1] == pytest.approx(loss, rel=1e-6)
    assert evaluate(model, s.test.x, te, task=task) == pytest.approx((loss, task.primary_metric(stats)))
    assert seen[0][0] is task and seen[0][1] == tr.shape


def test_classify_task_trains_exactly_like_the_default_trainer(tiny_splits):
    spec = TrainSpec(epochs=3, batch_size=16)
    task = get_task("classify")
    a = train(task.build(tiny_splits.image_shape, 4, seed=1), tiny_splits.train, tiny_splits.test, spec)
    b = train(task.build(tiny_splits.image_shape, 4, seed=1), tiny_splits.train, tiny_splits.test, spec, task=task,
              train_targets=tiny_splits.train.y, test_targets=tiny_splits.test.y)
    for key in ("train_loss", "train_acc", "test_loss", "test_acc"):
        np.testing.assert_allclose(a.history[key], b.history[key], rtol=1e-6, atol=1e-9)


def test_trainer_rejects_bad_task_arguments(tiny_splits):
    task = get_task("edges")
    model = task.build(tiny_splits.image_shape, 4)
    tr, te = task.targets(tiny_splits.train.x, tiny_splits.train.y), task.targets(tiny_splits.test.x,
                                                                                  tiny_splits.test.y)
    with pytest.raises(SpecError, match="train_targets"):
        train(model, tiny_splits.train, tiny_splits.test, TrainSpec(epochs=1), task=task)
    with pytest.raises(SpecError, match="augment"):
        train(model, tiny_splits.train, tiny_splits.test, TrainSpec(epochs=1, augment="crop"), task=task,
              train_targets=tr, test_targets=te)
    with pytest.raises(ShapeError, match="targets"):
        train(model, tiny_splits.train, tiny_splits.test, TrainSpec(epochs=1), task=task, train_targets=tr[:3],
              test_targets=te)


def test_sal_with_a_task_loss(tiny_splits):
    from landscape.sal import model_sal

    spec = SALSpec(baseline="fresh", eval_size=32)
    x = tiny_splits.train.x
    clf = get_task("classify")
    model = clf.build(tiny_splits.image_shape, 4, seed=0)
    default = model_sal(model, x, tiny_splits.train.y, spec)
    explicit = model_sal(model, x, tiny_splits.train.y, spec, loss=clf)
    np.testing.assert_allclose([r.sal for r in default], [r.sal for r in explicit], rtol=1e-5, atol=1e-9)
    for name in ("segment", "edges"):
        task = get_task(name)
        dense = task.build(tiny_splits.image_shape, 4, seed=0)
        rows = model_sal(dense, x, task.targets(x, tiny_splits.train.y), spec, loss=task)
        assert len(rows) == 6 and all(np.isfinite(r.sal) and r.sal >= 0 for r in rows)
        assert any(r.sal > 0 for r in rows)
