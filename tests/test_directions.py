"""Directions: filter normalisation, orthogonalisation, PCA of trajectories, model lines and planes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from landscape import directions as D
from landscape.errors import LandscapeError, ShapeError, SpecError


@pytest.fixture(autouse=True)
def _one_thread():
    """Tiny tensors: one intra-op thread avoids OpenMP spin-waits when the machine is shared (restored after)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def small_net() -> nn.Module:
    torch.manual_seed(0)  # test-local model init only; the library never seeds
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                         nn.Linear(4 * 8 * 8, 5), nn.ReLU(), nn.Linear(5, 3))


def params_of(net: nn.Module) -> dict[str, torch.Tensor]:
    state = D.float_state(net.state_dict())
    return {n: state[n] for n in D.parameter_names(net)}


def filter_norms(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(t.shape[0], -1).norm(dim=1)


def test_filter_normalised_direction_matches_every_filter_norm():
    params = params_of(small_net())
    d = D.random_direction(params, torch.Generator().manual_seed(1))
    for name, w in params.items():
        if w.dim() >= 2:
            torch.testing.assert_close(filter_norms(d[name]), filter_norms(w), rtol=1e-5, atol=1e-7)
        else:  # biases and BatchNorm scale/shift are zeroed by default
            assert torch.count_nonzero(d[name]) == 0, name


def test_bias_bn_policies_and_layer_norm():
    params = params_of(small_net())
    g = torch.Generator().manual_seed(2)
    weight = D.random_direction(params, g, bias_bn="weight")
    rand = D.random_direction(params, g, bias_bn="random")
    layer = D.random_direction(params, g, norm="layer")
    for name, w in params.items():
        if w.dim() <= 1:
            torch.testing.assert_close(weight[name], w)
            torch.testing.assert_close(rand[name].norm(), w.norm(), rtol=1e-5, atol=1e-7)
        else:
            torch.testing.assert_close(layer[name].norm(), w.norm(), rtol=1e-5, atol=1e-7)
    with pytest.raises(SpecError, match="bias_bn"):
        D.normalize_direction(params, params, bias_bn="keep")
    with pytest.raises(SpecError, match="norm"):
        D.normalize_direction(params, params, norm="unit")


def test_seeded_and_global_rng_untouched():
    params = params_of(small_net())
    before = torch.random.get_rng_state()
    a = D.random_direction(params, torch.Generator().manual_seed(5))
    b = D.random_direction(params, torch.Generator().manual_seed(5))
    c = D.random_direction(params, torch.Generator().manual_seed(6))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert all(torch.equal(a[n], b[n]) for n in a)
    assert not torch.equal(a["0.weight"], c["0.weight"])


def test_orthogonalised_second_direction_keeps_filter_norms_and_reports_cosine():
    params = params_of(small_net())
    g = torch.Generator().manual_seed(3)
    d1 = D.random_direction(params, g)
    mixed = {n: d1[n] * 0.7 + v * 0.3 for n, v in D.random_direction(params, g).items()}  # correlated on purpose
    raw = D.normalize_direction(mixed, params)  # filter-normalised, like the second draw of `random_plane`
    expected_cos = D.cosine(d1, raw)
    d2, cos_before = D.orthogonalize(raw, d1)
    assert cos_before == pytest.approx(expected_cos) and cos_before > 0.5
    assert abs(D.cosine(d1, d2)) < 1e-6
    for name, w in params.items():
        if w.dim() >= 2:
            torch.testing.assert_close(filter_norms(d2[name]), filter_norms(w), rtol=1e-5, atol=1e-6)
    g2, _ = D.orthogonalize(raw, d1, per_filter=False)
    assert abs(D.cosine(d1, g2)) < 1e-6
    assert D.norm_of(g2) == pytest.approx(D.norm_of(raw), rel=1e-5)
    with pytest.raises(LandscapeError, match="parallel"):
        D.orthogonalize(d1, d1, per_filter=False)


def test_random_plane_info():
    net = small_net()
    plane = D.random_plane(net.state_dict(), D.parameter_names(net), torch.Generator().manual_seed(0), seed=0)
    assert plane.d2 is not None and abs(plane.info["cosine_after"]) < 1e-6
    assert "cosine_before" in plane.info and plane.kind == "random"
    assert "1.running_mean" not in plane.d1  # buffers are never moved by random directions


def on_plane_trajectory(t: int = 9, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    center = {"w": torch.randn(6, 5, generator=g), "b": torch.randn(6, generator=g)}
    basis = torch.linalg.qr(torch.randn(36, 2, generator=g, dtype=torch.float64))[0]  # orthonormal (36, 2)
    e = [{"w": basis[:30, k].reshape(6, 5).float(), "b": basis[30:, k].float()} for k in range(2)]
    uv = torch.randn(t, 2, generator=g, dtype=torch.float64) * torch.tensor([3.0, 1.0], dtype=torch.float64)
    states = [{n: center[n] + float(u) * e[0][n] + float(v) * e[1][n] for n in center} for u, v in uv]
    return center, e, states


def test_pca_recovers_a_known_plane():
    center, e, states = on_plane_trajectory()
    res = D.pca_directions([states], center, ["w", "b"])
    assert res.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-6)
    assert res.explained_variance_ratio[0] > res.explained_variance_ratio[1]
    assert D.norm_of(res.d1) == pytest.approx(1.0, abs=1e-5) and abs(D.dot(res.d1, res.d2)) < 1e-5
    # the true basis vectors lie in the recovered span, and every checkpoint projects with no residual
    _, resid_e, dist_e = D.project([{n: center[n] + e[k][n] for n in center} for k in range(2)], center,
                                   [res.d1, res.d2])
    assert resid_e.max() < 1e-5 * dist_e.max()
    coords, resid, dist = D.project(states, center, [res.d1, res.d2])
    assert resid.max() < 1e-5 * dist.max()
    assert coords[0, 0] >= 0 and coords[0, 1] >= 0  # sign convention


def test_pca_pools_trajectories_and_reports_partial_variance():
    center, e, states = on_plane_trajectory()
    _, _, more = on_plane_trajectory(seed=0)
    g = torch.Generator().manual_seed(9)
    noisy = [{n: v + 0.5 * torch.randn(v.shape, generator=g) for n, v in s.items()} for s in more]
    shared = D.pca_directions([states, states[:4]], center, ["w", "b"])
    assert shared.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-6)
    partial = D.pca_directions([noisy], center, ["w", "b"])
    assert 0.5 < partial.explained_variance_ratio.sum() < 0.999
    centered = D.pca_directions([states], center, ["w", "b"], centered=True)
    assert centered.explained_variance_ratio.sum() == pytest.approx(1.0, abs=1e-6)


def test_pca_rejects_degenerate_trajectories():
    center, e, _ = on_plane_trajectory()
    with pytest.raises(LandscapeError, match="at least 3"):
        D.pca_directions([[center, center]], center, ["w", "b"])
    line = [{n: center[n] + s * e[0][n] for n in center} for s in (1.0, 2.0, 3.0)]
    with pytest.raises(LandscapeError, match="fewer than two"):
        D.pca_directions([line], center, ["w", "b"])


def test_line_and_plane_through_models():
    a, b, c = (params_of(small_net()) for _ in range(3))
    g = torch.Generator().manual_seed(4)
    b = {n: v + torch.randn(v.shape, generator=g) for n, v in a.items()}
    c = {n: v + torch.randn(v.shape, generator=g) for n, v in a.items()}
    names = list(a)
    line = D.line_between(a, b, names)
    assert line.d2 is None and line.anchors == {"a": (0.0, 0.0), "b": (1.0, 0.0)}
    torch.testing.assert_close(line.d1["0.weight"], b["0.weight"] - a["0.weight"])
    plane = D.plane_through(a, b, c, names)
    assert abs(D.cosine(plane.d1, plane.d2)) < 1e-6
    assert D.norm_of(plane.d2) == pytest.approx(D.norm_of(plane.d1), rel=1e-5)
    x, y = plane.anchors["c"]
    assert y > 0
    rebuilt = {n: a[n] + x * plane.d1[n] + y * plane.d2[n] for n in names}
    assert max(float((rebuilt[n] - c[n]).abs().max()) for n in names) < 1e-4
    skew = D.plane_through(a, b, c, names, orthogonal=False)
    assert skew.anchors["c"] == pytest.approx((0.0, 1.0), abs=1e-6)
    with pytest.raises(LandscapeError, match="identical"):
        D.line_between(a, a, names)
    with pytest.raises(LandscapeError, match="one line"):
        D.plane_through(a, b, {n: a[n] + 2 * (b[n] - a[n]) for n in names}, names)


def test_check_direction_rejects_bad_input():
    params = params_of(small_net())
    good = D.random_direction(params, torch.Generator().manual_seed(0))
    D.check_direction(good, params)
    with pytest.raises(ShapeError, match=r"\(4, 1, 3, 3\)"):
        D.check_direction({**good, "0.weight": torch.ones(4, 1, 5, 5)}, params)
    with pytest.raises(ShapeError, match="not a parameter"):
        D.check_direction({"nope": torch.ones(1)}, params)
    with pytest.raises(LandscapeError, match="zero norm"):
        D.check_direction({n: torch.zeros_like(v) for n, v in params.items()}, params)
    with pytest.raises(LandscapeError, match="NaN"):
        D.check_direction({**good, "4.bias": torch.full((5,), float("nan"))}, params)
    only_bias = {"b": torch.ones(3)}
    zero = D.random_direction(only_bias, torch.Generator().manual_seed(0))
    with pytest.raises(LandscapeError, match="bias_bn"):
        D.check_direction(zero, only_bias)


def test_project_non_orthogonal_plane_is_exact():
    g = torch.Generator().manual_seed(1)
    center = {"w": torch.randn(10, generator=g)}
    d1, d2 = {"w": torch.randn(10, generator=g)}, {"w": torch.randn(10, generator=g)}
    s = {"w": center["w"] + 0.3 * d1["w"] - 1.2 * d2["w"]}
    coords, resid, _ = D.project([s], center, [d1, d2])
    np.testing.assert_allclose(coords[0], [0.3, -1.2], atol=1e-5)
    assert resid[0] < 1e-5


def test_centred_pca_is_the_svd_of_the_centred_differences():
    """centered=True is Li et al.'s sklearn PCA: the top right singular vectors of (checkpoint - center) with the
    mean over checkpoints removed, and their share of the centred variance (a direct numpy SVD as the oracle)."""
    g = torch.Generator().manual_seed(2)
    center = {"w": torch.randn(4, 5, generator=g), "b": torch.randn(4, generator=g)}
    states = [{n: v + torch.randn(v.shape, generator=g) * (1 + t) for n, v in center.items()} for t in range(6)]
    res = D.pca_directions([states], center, ["w", "b"], centered=True)
    m = np.stack([np.concatenate([(s[n] - center[n]).reshape(-1).double().numpy() for n in ("w", "b")])
                  for s in states])
    m -= m.mean(0, keepdims=True)
    _, sv, vt = np.linalg.svd(m, full_matrices=False)
    for k, d in enumerate((res.d1, res.d2)):
        got = np.concatenate([d[n].reshape(-1).double().numpy() for n in ("w", "b")])
        assert abs(float(got @ vt[k])) == pytest.approx(1.0, abs=1e-5), k  # the same axis, up to its sign
    np.testing.assert_allclose(res.explained_variance_ratio, sv[:2] ** 2 / (sv ** 2).sum(), rtol=1e-5)


def test_project_reports_the_off_plane_residual_and_the_distance():
    """A point 0.3 d1 - 1.2 d2 plus an offset r orthogonal to both: coordinates (0.3, -1.2), residual ||r|| and
    distance ||0.3 d1 - 1.2 d2 + r||, by hand on orthogonal unit axes."""
    center = {"w": torch.zeros(4), "b": torch.ones(2)}
    d1 = {"w": torch.tensor([1.0, 0.0, 0.0, 0.0]), "b": torch.zeros(2)}
    d2 = {"w": torch.tensor([0.0, 2.0, 0.0, 0.0]), "b": torch.zeros(2)}
    s = {"w": torch.tensor([0.3, -2.4, 3.0, 0.0]), "b": torch.tensor([1.0, 5.0])}  # r = (0, 0, 3, 0 | 0, 4)
    coords, resid, dist = D.project([s], center, [d1, d2])
    np.testing.assert_allclose(coords[0], [0.3, -1.2], atol=1e-6)
    assert resid[0] == pytest.approx(5.0, rel=1e-6)
    assert dist[0] == pytest.approx(np.sqrt(0.3 ** 2 + 2.4 ** 2 + 25.0), rel=1e-6)


def test_cosine_of_hand_vectors():
    a = {"w": torch.tensor([1.0, 0.0]), "b": torch.tensor([0.0])}
    b = {"w": torch.tensor([2.0, 2.0]), "b": torch.tensor([0.0])}
    assert D.cosine(a, b) == pytest.approx(1 / np.sqrt(2)) and D.cosine(b, a) == pytest.approx(1 / np.sqrt(2))
    assert D.cosine({"w": torch.tensor([3.0, 4.0])}, {"w": torch.tensor([-6.0, -8.0])}) == pytest.approx(-1.0)
    assert D.cosine(a, {"w": torch.zeros(2), "b": torch.zeros(1)}) == 0.0


def test_a_layer_slice_of_a_bias_moves_it_as_one_filter():
    """A one-dimensional tensor named in a layer slice is one filter: its direction has the tensor's norm, so the
    SAL ball is at eps (a zeroed bias direction would leave nothing to slice)."""
    net = small_net()
    plane = D.layer_plane(net.state_dict(), ["4.bias"], torch.Generator().manual_seed(0), dims=2)
    bias = net.state_dict()["4.bias"]
    for d in plane.directions:
        assert list(d) == ["4.bias"]
        assert float(d["4.bias"].norm()) == pytest.approx(float(bias.norm()), rel=1e-5)
    np.testing.assert_allclose(plane.info["sal_ball"], [0.05, 0.05], rtol=1e-5)
