"""Figure builders are tested on the figure's data (orientation, shared scales, highlights), never by rendering."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import pytest

from landscape import figures


@pytest.fixture
def grid():
    """An asymmetric grid (5 alphas x 3 betas) whose values identify their (i, j) position."""
    alpha = np.linspace(-1, 1, 5)
    beta = np.linspace(-0.5, 0.5, 3)
    values = 1.0 + 10 * np.arange(5)[:, None] + np.arange(3)[None, :]  # values[i, j] at (alpha[i], beta[j])
    return alpha, beta, values


def test_contour_orientation_rows_are_beta(grid):
    alpha, beta, values = grid
    fig = figures.contour(alpha, beta, values)
    c = fig.data[0]
    np.testing.assert_array_equal(np.asarray(c.z), values.T)
    assert np.asarray(c.z).shape == (len(beta), len(alpha))
    np.testing.assert_array_equal(c.x, alpha)
    np.testing.assert_array_equal(c.y, beta)


def test_surface_3d_orientation_and_path_height(grid):
    alpha, beta, values = grid
    path = figures.PathView(epochs=np.array([0, 1]), a=np.array([0.1, 0.2]), b=np.array([0.0, 0.1]),
                            surface_loss=np.array([3.0, 2.0]))
    fig = figures.surface_3d(alpha, beta, values, paths={"clean": path})
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), values.T)
    assert isinstance(fig.data[1], go.Scatter3d)
    np.testing.assert_array_equal(fig.data[1].z, [3.0, 2.0])


def test_log_scale_is_named_and_applied(grid):
    alpha, beta, values = grid
    fig = figures.contour(alpha, beta, values, log=True)
    np.testing.assert_allclose(np.asarray(fig.data[0].z), np.log10(values).T)
    assert "log10" in fig.data[0].colorbar.title.text


def test_side_by_side_contours_share_one_colour_scale(grid):
    alpha, beta, values = grid
    path = figures.PathView(epochs=np.arange(2), a=np.zeros(2), b=np.zeros(2))
    panels = {"clean": figures.Panel(alpha, beta, values, {"clean": path}),
              "em": figures.Panel(alpha, beta, values * 3, {"em": path})}
    fig = figures.contours_side_by_side(panels)
    assert [t.name for t in fig.data if isinstance(t, go.Scatter)] == ["clean path", "em path"]
    contours = [t for t in fig.data if isinstance(t, go.Contour)]
    assert len(contours) == 2 and all(t.coloraxis == "coloraxis" for t in contours)
    assert fig.layout.coloraxis.cmin == pytest.approx(values.min())
    assert fig.layout.coloraxis.cmax == pytest.approx(3 * values.max())
    np.testing.assert_array_equal(np.asarray(contours[1].z), (values * 3).T)


def test_difference_is_first_minus_second_centred(grid):
    alpha, beta, values = grid
    other = np.ones_like(values)
    fig = figures.difference_contour(alpha, beta, values, other)
    z = np.asarray(fig.data[0].z)
    np.testing.assert_array_equal(z, (values - other).T)
    assert fig.data[0].zmid == 0 and fig.data[0].zmin == -fig.data[0].zmax


def test_paths_drawn_on_contour(grid):
    alpha, beta, values = grid
    paths = {name: figures.PathView(epochs=np.arange(3), a=np.array([0.0, 0.5, 1.0]) * k, b=np.zeros(3))
             for k, name in ((1, "clean"), (2, "em"))}
    fig = figures.contour(alpha, beta, values, paths=paths)
    scatters = [t for t in fig.data if isinstance(t, go.Scatter)]
    assert [t.name for t in scatters] == ["clean path", "em path"]
    np.testing.assert_array_equal(scatters[1].x, [0.0, 1.0, 2.0])
    assert scatters[0].line.color == figures.color_of("clean")


def test_sal_heatmaps_orientation_and_shared_scale():
    epochs = np.array([1, 2, 3, 4])
    layers = ["conv1", "conv2", "fc"]
    clean = np.arange(12, dtype=float).reshape(4, 3)  # (epoch, layer)
    poisoned = clean / 10
    fig = figures.sal_heatmaps({"clean": clean, "em": poisoned}, layers, epochs)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    np.testing.assert_array_equal(np.asarray(heat[0].z), clean.T)  # rows = layers, columns = epochs
    np.testing.assert_array_equal(np.asarray(heat[1].z), poisoned.T)
    assert list(heat[0].y) == layers and list(heat[0].x) == [1, 2, 3, 4]
    assert all(t.coloraxis == "coloraxis" for t in heat)
    assert (fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax) == (0.0, 11.0)


def test_channel_heatmaps_put_channels_as_rows_on_one_scale():
    epochs = np.array([2, 4])
    clean = np.array([[1.0, 10.0, 100.0], [2.0, 20.0, 200.0]])  # (epoch, channel)
    poisoned = clean / 1000
    fig = figures.channel_heatmaps({"clean": clean, "em": poisoned}, "net.3.weight", epochs, log=True)
    heat = [t for t in fig.data if isinstance(t, go.Heatmap)]
    np.testing.assert_allclose(np.asarray(heat[0].z), np.log10(clean.T))  # rows = channels, columns = epochs
    np.testing.assert_allclose(np.asarray(heat[1].z), np.log10(poisoned.T))
    assert list(heat[1].y) == [0, 1, 2] and list(heat[1].x) == [2, 4] and heat[1].xaxis == "x2"
    np.testing.assert_allclose((fig.layout.coloraxis.cmin, fig.layout.coloraxis.cmax), (-3.0, np.log10(200.0)))
    assert "net.3.weight" in fig.layout.title.text and fig.layout.yaxis.title.text == "output channel of net.3.weight"
    assert "channel %{y}" in heat[0].hovertemplate
    wide = figures.channel_heatmaps({"clean": np.ones((2, 512))}, "fc", epochs)
    assert wide.layout.height <= 700  # a 512-channel layer stays on screen
    with pytest.raises(ValueError, match=r"same channels per run.*\(2, 3\).*\(2, 4\)"):
        figures.channel_heatmaps({"clean": clean, "em": np.ones((2, 4))}, "fc", epochs)


def test_learnable_layers_mask_orientation():
    mask = np.array([[1, 0], [1, 1], [0, 0]], dtype=bool)  # (3 epochs, 2 layers)
    fig = figures.learnable_layers({"clean": mask}, ["a", "b"], np.array([1, 2, 3]))
    np.testing.assert_array_equal(np.asarray(fig.data[0].z), mask.T.astype(float))


def test_sal_distribution_has_beta_line():
    fig = figures.sal_distributions({"clean": np.array([0.1, 0.5, 0.9]), "em": np.array([0.01, 0.02])}, beta=0.3)
    assert len(fig.data) == 2
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 1 and lines[0].x0 == pytest.approx(0.3)
    np.testing.assert_array_equal(fig.data[1].x, [0.01, 0.02])


def test_ud_counts_lines_and_means():
    fig = figures.ud_counts({"clean": (np.array([1, 2]), np.array([4, 6])), "em": (np.array([1, 2]), np.array([1, 2]))},
                            n_layers=6)
    assert [t.name for t in fig.data] == ["clean", "em"]
    ys = sorted(s.y0 for s in fig.layout.shapes)
    assert ys == [1.5, 5.0]


def test_trajectory_matrix_columns_and_names():
    """One column per floating weight (buffers and running statistics left out), named by tensor and position."""
    ckpts = [{"0.weight": np.arange(6, dtype=np.float32).reshape(2, 3) + t, "0.bias": np.float32(t),
              "1.running_mean": np.zeros(3, dtype=np.float32), "steps": np.int64(t)} for t in range(4)]
    matrix, names = figures.trajectory_matrix(ckpts)
    assert names == ["0.weight[0, 0]", "0.weight[0, 1]", "0.weight[0, 2]", "0.weight[1, 0]", "0.weight[1, 1]",
                     "0.weight[1, 2]", "0.bias"]
    assert matrix.shape == (4, 7) and matrix[2, 4] == 4 + 2 and list(matrix[:, 6]) == [0, 1, 2, 3]


def test_parameter_paths_highlight_the_most_diverging():
    epochs = np.arange(4)
    clean = np.zeros((4, 5))
    poisoned = np.zeros((4, 5))
    poisoned[:, 3] = np.linspace(0, 2, 4)  # weight 3 diverges most
    poisoned[:, 1] = np.linspace(0, 1, 4)  # then weight 1
    names = [f"w{i}" for i in range(5)]
    np.testing.assert_array_equal(figures.diverging_parameters(clean, poisoned, 2), [3, 1])
    fig = figures.parameter_paths(epochs, clean, poisoned, names, top_k=2)
    highlighted = [t.name for t in fig.data if t.name in names]
    assert highlighted == ["w3", "w1", "w3", "w1"]
    assert fig.data[0].name == "other weights (3 of 3)"
    thin = figures.parameter_paths(epochs, clean, poisoned, names, top_k=1, max_background=2)
    assert thin.data[0].name == "other weights (2 of 4)" and len(thin.data[0].x) == 2 * (len(epochs) + 1)


def test_image_grid_rows_and_amplified_perturbation():
    rng = np.random.default_rng(0)
    clean = rng.uniform(0.2, 0.8, size=(6, 1, 4, 4))
    delta = np.zeros_like(clean)
    delta[:, 0, 0, 0] = 0.1
    labels = np.array([0, 0, 1, 1, 2, 2])
    fig = figures.image_grid(clean, clean + delta, labels, ["a", "b", "c"])
    assert len(fig.data) == 1  # one mosaic: 3 rows (clean, perturbation, poisoned) x 3 classes, 1-pixel gaps
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (3 * 5 - 1, 3 * 5 - 1)
    picks = [0, 2, 4]  # the first image of each class (all are changed)
    for j, i in enumerate(picks):
        cols = slice(5 * j, 5 * j + 4)
        np.testing.assert_allclose(z[0:4, cols], clean[i, 0])
        amplified = z[5:9, cols]
        assert amplified[0, 0] == pytest.approx(1.0) and amplified[1, 1] == pytest.approx(0.5)  # grey = unchanged
        np.testing.assert_allclose(z[10:14, cols], clean[i, 0] + delta[i, 0])
    assert np.isnan(z[4]).all() and np.isnan(z[:, 4]).all()  # the gaps are blank
    assert list(fig.layout.xaxis.ticktext) == ["a", "b", "c"]
    assert list(fig.layout.yaxis.ticktext) == ["clean", "perturbation x5.0", "poisoned"]
    assert "x5.0" in fig.layout.title.text


def test_image_grid_rgb_is_one_image_trace():
    x = np.full((2, 3, 4, 4), 0.5)
    x[1, 0] = 1.0  # the second image is red-heavy
    fig = figures.image_grid(x, x, np.array([0, 1]), ["a", "b"])
    assert len(fig.data) == 1 and isinstance(fig.data[0], go.Image)  # 3 rows x 2 images in one picture
    z = np.asarray(fig.data[0].z)
    assert z.shape == (3 * 5 - 1, 2 * 5 - 1, 3)
    assert tuple(z[0, 0]) == (127, 127, 127) and tuple(z[0, 5]) == (255, 127, 127)
    assert tuple(z[4, 0]) == (255, 255, 255)  # a white gap between rows


def test_pick_examples_prefers_changed_images():
    labels = np.array([0, 0, 1, 1])
    changed = np.array([False, True, False, False])
    assert figures.pick_examples(labels, changed, per_class=1) == [1, 2]


def test_training_curves_traces():
    h = {k: np.array([1.0, 0.5]) for k in ("train_loss", "test_loss")}
    h |= {k: np.array([0.5, 0.9]) for k in ("train_acc", "test_acc")}
    fig = figures.training_curves({"clean": h, "em": h})
    assert len(fig.data) == 8
    assert {t.line.color for t in fig.data if t.legendgroup == "clean"} == {figures.color_of("clean")}


def test_budget_figure_one_panel_per_norm():
    fig = figures.budget_figure({"em": {"linf": 0.1, "l2": 1.0, "l0": 64, "psnr": 20.0}, "ops": {"l0": 1}})
    assert len(fig.data) == 4
    np.testing.assert_array_equal(fig.data[2].y, [64.0, 1.0])
    assert np.isnan(fig.data[0].y[1])


def test_shared_range_ignores_nan_and_log_drops_non_positive():
    assert figures.shared_range(np.array([1.0, np.nan]), np.array([3.0])) == (1.0, 3.0)
    assert figures.shared_range(np.array([0.0, 10.0, 100.0]), log=True) == (1.0, 2.0)
    assert figures.shared_range(np.array([np.nan])) == (0.0, 1.0)


def test_slice_1d_and_explained_variance_and_ud_bars():
    fig = figures.slice_1d(np.linspace(-1, 1, 5), {"clean": np.arange(5.0), "em": np.arange(5.0) * 2})
    np.testing.assert_array_equal(fig.data[1].y, np.arange(5.0) * 2)
    ev = figures.explained_variance({"clean": [0.8, 0.15]})
    np.testing.assert_array_equal(ev.data[0].y, [0.8, 0.15])
    bars = figures.ud_bars({"em": 0.9, "ops": 1.1})
    np.testing.assert_array_equal(bars.data[0].y, [0.9, 1.1])


def test_path_fidelity_plots_residual_and_both_losses():
    p = figures.PathView(epochs=np.arange(3), a=np.zeros(3), b=np.zeros(3), real_loss=np.ones(3),
                         surface_loss=np.ones(3) * 2, residual=np.array([0.0, 0.1, 0.2]))
    fig = figures.path_fidelity({"clean": p})
    assert [t.name for t in fig.data] == ["clean residual", "clean real loss", "clean surface loss"]


def test_figures_and_demo_bundle_do_not_load_streamlit():
    import subprocess
    import sys

    code = ("import sys, landscape.figures, landscape.commands.demo, landscape.cli; "
            "landscape.cli.build_parser(); print('streamlit' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def test_curvature_heatmaps_spectral_density_and_sal_ball():
    layers, epochs = ["a", "b"], np.array([1, 2, 3])
    lam = {"clean": np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]), "em": np.ones((3, 2))}
    fig = figures.sal_heatmaps(lam, layers, epochs, log=True, label="λ_max", title="λ_max")
    assert "λ_max" in fig.data[0].hovertemplate and "λ_max" in fig.layout.coloraxis.colorbar.title.text
    np.testing.assert_allclose(fig.data[0].z, np.log10(lam["clean"]).T)
    grid = np.linspace(0, 1, 5)
    dens = figures.spectral_density({"clean": (grid, np.array([0.0, 1, 2, 1, 0]))})
    assert dens.data[0].y[0] == pytest.approx(-12) and dens.data[0].y[2] == pytest.approx(np.log10(2))
    line = figures.mark_sal_ball(figures.slice_1d(grid, {"clean": grid}), [0.05])
    assert sorted(s.x0 for s in line.layout.shapes) == pytest.approx([-0.05, 0.05])
    disc = figures.mark_sal_ball(go.Figure(), [0.05, 0.1])
    (shape,) = disc.layout.shapes
    assert (shape.type, shape.x0, shape.x1, shape.y0, shape.y1) == ("circle", -0.05, 0.05, -0.1, 0.1)


@pytest.mark.parametrize("epochs", [1, 2, 30])
def test_epoch_axes_tick_whole_epochs_once(epochs):
    """A 1-2 epoch run's automatic ticks fell at half epochs and read "0, 1, 1, 2, 2" under tickformat "d"; short
    runs get one tick per epoch, long ones Plotly's automatic whole-number ticks."""
    h = {k: np.linspace(1.0, 0.5, epochs) for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    e = np.arange(1, epochs + 1)
    axes = [figures.training_curves({"clean": h, "em": h}).layout.xaxis,
            figures.training_curves({"clean": h, "em": h}).layout.xaxis2,
            figures.ud_counts({"clean": (e, e % 3), "em": (e, e % 2)}, n_layers=3).layout.xaxis]
    for axis in axes:
        assert axis.tickformat == "d" and axis.title.text == "epoch"
        assert axis.dtick == (1 if epochs <= 12 else None)


def test_a_sparse_epoch_axis_goes_by_its_last_epoch_not_its_point_count():
    e = np.arange(5, 31, 5)  # 30 epochs, SAL every 5: 6 points
    axis = figures.ud_counts({"clean": (e, e % 3), "em": (e, e % 2)}, n_layers=3).layout.xaxis
    assert axis.dtick is None  # 30 single-epoch ticks would crowd the axis


def epoch_axes(fig: go.Figure) -> list:
    """Every x-axis of `fig` titled "epoch" (one per subplot panel)."""
    axes = [fig.layout[k] for k in fig.layout if k.startswith("xaxis")]
    return [a for a in axes if a.title.text == "epoch"]


def two_epoch_figures() -> dict[str, go.Figure]:
    """Every builder with an epoch x-axis, on a 2-epoch run (SAL, curvature, cross-task, paths, training, UD)."""
    e, layers, rng = np.array([1, 2]), ["0.weight", "3.weight", "fc.weight"], np.random.default_rng(0)
    runs = {"clean": rng.random((2, 3)), "em": rng.random((2, 3))}
    h = {k: np.linspace(1.0, 0.5, 2) for k in ("train_loss", "test_loss", "train_acc", "test_acc")}
    path = figures.PathView(epochs=np.array([0, 1, 2]), a=np.zeros(3), b=np.zeros(3), real_loss=np.ones(3),
                            surface_loss=np.ones(3), residual=np.ones(3))
    return {
        "sal_heatmaps": figures.sal_heatmaps(runs, layers, e),
        "channel_heatmaps": figures.channel_heatmaps(runs, "0.weight", e),
        "learnable_layers": figures.learnable_layers({k: v > 0.5 for k, v in runs.items()}, layers, e),
        "ud_counts": figures.ud_counts({"clean": (e, e % 3), "em": (e, e % 2)}, n_layers=3),
        "training_curves": figures.training_curves({"clean": h, "em": h}),
        "rank_agreement": figures.rank_agreement({"clean: SAL vs λ_max": (e, np.array([0.5, 1.0]))}),
        "task_curves": figures.task_curves({"classify": {"clean": np.array([0.5, 0.9]), "em": np.array([0.4, 0.5])},
                                            "edges": {"clean": np.array([0.2, 0.1])}},
                                           {"classify": "accuracy", "edges": "MSE"}),
        "path_fidelity": figures.path_fidelity({"clean": path, "em": path}),
        "parameter_paths": figures.parameter_paths(np.array([0, 1, 2]), rng.random((3, 8)), rng.random((3, 8)),
                                                   [f"w{i}" for i in range(8)], top_k=2),
    }


@pytest.mark.parametrize("name", list(two_epoch_figures()))
def test_every_epoch_axis_of_a_two_epoch_run_ticks_whole_epochs(name):
    """On a 1-3 epoch run Plotly's automatic ticks fall at half epochs (0, 0.5, 1, ...): every figure with an epoch
    x-axis, every panel of it, takes `style.epoch_axis`, whose ticks are tick0 (0) + k x dtick (1), integers."""
    axes = epoch_axes(two_epoch_figures()[name])
    assert axes, f"{name} has an x-axis titled epoch"
    for axis in axes:
        assert axis.dtick == 1 and axis.tickformat == "d", (name, axis.dtick, axis.tickformat)
        tick0 = 0 if axis.tick0 is None else axis.tick0
        ticks = tick0 + axis.dtick * np.arange(-1, 4)
        assert np.array_equal(ticks, np.round(ticks)), (name, ticks)
