"""Curvature figures: the data each builder puts on the figure (rank agreement, a layer slice with the SAL ball)."""

from __future__ import annotations

import numpy as np

from landscape import figures as fig
from landscape.curvature import BlockCurvature, Curvature, CurvatureTrace
from landscape.sal import SALTrace


def test_rank_agreement_draws_each_series_with_gaps_for_nan():
    epochs = np.array([1, 2, 3])
    f = fig.rank_agreement({"clean: SAL vs λ_max": (epochs, np.array([0.5, np.nan, 1.0])),
                            "em: SAL vs trace": (epochs, np.array([-0.2, 0.1, 0.3]))})
    assert [t.name for t in f.data] == ["clean: SAL vs λ_max", "em: SAL vs trace"]
    np.testing.assert_array_equal(f.data[0].y, [0.5, np.nan, 1.0])
    assert f.data[0].line.color == fig.color_of("clean") and f.data[1].line.dash == "dot"
    assert tuple(f.layout.yaxis.range) == (-1.05, 1.05)


def test_layer_slice_puts_loss_and_accuracy_side_by_side_with_the_ball():
    alpha = np.linspace(-0.5, 0.5, 5)
    loss = {"clean": np.arange(5.0), "em": np.arange(5.0) + 1}
    acc = {"clean": np.full(5, 0.9), "em": np.full(5, 0.5)}
    f = fig.layer_slice(alpha, loss, acc, [0.05], layer="net.3.weight", epoch=7)
    assert len(f.data) == 4
    by_axis = {(t.name, t.xaxis): t for t in f.data}
    np.testing.assert_array_equal(by_axis[("em", "x")].y, loss["em"])
    np.testing.assert_array_equal(by_axis[("em", "x2")].y, acc["em"])
    assert [t.showlegend for t in f.data] == [True, True, False, False]
    rects = [s for s in f.layout.shapes if s.type == "rect"]
    assert len(rects) == 2 and all((s.x0, s.x1) == (-0.05, 0.05) for s in rects)  # the ball on both panels
    assert "net.3.weight at epoch 7" in f.layout.title.text


def _block(lam: float, trace: float) -> BlockCurvature:
    return BlockCurvature(size=4, eigenvalues=np.array([lam, lam / 2]), residuals=np.zeros(2), trace=trace,
                          trace_se=0.1, trace_krylov=trace, esd_nodes=np.array([[lam / 2, lam]]),
                          esd_weights=np.array([[0.5, 0.5]]), steps=2, converged=True, hvps=4, seconds=0.0)


def test_curvature_figures_from_traces_with_sal():
    layers, epochs = ["a.weight", "b.weight", "c.weight"], np.array([1, 2])
    lam = {"clean": np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]]), "em": np.array([[0.1, 0.2, 0.3], [0.1, 0.3, 0.2]])}
    traces = {k: CurvatureTrace(epochs, [Curvature({n: _block(v[t, j], 2 * v[t, j]) for j, n in enumerate(layers)},
                                                   _block(5.0, 9.0) if k == "clean" else None)
                                         for t in range(2)]) for k, v in lam.items()}
    sal_values = np.array([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    zeros = np.zeros((2, 3))
    sal = {k: SALTrace(tuple(layers), epochs, zeros, zeros, sal_values, zeros, zeros, zeros, zeros, zeros,
                       np.zeros(2)) for k in lam}
    figs = fig.curvature_figures(traces, sal)
    assert len(figs) == 5
    np.testing.assert_array_equal(figs[0].data[1].z, np.log10(lam["em"]).T)  # λ_max heatmap, layers x epochs
    rho = {t.name: np.asarray(t.y) for t in figs[3].data}
    np.testing.assert_allclose(rho["clean: SAL vs λ_max"], [1.0, -1.0])
    np.testing.assert_allclose(rho["em: SAL vs trace"], [1.0, 0.5])
    assert [t.name for t in figs[4].data] == ["clean: whole model", "em: a.weight"]  # ESD at the last epoch
    # each curve in its run's colour, as in every other figure (clean blue, em the first poison colour)
    assert [t.line.color for t in figs[4].data] == [fig.color_of("clean"), fig.color_of("em")]
    assert len(fig.curvature_figures(traces)) == 3


def test_selectable_cells_put_one_marker_per_cell_on_each_panel():
    layers, epochs = ["a.weight", "b.weight"], np.array([1, 2, 3])
    runs = {"clean": np.zeros((3, 2)), "em": np.arange(6.0).reshape(3, 2)}
    f = fig.selectable_cells(fig.sal_heatmaps(runs, layers, epochs), runs, layers, epochs)
    cells = [t for t in f.data if t.type == "scatter"]
    assert [(t.xaxis, t.yaxis) for t in cells] == [("x", "y"), ("x2", "y2")]  # on its run's panel
    em = cells[1]
    assert len(em.x) == 6 and [list(c) for c in em.customdata[:3]] == [["em", "a.weight", 1], ["em", "b.weight", 1],
                                                                        ["em", "a.weight", 2]]
    assert list(em.y[:2]) == layers and list(em.x[:3]) == [1, 1, 2] and f.layout.clickmode == "event+select"
    assert list(em.text[:3]) == ["0", "1", "2"]  # the value of each cell, (epoch, layer) row-major
    assert all(t.hoverinfo == "skip" for t in f.data if t.type == "heatmap")  # the markers carry the hover
