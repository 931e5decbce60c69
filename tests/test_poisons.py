"""Poison methods: one contract parametrised over the registry, plus round trips, figures, CLI and bad input.

Every registered method (and each of its declared modes) is crafted on 100 digits with the method's
`quick_options` (few steps: the contract is about invariants, not strength).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from landscape.config import DataSpec, PoisonSpec
from landscape.data import ImageSet, load_data, stratified_subset
from landscape.errors import BudgetError, LandscapeError, ShapeError, SpecError, UnknownNameError
from landscape.poisons import POISONS, Crafted, budget_figures, build, craft

CASES = [(name, mode) for name in POISONS.names() for mode in POISONS.get(name).granularities()]
TOL = 1e-5


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny tensors; see conftest.py


@pytest.fixture(scope="module")
def digits100() -> ImageSet:
    train = load_data(DataSpec()).train
    return train.subset(stratified_subset(train.y, 100, seed=0))


def quick_spec(name: str, mode: str | None = None, **changes: object) -> PoisonSpec:
    cls = POISONS.get(name)
    options = dict(cls.quick_options)
    if mode is not None and len(cls.granularities()) > 1:
        options["mode"] = mode
    options.update(changes.pop("options", {}))  # type: ignore[arg-type]
    return PoisonSpec(method=name, options=tuple(options.items()), **changes)  # type: ignore[arg-type]


def check_budget(delta: torch.Tensor, eps: float, norm: str) -> None:
    """Independent of the library's own check."""
    if norm == "linf":
        assert float(delta.abs().max()) <= eps + TOL
    elif norm == "l2":
        assert float(delta.flatten(1).norm(dim=1).max()) <= eps * (1 + TOL) + TOL
    elif norm == "l0":
        assert int((delta != 0).any(dim=1).flatten(1).sum(1).max()) <= eps
    else:
        assert norm == "none"


@pytest.mark.parametrize(("name", "mode"), CASES)
def test_contract(name: str, mode: str, digits100: ImageSet) -> None:
    x0, y0 = digits100.x.clone(), digits100.y.clone()
    spec = quick_spec(name, mode, seed=3)
    crafted = craft(digits100, spec, dataset="digits")
    delta, mask = crafted.delta, crafted.mask
    # shape, dtype, range
    assert delta.shape == digits100.x.shape and delta.dtype == torch.float32 and delta.device.type == "cpu"
    assert mask.dtype == torch.bool and mask.shape == (len(digits100),) and bool(mask.all())
    poisoned = crafted.apply(digits100)
    assert poisoned.x.shape == digits100.x.shape and poisoned.x.dtype == torch.float32
    assert float(poisoned.x.min()) >= 0.0 and float(poisoned.x.max()) <= 1.0
    assert torch.equal(poisoned.y, digits100.y)
    torch.testing.assert_close(digits100.x + delta, poisoned.x, rtol=0, atol=1e-6)  # delta keeps x inside [0, 1]
    assert float(delta.abs().max()) > 0, f"{name} changed nothing"
    # budget under the declared norm
    method = build(spec, dataset="digits")
    assert crafted.meta["norm"] == method.norm and crafted.meta["eps"] == method.eps
    check_budget(delta, method.eps, method.norm)
    check_budget(poisoned.x - digits100.x, method.eps, method.norm)
    assert crafted.meta["granularity"] == mode and crafted.meta["method"] == name
    assert set(crafted.meta["budget"]) >= {"linf", "l2_mean", "l2_max", "l0_mean", "psnr"}
    # input untouched
    assert torch.equal(digits100.x, x0) and torch.equal(digits100.y, y0)
    # deterministic under a seed
    again = craft(digits100, spec, dataset="digits")
    assert torch.equal(again.delta, delta) and torch.equal(again.mask, mask)


@pytest.mark.parametrize(("name", "mode"), [c for c in CASES if c[1] == "class"])
def test_classwise_methods_treat_a_class_alike(name: str, mode: str, digits100: ImageSet) -> None:
    # The same image twice under the same label must come out identical.
    half = ImageSet(torch.cat([digits100.x[:50], digits100.x[:50]]), torch.cat([digits100.y[:50]] * 2),
                    digits100.class_names)
    out = craft(half, quick_spec(name, mode), dataset="digits").apply(half).x
    torch.testing.assert_close(out[:50], out[50:], rtol=0, atol=1e-6)
    if POISONS.get(name).additive:
        # One pattern per class: wherever clamping did not bite, the change is the same for every image.
        crafted = craft(digits100, quick_spec(name, mode), dataset="digits")
        poisoned = crafted.apply(digits100).x
        for c in range(digits100.num_classes):
            rows = digits100.y == c
            d = crafted.delta[rows]
            free = (poisoned[rows] > 0) & (poisoned[rows] < 1)
            hi = torch.where(free, d, torch.full_like(d, -math.inf)).amax(0)
            lo = torch.where(free, d, torch.full_like(d, math.inf)).amin(0)
            both = torch.isfinite(hi) & torch.isfinite(lo)
            if both.any():
                assert float((hi - lo)[both].max()) <= 1e-5


@pytest.mark.parametrize("name", POISONS.names())
def test_poison_ratio(name: str, digits100: ImageSet) -> None:
    crafted = craft(digits100, quick_spec(name, ratio=0.3, seed=1), dataset="digits")
    assert int(crafted.mask.sum()) == 30
    assert bool((crafted.delta[~crafted.mask] == 0).all())
    poisoned = crafted.apply(digits100)
    assert torch.equal(poisoned.x[~crafted.mask], digits100.x[~crafted.mask])
    assert crafted.meta["n_poisoned"] == 30 and crafted.meta["budget"]["n_changed"] <= 30


@pytest.mark.parametrize("name", POISONS.names())
def test_file_stem_is_registry_key(name: str) -> None:
    cls = POISONS.get(name)
    assert cls.__module__ == f"landscape.poisons.{name}"
    assert cls.__doc__ and "arXiv" in cls.__doc__ and "Shape:" in cls.__doc__
    assert cls.norm in ("linf", "l2", "l0", "none") and {"digits", "mnist", "cifar"} <= set(cls.budgets)
    assert set(cls.family_options) <= set(cls.budgets)
    assert all(type(o) is cls.Options for o in cls.family_options.values())  # a family's options are the method's
    assert set(cls.revisions) <= set(cls.budgets)  # a fix is counted on families the method supports
    assert all(type(n) is int and n > 0 for n in cls.revisions.values())


@pytest.mark.parametrize(("name", "dataset", "revision"), [("ops", "cifar10", 1), ("ops", "digits", 0),
                                                          ("ar", "cifar100", 1), ("ar", "mnist", 0),
                                                          ("em", "cifar10", 0)])
def test_a_resolved_spec_carries_the_methods_revision_on_the_family(name: str, dataset: str, revision: int) -> None:
    """OPS and AR were fixed on RGB images (2026-12-03): a stored CIFAR poison of theirs from before has another key.

    On one-channel data their output did not change, so the revision, 0, stays out of the spec's keys.
    """
    from landscape.poisons import resolve

    resolved = resolve(PoisonSpec(method=name, revision=7), dataset=dataset)  # set by the method, never by the caller
    assert resolved.revision == revision
    assert ("revision" in resolved.to_dict()) == bool(revision)
    assert (resolved.key() == resolved.replace(revision=0).key()) == (revision == 0)


def test_a_negative_revision_is_refused() -> None:
    with pytest.raises(SpecError, match="revision"):
        PoisonSpec(method="ops", revision=-1)


def test_a_ratio_that_poisons_no_image_is_refused(digits100: ImageSet) -> None:
    """Ratio 0 (refused by the spec) and a ratio that rounds to no image of the set (refused before crafting)
    would train the clean run again under the method's name (it was crafted as an all-zero poison and trained)."""
    with pytest.raises(SpecError, match=r"PoisonSpec.ratio = 0 poisons no image: the 'em' run would be the clean "
                                        r"run again; give a ratio in \(0, 1\].*method 'clean'"):
        PoisonSpec(method="em", ratio=0.0)
    assert PoisonSpec(method="clean", ratio=0.0).is_clean  # the clean run perturbs nothing at any ratio
    for ratio in (0.004, 0.005):  # 0.4 and 0.5 of an image: round() takes both to 0
        with pytest.raises(SpecError, match=rf"ratio = {ratio:g} poisons none of the 100 training images .*"
                                            r"at least 0.01 \(one image\)"):
            craft(digits100, quick_spec("em", ratio=ratio), dataset="digits")
    assert int(craft(digits100, quick_spec("random", ratio=0.01), dataset="digits").mask.sum()) == 1


def test_store_round_trip_is_exact(tmp_path, digits100: ImageSet) -> None:
    from landscape.store import Store

    crafted = craft(digits100, quick_spec("lsp", ratio=0.5), dataset="digits")
    meta, arrays = crafted.to_store()
    entry = Store(tmp_path).save("poison", "k1", meta, arrays)
    back = Crafted.from_store(entry.meta, entry.arrays)
    assert torch.equal(back.delta, crafted.delta) and torch.equal(back.mask, crafted.mask)
    assert torch.equal(back.apply(digits100).x, crafted.apply(digits100).x)
    assert back.meta["method"] == "lsp" and back.meta["budget"] == json.loads(json.dumps(crafted.meta["budget"]))


def test_default_eps_per_dataset() -> None:
    em = POISONS.get("em")
    assert build(PoisonSpec(method="em"), dataset="cifar10").eps == pytest.approx(8 / 255)
    assert build(PoisonSpec(method="em"), dataset="digits").eps == em.budgets["digits"] == 64 / 255
    assert build(PoisonSpec(method="em", eps=0.1), dataset="digits").eps == 0.1
    assert build(PoisonSpec(method="ar"), dataset="cifar100").eps == 1.0
    assert build(PoisonSpec(method="ops"), dataset="cifar10").eps == 1


def test_budget_figures_known_values() -> None:
    x = torch.zeros(2, 1, 2, 2)
    p = x.clone()
    p[0, 0, 0, 0] = 0.5
    f = budget_figures(x, p)
    assert f["linf"] == pytest.approx(0.5) and f["l2_max"] == pytest.approx(0.5)
    assert f["l2_mean"] == pytest.approx(0.25) and f["l0_mean"] == pytest.approx(0.5)
    assert f["psnr"] == pytest.approx(10 * math.log10(1 / (0.25 / 4))) and f["n_changed"] == 1
    assert budget_figures(x, x)["psnr"] is None


def test_surrogate_methods_record_history(digits100: ImageSet) -> None:
    crafted = craft(digits100, quick_spec("em"), dataset="digits")
    assert 1 <= crafted.meta["loops"] <= 2 and len(crafted.meta["surrogate_acc"]) == crafted.meta["loops"]
    calls: list[tuple[int, int]] = []
    craft(digits100, quick_spec("tap"), dataset="digits", progress=lambda d, t: calls.append((d, t)))
    assert calls and calls[-1][0] == calls[-1][1]


def test_cost_estimate() -> None:
    em = build(PoisonSpec(method="em"), dataset="digits")
    cost = em.estimate_cost(1437, (1, 8, 8))
    assert cost["gradient_evals"] > 0 and cost["cpu_seconds"] > 0
    assert build(PoisonSpec(method="ops"), dataset="digits").estimate_cost(1437, (1, 8, 8))["gradient_evals"] == 0
    # a budget the images cannot hold is refused by the estimate, before anything is offered or crafted
    with pytest.raises(BudgetError, match="only 64"):
        build(PoisonSpec(method="ops", eps=100), dataset="digits").estimate_cost(1437, (1, 8, 8))
    with pytest.raises(BudgetError, match="sqrt"):
        build(PoisonSpec(method="ar", eps=8.0), dataset="digits").estimate_cost(1437, (1, 8, 8))


# ------------------------------------------------------------------------------------- method oracles
def _unclipped(name: str, eps: float, n: int = 200) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """Raw perturbations of `name` on mid-grey images (nothing clips), and their labels and meta."""
    method = build(PoisonSpec(method=name, eps=eps), dataset="digits")
    y = torch.arange(n) % 10
    x = torch.full((n, 1, 8, 8), 0.5)
    crafted = method.craft(x, y, num_classes=10)
    return crafted.delta, y, crafted.meta


def test_ar_noise_is_predicted_by_its_class_filter() -> None:
    delta, y, meta = _unclipped("ar", 0.5)
    filters = torch.tensor(meta["filters"])  # (K, C, C, 3, 3)

    def residual(d: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
        # value minus the AR prediction from its causal 3x3 neighbourhood, on every pixel that has one
        pred = torch.nn.functional.conv2d(d, f)  # (n, C, 6, 6) predicts d[..., 2:, 2:]
        return d[:, :, 2:, 2:] - pred

    own = residual(delta[y == 3], filters[3]).norm() / delta[y == 3][:, :, 2:, 2:].norm()
    other = residual(delta[y == 3], filters[4]).norm() / delta[y == 3][:, :, 2:, 2:].norm()
    assert float(own) < 1e-4 < 0.1 < float(other)


def test_ar_runs_one_process_per_channel_on_rgb() -> None:
    """On C > 1 channels AR is one independent causal 3x3 process per channel (the published
    `ARProcessPerturb3Channel`, a grouped convolution): no cross-channel coefficients, each channel's own causal
    coefficients sum to 1, and each channel's noise is predicted by its own 3x3 filter alone."""
    method = build(PoisonSpec(method="ar", eps=0.5), dataset="cifar10")
    y = torch.arange(100) % 10
    crafted = method.craft(torch.full((100, 3, 8, 8), 0.5), y, num_classes=10)
    delta, filters = crafted.delta, torch.tensor(crafted.meta["filters"])  # (K, C, C, 3, 3)
    assert filters.shape == (10, 3, 3, 3, 3)
    eye = torch.eye(3, dtype=torch.bool)
    assert bool((filters[:, ~eye] == 0).all())  # (K, 6, 3, 3): every off-channel coefficient
    own = filters[:, eye]  # (K, C, 3, 3)
    assert bool((own[..., 2, 2] == 0).all())
    torch.testing.assert_close(own.sum(dim=(2, 3)), torch.ones(10, 3))
    d = delta[y == 3]
    for ch in range(3):
        target = d[:, ch, 2:, 2:]
        pred = torch.nn.functional.conv2d(d[:, ch:ch + 1], own[3, ch][None, None])[:, 0]
        other = torch.nn.functional.conv2d(d[:, ch:ch + 1], own[4, ch][None, None])[:, 0]
        assert float((target - pred).norm() / target.norm()) < 1e-4 < 0.1 < float((target - other).norm()
                                                                                / target.norm())


def test_lsp_patterns_are_linearly_separable_patches() -> None:
    delta, y, _ = _unclipped("lsp", 1.0)
    blocks = delta.view(len(y), 1, 4, 2, 4, 2)
    assert torch.allclose(blocks, blocks[:, :, :, :1, :, :1].expand_as(blocks))  # constant 2x2 patches
    flat = delta.flatten(1)
    means = torch.stack([flat[y == c].mean(0) for c in range(10)])
    assert bool(((flat @ means.T).argmax(1) == y).all())  # a linear rule on delta alone is perfect
    torch.testing.assert_close(flat.norm(dim=1), torch.ones(len(y)))


def test_lsp_clusters_have_make_classifications_covariance() -> None:
    """The class clusters are `make_classification`'s: within-class variance d/3 per dimension (closed form for
    z·A, A = 2U - 1), and the same spread of same-class patterns as scikit-learn's own clusters."""
    from sklearn.datasets import make_classification

    from landscape.poisons.lsp import class_points

    k, d, n = 10, 48, 20_000
    g = torch.Generator().manual_seed(0)
    centres = (torch.randint(0, 2, (k, d), generator=g) * 2 - 1).float() * 10.0
    y = torch.arange(n) % k
    points = class_points(centres, y, "random", g)
    within = torch.stack([points[y == c].var(0) for c in range(k)])  # (K, d)
    assert abs(float(within.mean()) - d / 3) < 1.0, float(within.mean())

    def same_class_cosine(x: np.ndarray, labels: np.ndarray) -> float:
        cos = []
        for c in range(k):
            u = x[labels == c][:300]
            u = u / np.linalg.norm(u, axis=1, keepdims=True)
            cos.append(float((u @ u.T)[np.triu_indices(len(u), 1)].mean()))
        return float(np.mean(cos))

    xs, ys = make_classification(n_samples=n, n_features=d, n_informative=d, n_redundant=0, n_repeated=0,
                                 n_classes=k, n_clusters_per_class=1, class_sep=10.0, flip_y=0.0, random_state=0)
    ours, reference = same_class_cosine(points.numpy(), y.numpy()), same_class_cosine(xs, ys)
    assert abs(ours - reference) < 0.05, (ours, reference)
    identity = same_class_cosine(class_points(centres, y, "identity", g).numpy(), y.numpy())
    assert identity - reference > 0.05, (identity, reference)  # the isotropic clusters are visibly tighter


def test_lsp_identity_covariance_reproduces_the_isotropic_clusters() -> None:
    from landscape.poisons.lsp import class_points

    centres, y = torch.eye(3) * 10, torch.tensor([0, 1, 2, 2, 1])
    got = class_points(centres, y, "identity", torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, centres[y] + torch.randn((5, 3), generator=torch.Generator().manual_seed(5)),
                               rtol=0, atol=0)


def test_ops_sets_the_class_pixels_and_cuda_filters() -> None:
    delta, y, meta = _unclipped("ops", 2)
    for c in range(10):
        for r, col, colour in meta["pixels"][c]:
            assert bool((delta[y == c, 0, r, col] == colour[0] - 0.5).all())
        assert int((delta[y == c] != 0).sum()) == 2 * int((y == c).sum())
    assert len({(p[0], p[1], p[2][0]) for picks in meta["pixels"] for p in picks}) == 20  # no pair reused
    delta, y, meta = _unclipped("cuda", 0.3)
    filt = torch.tensor(meta["filters"])
    assert filt.shape == (10, 3, 3) and bool((filt.amax(dim=(1, 2)) == 1).all()) and float(filt.min()) >= 0


def test_ops_scores_pixels_over_images_and_channels_together() -> None:
    """OPS's pixel search on RGB: a (pixel, colour) pair scores mean/std of |colour - pixel| taken over the class's
    images and the channels together (a (n_class, C) array), as in the reference (Wu et al.; APBench's pixel search).
    The slow reference below is a plain numpy port of that formula (with the code's 1e-3 guard on the std)."""
    import itertools

    rng = np.random.default_rng(0)
    n, c, h, w, k, eps = 90, 3, 5, 5, 3, 2
    x = rng.random((n, c, h, w), dtype=np.float32)
    y = np.arange(n) % k
    colours = list(itertools.product((0.0, 1.0), repeat=c))
    taken: set[tuple[int, int]] = set()
    expected = []
    for cls in range(k):
        imgs = x[y == cls].reshape(-1, c, h * w)
        scores = []
        for p, colour in enumerate(colours):
            for pos in range(h * w):
                dev = np.abs(np.asarray(colour, dtype=np.float32)[None, :] - imgs[:, :, pos])  # (n_class, C)
                scores.append((-(dev.mean() / (dev.std() + 1e-3)), p, pos))
        picks, used = [], set()
        for _, p, pos in sorted(scores):
            if (pos, p) in taken or pos in used:
                continue
            picks.append((pos, colours[p]))
            taken.add((pos, p))
            used.add(pos)
            if len(picks) == eps:
                break
        expected.append(picks)
    method = build(PoisonSpec(method="ops", eps=eps), dataset="cifar10")
    assert method.search(torch.from_numpy(x), torch.from_numpy(y), k) == expected


def test_ar_noise_has_the_l2_budget_on_every_image() -> None:
    """AR scales each image's noise to L2 norm eps (the paper's per-sample scaling; nothing clips on mid-grey)."""
    delta, _, _ = _unclipped("ar", 0.5)
    torch.testing.assert_close(delta.flatten(1).norm(dim=1), torch.full((len(delta),), 0.5))


def test_ar_without_a_crop_is_an_ar_process_from_the_third_row_and_column() -> None:
    """With crop 0 nothing hides the warm-up: every pixel from (2, 2) on is its class filter's causal prediction."""
    method = build(PoisonSpec(method="ar", eps=0.5, options=(("crop", 0),)), dataset="digits")
    y = torch.arange(100) % 10
    crafted = method.craft(torch.full((100, 1, 8, 8), 0.5), y, num_classes=10)
    delta, filters = crafted.delta, torch.tensor(crafted.meta["filters"])
    for c in (0, 7):
        d = delta[y == c]
        pred = torch.nn.functional.conv2d(d, filters[c])  # predicts d[..., 2:, 2:]
        assert float((d[:, :, 2:, 2:] - pred).norm() / d[:, :, 2:, 2:].norm()) < 1e-4


def test_cuda_filters_draw_their_weights_below_the_blur_and_every_image_peaks_at_one(digits100: ImageSet) -> None:
    """CUDA (Sadasivan et al.): weights U(0, blur) with one tap set to 1, the same filter on every channel (zero
    padding), each filtered image divided by its maximum; the reference is a per-image loop over `conv2d`."""
    blur = 0.3
    crafted = craft(digits100, PoisonSpec(method="cuda", eps=blur), dataset="digits")
    filt = torch.tensor(crafted.meta["filters"])  # (K, 3, 3)
    flat = filt.flatten(1)
    assert bool((flat == 1).sum(1).eq(1).all())  # one hot tap per class
    rest = flat[flat != 1]
    assert float(rest.min()) >= 0 and float(rest.max()) <= blur
    poisoned = crafted.apply(digits100).x
    for i in range(0, len(digits100), 7):
        conv = torch.nn.functional.conv2d(digits100.x[i:i + 1], filt[int(digits100.y[i])][None, None], padding=1)
        torch.testing.assert_close(poisoned[i:i + 1], conv / conv.max(), rtol=0, atol=1e-6)


def test_cuda_on_rgb_convolves_every_channel_with_the_class_filter_and_divides_by_the_max_over_channels() -> None:
    """CUDA on 3 channels, as the official `get_filter_unlearnable`: one filter per class copied to every channel
    (a depthwise conv, zero padding 1, no bias), each image divided by its maximum over all channels together (one
    scale per image, so the channels keep their ratios). Reference: a per-channel loop over `conv2d`."""
    g = torch.Generator().manual_seed(5)
    x = torch.rand(20, 3, 8, 8, generator=g) * torch.tensor([1.0, 0.5, 0.25])[None, :, None, None]
    y = torch.arange(20) % 4
    crafted = build(PoisonSpec(method="cuda", eps=0.3), dataset="cifar10").craft(x, y, num_classes=4)
    filt = torch.tensor(crafted.meta["filters"])  # (K, 3, 3)
    poisoned = (x + crafted.delta).clamp(0, 1)
    for i in range(len(y)):
        conv = torch.cat([torch.nn.functional.conv2d(x[i:i + 1, ch:ch + 1], filt[int(y[i])][None, None], padding=1)
                          for ch in range(3)], dim=1)
        torch.testing.assert_close(poisoned[i:i + 1], conv / conv.max(), rtol=0, atol=1e-6)


def _linear_model(classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)  # test-local init
    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, classes))


def _input_grad(model: torch.nn.Module, x: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """d CE_i / d x_i for each sample i (the gradient of the summed loss)."""
    xi = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(torch.nn.functional.cross_entropy(model(xi), target, reduction="sum"), xi)
    return g


def test_signed_steps_descend_or_ascend_within_the_ball_and_the_unit_range() -> None:
    """One signed step is d = -step sign(grad) (minimise) or +step sign(grad), projected to [-eps, eps] and so
    that x + d stays in [0, 1]; more steps lower (raise) the loss and keep both constraints."""
    from landscape.poisons.surrogate import SurrogateMethod

    model = _linear_model()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(0))  # many pixels near 0 or 1
    y = torch.arange(12) % 3
    eps, step = 0.1, 0.04
    grad = _input_grad(model, x, y)
    for minimise, sign in ((True, -1.0), (False, 1.0)):
        one = SurrogateMethod.signed_steps(model, x, y, torch.zeros_like(x), eps=eps, step=step, steps=1,
                                           minimise=minimise)
        torch.testing.assert_close(one, (x + sign * step * grad.sign()).clamp(0, 1) - x, rtol=0, atol=1e-7)
        many = SurrogateMethod.signed_steps(model, x, y, torch.zeros_like(x), eps=eps, step=step, steps=6,
                                            minimise=minimise)
        assert float(many.abs().max()) <= eps + 1e-7
        assert float((x + many).min()) >= 0 and float((x + many).max()) <= 1
        with torch.no_grad():
            clean, moved = (torch.nn.functional.cross_entropy(model(t), y) for t in (x, x + many))
        assert (moved < clean) if minimise else (moved > clean)


def test_em_classwise_step_moves_each_class_by_its_mean_signed_descent_step() -> None:
    """Class-wise EM (Huang et al.): every sample proposes -step sign(grad_i); away from the ball's edge and the
    pixel range (nothing clips) delta_c moves by the mean proposal of its class's samples in the batch, and the loss
    on x + delta_y falls (the clipped case: the test below)."""
    import torch.nn.functional as F

    method = build(PoisonSpec(method="em", options=(("mode", "class"),)), dataset="digits")
    model = _linear_model()
    x = 0.25 + 0.5 * torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))  # nothing clips
    y = torch.tensor([0, 1, 2, 0, 0, 1, 2, 2, 0, 1, 0, 2])
    delta = torch.zeros(3, 1, 8, 8)
    step = 0.01
    method._class_update(model, x, y, delta, step, 3)
    proposals = -step * _input_grad(model, x, y).sign()
    expected = torch.stack([proposals[y == c].mean(0) for c in range(3)]).clamp(-method.eps, method.eps)
    torch.testing.assert_close(delta, expected, rtol=0, atol=1e-7)
    with torch.no_grad():
        assert F.cross_entropy(model(x + delta[y]), y) < F.cross_entropy(model(x), y)


def test_em_classwise_delta_is_the_mean_of_each_samples_clipped_pgd_result() -> None:
    """Class-wise EM as the official `universal_perturbation`: each sample steps from clamp(x + delta_c, 0, 1) and
    its result is clipped to the eps-ball around its image *before* delta_c becomes the class mean; at the ball's
    edge and on black pixels this differs from moving delta_c by the mean signed step. A class absent from the
    batch keeps its delta."""
    method = build(PoisonSpec(method="em", options=(("mode", "class"),)), dataset="digits")
    model = _linear_model(4)
    eps, step = method.eps, 0.02
    x = 0.3 + 0.4 * torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    x[:, :, :2] = 0.0  # black rows: clamp(x + delta) - x is not delta where delta < 0
    y = torch.tensor([0, 1, 2, 0, 0, 1, 2, 2, 0, 1, 0, 2])  # class 3 is absent
    signs = torch.randint(0, 2, (4, 1, 8, 8), generator=torch.Generator().manual_seed(4)) * 2 - 1
    delta = signs.float() * eps  # every entry on the ball's edge
    start = delta.clone()
    method._class_update(model, x, y, delta, step, 4)
    xp = (x + start[y]).clamp(0, 1)
    eta = (xp - step * _input_grad(model, xp, y).sign() - x).clamp(-eps, eps)
    expected = torch.stack([eta[y == c].mean(0) for c in range(3)] + [start[3]])
    torch.testing.assert_close(delta, expected, rtol=0, atol=1e-6)


def test_em_classwise_fix_changes_only_the_classwise_keys() -> None:
    """The class-wise fix (2026-12-07) counts on class-wise EM only: sample-wise EM keeps revision 0 and its keys."""
    from landscape.poisons import resolve

    for dataset in ("digits", "mnist", "cifar10"):
        assert resolve(PoisonSpec(method="em", options=(("mode", "class"),)), dataset=dataset).revision == 1
        assert resolve(PoisonSpec(method="em"), dataset=dataset).revision == 0


def test_tap_steps_towards_the_shifted_class_of_its_surrogate(monkeypatch) -> None:
    """TAP (Fowl et al.): PGD lowers the surrogate's loss on the target class (y + shift) mod K. With a fixed
    linear surrogate standing in for the trained one, one step from zero is -step sign(grad of CE to the target)."""
    method = build(PoisonSpec(method="tap", options=(("steps", 1), ("shift", 2))), dataset="digits")
    model = _linear_model()
    for p in model.parameters():
        p.requires_grad_(False)
    monkeypatch.setattr(method, "train_surrogate", lambda x, y, k, g: (model, [1.0]))
    x = 0.25 + 0.5 * torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(2))  # nothing clips
    y = torch.arange(12) % 3
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    target = (y + 2) % 3
    step = method.options.step_frac * method.eps
    torch.testing.assert_close(out.delta, -step * _input_grad(model, x, target).sign(), rtol=0, atol=1e-7)


def test_tap_restarts_keep_each_images_lowest_target_loss(monkeypatch) -> None:
    """TAP's restarts (the documented adaptation of the official whole-set argmin): restart 0 starts at zero, later
    ones at U(-eps, eps) drawn from the crafting generator; each image keeps the delta of its lower final loss to
    the target class, so the result mixes restarts where they disagree."""
    from landscape.poisons.surrogate import SurrogateMethod

    method = build(PoisonSpec(method="tap", options=(("steps", 1), ("restarts", 2))), dataset="digits")
    model = _linear_model()
    for p in model.parameters():
        p.requires_grad_(False)
    monkeypatch.setattr(method, "train_surrogate", lambda x, y, k, g: (model, [1.0]))
    x = 0.25 + 0.5 * torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(2))
    y = torch.arange(40) % 3
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    eps, step, target = method.eps, method.options.step_frac * method.eps, (y + 1) % 3
    start = (torch.rand(x.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1) * eps
    runs = [SurrogateMethod.signed_steps(model, x, target, s, eps=eps, step=step, steps=1)
            for s in (torch.zeros_like(x), start)]
    with torch.no_grad():
        losses = torch.stack([torch.nn.functional.cross_entropy(model((x + d).clamp(0, 1)), target, reduction="none")
                              for d in runs])  # (2, N)
    pick = losses.argmin(0)
    assert 0 < int(pick.sum()) < len(y)  # both restarts win somewhere
    torch.testing.assert_close(out.delta, torch.where(pick.bool()[:, None, None, None], runs[1], runs[0]),
                               rtol=0, atol=1e-7)


def _mid_grey(n: int = 30, seed: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    """Images in [0.25, 0.75] (no step of up to 64/255 clips) and 3 balanced labels."""
    return 0.25 + 0.5 * torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(seed)), torch.arange(n) % 3


def test_hypo_steps_down_the_loss_of_the_true_class_of_its_surrogate(monkeypatch) -> None:
    """HYPO (Tao et al.): error-minimising PGD on the true labels of a pretrained surrogate; with a fixed linear
    stand-in, one step from zero is -step sign(grad of CE to y)."""
    method = build(PoisonSpec(method="hypo", options=(("steps", 1),)), dataset="digits")
    model = _linear_model()
    for p in model.parameters():
        p.requires_grad_(False)
    monkeypatch.setattr(method, "train_surrogate", lambda x, y, k, g: (model, [1.0]))
    x, y = _mid_grey()
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    step = method.options.step_frac * method.eps
    torch.testing.assert_close(out.delta, -step * _input_grad(model, x, y).sign(), rtol=0, atol=1e-7)


def _frozen_surrogate(monkeypatch, method) -> torch.nn.Module:
    """A linear surrogate for the min-min methods; their options' lr of 1e-12 leaves it fixed while they 'train'."""
    model = _linear_model()
    monkeypatch.setattr(method, "build_surrogate", lambda shape, k, g: model)
    return model


def test_em_samplewise_sweep_descends_the_surrogates_loss(monkeypatch) -> None:
    """Sample-wise EM (Huang et al.): each delta_i takes signed *descent* steps on its own loss; one loop with one
    step against a (practically) fixed surrogate is -step sign(grad_i)."""
    options = (("lr", 1e-12), ("max_loops", 1), ("train_steps", 1), ("pgd_steps", 1))
    method = build(PoisonSpec(method="em", options=options), dataset="digits")
    model = _frozen_surrogate(monkeypatch, method)
    x, y = _mid_grey()
    expected = -method.options.step_frac * method.eps * _input_grad(model, x, y).sign()
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.delta, expected, rtol=0, atol=1e-6)


def test_rem_descends_at_the_worst_case_of_an_ascending_inner_adversary(monkeypatch) -> None:
    """REM (Fu et al.): delta_u descends the loss at x + delta_u + delta_a, delta_a the error-*maximising* PGD
    of radius rho = adv_eps_frac eps. One outer and one inner step against a fixed linear surrogate, in closed
    form: x_a = x + rho sign(grad CE(x)), then delta_u = -step sign(grad CE(x_a))."""
    options = (("lr", 1e-12), ("max_loops", 1), ("train_steps", 1), ("pgd_steps", 1), ("adv_steps", 1),
               ("adv_eps_frac", 1.0), ("adv_step_frac", 1.0))
    method = build(PoisonSpec(method="rem", options=options), dataset="digits")
    model = _frozen_surrogate(monkeypatch, method)
    x, y = _mid_grey()
    x_a = x + method.eps * _input_grad(model, x, y).sign()
    expected = -method.options.step_frac * method.eps * _input_grad(model, x_a, y).sign()
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.delta, expected, rtol=0, atol=1e-6)


def test_random_noise_is_uniform_over_the_whole_linf_ball() -> None:
    """The random baseline: U(-eps, eps) per value (both signs, reaching both ends of the ball)."""
    delta, _, meta = _unclipped("random", 32 / 255)
    eps = 32 / 255
    assert float(delta.min()) < -0.95 * eps and float(delta.max()) > 0.95 * eps
    assert abs(float((delta < 0).double().mean()) - 0.5) < 0.03 and abs(float(delta.mean())) < 0.02 * eps


def test_ops_score_uses_the_population_std_where_the_guard_decides() -> None:
    """The reference's score is mean / (std + 1e-3) with numpy's population std (ddof 0). Two images, one
    channel, two pixels: pixel 0 is constant 0.5 (score 500 for either colour); pixel 1 is 0.1 -+ 7e-4, whose
    white deviation 0.9 has std 7e-4: 0.9 / 1.7e-3 = 529 beats 500 with ddof 0, while ddof 1 (std 9.9e-4) would
    give 452 and pick pixel 0."""
    x = torch.tensor([[[[0.5, 0.1 - 7e-4]]], [[[0.5, 0.1 + 7e-4]]]])  # (2, 1, 1, 2)
    method = build(PoisonSpec(method="ops", eps=1), dataset="digits")
    assert method.search(x, torch.zeros(2, dtype=torch.long), 1) == [[(1, (1.0,))]]


# --------------------------------------------------------------------------------------------- bad input
def test_unknown_method() -> None:
    from landscape.poisons import resolve

    spec = PoisonSpec(method="nope")  # a spec checks types and ranges; the name is checked when it is resolved
    with pytest.raises(SpecError, match="valid choices: clean, random, em, rem"):
        resolve(spec, dataset="digits")
    with pytest.raises(UnknownNameError, match="valid choices"):
        POISONS.get("nope")
    with pytest.raises(SpecError, match="nothing to craft"):
        build(PoisonSpec(method="clean"), dataset="digits")


def test_linf_budget_on_the_255_scale() -> None:
    with pytest.raises(BudgetError, match=r"8/255") as err:
        build(PoisonSpec(method="em", eps=8), dataset="digits")
    assert "[0, 1] pixel scale" in str(err.value)
    with pytest.raises(BudgetError, match=r"the largest is 1 \(= 255/255") as err:  # not 'did you mean 1.18/255'
        build(PoisonSpec(method="em", eps=300 / 255), dataset="digits")
    assert "did you mean" not in str(err.value)


def test_l2_and_l0_budget_scales(digits100: ImageSet) -> None:
    with pytest.raises(BudgetError, match="sqrt"):
        craft(digits100, PoisonSpec(method="lsp", eps=30.0), dataset="digits")
    with pytest.raises(BudgetError, match="whole number of pixels"):
        build(PoisonSpec(method="ops", eps=0.5), dataset="digits")
    with pytest.raises(BudgetError, match="only 64"):
        craft(digits100, PoisonSpec(method="ops", eps=65), dataset="digits")
    with pytest.raises(BudgetError, match=r"\(0, 1\]"):
        build(PoisonSpec(method="cuda", eps=3.0), dataset="digits")


def test_images_outside_unit_range(digits100: ImageSet) -> None:
    bad = digits100.x * 255
    method = build(quick_spec("random"), dataset="digits")
    with pytest.raises(ShapeError, match=r"\[0, 1\]"):
        method.craft(bad, digits100.y, num_classes=10)
    with pytest.raises(ShapeError, match=r"\[0, 1\]"):
        ImageSet(bad, digits100.y, digits100.class_names)
    with pytest.raises(ShapeError, match="float32"):
        method.craft(digits100.x.double(), digits100.y, num_classes=10)


def test_label_count_mismatch(digits100: ImageSet) -> None:
    method = build(quick_spec("random"), dataset="digits")
    with pytest.raises(ShapeError, match="100 images but 99 labels"):
        method.craft(digits100.x, digits100.y[:99], num_classes=10)
    with pytest.raises(ShapeError, match="num_classes = 5"):
        method.craft(digits100.x, digits100.y, num_classes=5)


def test_bad_options_and_dataset() -> None:
    with pytest.raises(SpecError, match="valid options: .*pgd_steps"):
        build(PoisonSpec(method="em", options=(("pgd_step", 3),)), dataset="digits")
    with pytest.raises(SpecError, match="choose one of sample, class"):
        build(PoisonSpec(method="em", options=(("mode", "pixel"),)), dataset="digits")
    with pytest.raises(SpecError, match="EMOptions.pgd_steps = 'many' must be an integer"):
        build(PoisonSpec(method="em", options=(("pgd_steps", "many"),)), dataset="digits")
    with pytest.raises(SpecError, match="TAPOptions.augment = 'rotate' is not valid; choose one of none, crop"):
        build(PoisonSpec(method="tap", options=(("augment", "rotate"),)), dataset="digits")
    with pytest.raises(SpecError, match="valid choices: digits, cifar10, cifar100"):
        build(PoisonSpec(method="em"), dataset="svhn")
    for method in ("em", "rem", "tap", "hypo"):  # refused with the method, before a cost is estimated or a step run
        with pytest.raises(UnknownNameError, match=f"{method} option surrogate = 'vgg' is not a registered model; "
                                                   f"valid choices: cnn, "):
            build(PoisonSpec(method=method, options=(("surrogate", "vgg"),)), dataset="digits")



# counts and sizes whose meaningless values an option's own check (or the method) already names
_CHECKED_ELSEWHERE = {("tap", "shift"), ("cuda", "kernel")}


def test_every_numeric_option_has_a_range() -> None:
    """A steps, batch, rate or size option out of range is refused when the spec is built: a negative step count
    used to craft a zero poison (and store it), a zero batch size a surrogate that never trained."""
    import dataclasses

    for name in POISONS.names():
        for f in dataclasses.fields(POISONS.get(name).Options):
            if f.type in ("int", "float") and (name, f.name) not in _CHECKED_ELSEWHERE:
                assert "range" in f.metadata, f"{name} option {f.name} has no range"
    for method, option, value in [("em", "pgd_steps", -3), ("em", "batch_size", 0), ("em", "stop_acc", 5.0),
                                  ("rem", "eot", 0), ("hypo", "steps", 0), ("tap", "surrogate_epochs", 0),
                                  ("lsp", "class_sep", 0.0), ("ar", "crop", -1)]:
        with pytest.raises(SpecError, match=f"{option} = {value} is out of range"):
            build(PoisonSpec(method=method, options=((option, value),)), dataset="digits")
    build(PoisonSpec(method="rem", options=(("adv_steps", 0),)), dataset="digits")  # 0 = no adversarial steps

def test_apply_to_other_images_fails(digits100: ImageSet) -> None:
    crafted = craft(digits100, quick_spec("random"), dataset="digits")
    with pytest.raises(ShapeError, match="crafted for images"):
        crafted.apply(digits100.subset(torch.arange(10)))


def test_errors_are_landscape_errors() -> None:
    assert issubclass(BudgetError, LandscapeError) and issubclass(ShapeError, LandscapeError)


# ------------------------------------------------------------------------------------------ report, CLI
def test_budget_sweep_figure() -> None:
    from landscape.poisons.report import budget_sweep_figure, sweep_budgets

    rows = [
        {"method": "em", "norm": "linf", "eps": e, "acc_mean": a, "acc_std": 0.01}
        for e, a in zip(sweep_budgets("linf", (1, 8, 8)), (0.96, 0.9, 0.8, 0.35), strict=True)
    ] + [{"method": "ops", "norm": "l0", "eps": 1, "acc_mean": 0.9, "acc_std": 0.0},
         {"method": "clean", "norm": "none", "eps": None, "acc_mean": 0.97, "acc_std": 0.0}]
    fig = budget_sweep_figure(rows)
    names = [t.name for t in fig.data]
    assert names.count("em") == 1 and names.count("ops") == 1
    em = next(t for t in fig.data if t.name == "em")
    assert list(em.y) == [0.96, 0.9, 0.8, 0.35] and em.x[0] == pytest.approx(8.0)  # L∞ axis in /255 units
    assert sweep_budgets("l0", (1, 8, 8)) == [1, 2, 4, 8]


def test_cli_craft_and_evaluate(tmp_path, capsys) -> None:
    from landscape.cli import main

    store = str(tmp_path / "store")
    argv = ["craft", "--dataset", "digits", "--n-train", "100", "--method", "random", "--eps", "16/255",
            "--store", store, "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["eps"] == pytest.approx(16 / 255) and out["budget"]["linf"] <= 16 / 255 + TOL
    assert out["cached"] is False and out["eps_is_default"] is False
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)["cached"] is True
    default = ["craft", "--n-train", "100", "--method", "random", "--store", store]  # no --eps: the default budget
    assert main([*default, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["eps_is_default"] is True
    assert main(default) == 0
    captured = capsys.readouterr()
    assert "eps 64.0/255 default)" in captured.out  # the text says so too (from the store)
    assert "nothing to craft" in captured.err and "crafting random" not in captured.err  # and no cost is announced
    assert main(["craft", "--method", "em", "--eps", "8", "--store", store]) == 2
    assert "8/255" in capsys.readouterr().err
    argv = ["evaluate-ue", "--dataset", "digits", "--n-train", "100", "--n-test", "50", "--method", "ops",
            "--epochs", "2", "--store", store, "--json"]
    assert main(argv) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0.0 <= out["poisoned_test_acc"] <= 1.0 and 0.0 <= out["clean_test_acc"] <= 1.0


def test_cli_at_a_ratio_that_poisons_no_image_refuses_before_any_work(tmp_path, capsys) -> None:
    """`run --ratio 0` trained the clean run twice (the second under the method's name, UD 1); now the commands
    refuse it, and a ratio that rounds to no image of the set, with one line and nothing stored."""
    from landscape.cli import main
    from landscape.config import DataSpec
    from landscape.stages.base import resolve_poison

    rounds_to_0 = ["--n-train", "100", "--ratio", "0.004"]  # run trained (and stored) the clean run before refusing
    for argv, needle in [(["run", "--epochs", "1", "--n-train", "100", "--ratio", "0"], "ratio = 0 poisons no image"),
                         (["craft", *rounds_to_0], "poisons none of the 100 training"),
                         (["run", "--epochs", "1", "--workers", "1", *rounds_to_0], "poisons none of the 100 training"),
                         (["evaluate-ue", "--epochs", "1", *rounds_to_0], "poisons none of the 100 training")]:
        assert main([*argv, "--method", "em", "--store", str(tmp_path / "store")]) == 2
        captured = capsys.readouterr()
        assert needle in captured.err and "crafting" not in captured.err, captured.err
        assert not (tmp_path / "store").exists()
    with pytest.raises(SpecError, match=r"ratio = 0.004 poisons none of the 100 training images .*at least 0.01"):
        resolve_poison(PoisonSpec(method="random", ratio=0.004), DataSpec("digits", n_train=100))  # the API's way
    assert resolve_poison(PoisonSpec(method="random", ratio=0.01), DataSpec("digits", n_train=100)).ratio == 0.01


def test_em_samplewise_sweeps_continue_each_images_own_delta_across_noise_batches(monkeypatch) -> None:
    """Two loops of one step, noise batches of 4 of 30 images: every image's second step starts from its own first
    step, d2 = d1 - step sign(grad at x + d1) (written out by hand against the fixed surrogate; nothing clips)."""
    options = (("lr", 1e-12), ("max_loops", 2), ("train_steps", 1), ("pgd_steps", 1), ("noise_batch", 4),
               ("stop_acc", 1.0))
    method = build(PoisonSpec(method="em", options=options), dataset="digits")
    model = _frozen_surrogate(monkeypatch, method)
    x, y = _mid_grey()
    step = method.options.step_frac * method.eps
    d = torch.zeros_like(x)
    for _ in range(2):
        d = d - step * _input_grad(model, x + d, y).sign()
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    assert out.extras["loops"] == 2
    torch.testing.assert_close(out.delta, d, rtol=0, atol=1e-6)


def test_em_stops_on_the_surrogates_accuracy_on_the_poisoned_images(monkeypatch) -> None:
    """The score after a loop (and the stopping rule) is the surrogate's accuracy on clamp(x + delta, 0, 1), not
    on the clean images."""
    options = (("lr", 1e-12), ("max_loops", 1), ("train_steps", 1), ("pgd_steps", 8))
    method = build(PoisonSpec(method="em", options=options), dataset="digits")
    model = _frozen_surrogate(monkeypatch, method)
    x, y = _mid_grey()
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        poisoned = float((model((x + out.delta).clamp(0, 1)).argmax(1) == y).float().mean())
        clean = float((model(x).argmax(1) == y).float().mean())
    assert poisoned != clean  # the test tells the two apart
    assert out.extras["surrogate_acc"] == [pytest.approx(poisoned)]


def test_em_classwise_trains_its_surrogate_on_the_clamped_poisoned_images(monkeypatch) -> None:
    """Class-wise noise is not projected image by image, so x + delta_y leaves [0, 1] on bright and black pixels:
    the surrogate's training loss is the cross-entropy on clamp(x + delta_y, 0, 1) (the official code's clamp)."""
    import torch.nn.functional as F

    options = (("mode", "class"), ("lr", 1e-12), ("max_loops", 1), ("train_steps", 1))
    method = build(PoisonSpec(method="em", options=options), dataset="digits")
    model = _frozen_surrogate(monkeypatch, method)
    x, y = _mid_grey()
    x[:, :, :3] = 1.0
    x[:, :, -3:] = 0.0
    captured = {}
    real = method.alternate

    def alternate(*args, **kwargs):
        captured.update(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(method, "alternate", alternate)
    out = method.perturb(x, y, num_classes=3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        got = float(captured["train_loss"](torch.arange(len(y))))
        clamped = float(F.cross_entropy(model((x + out.delta).clamp(0, 1)), y))
        raw = float(F.cross_entropy(model(x + out.delta), y))
    assert raw != pytest.approx(clamped, rel=1e-4)  # the clamp matters here
    assert got == pytest.approx(clamped, rel=1e-6)
