"""AppTest of the layer views (#13): a SAL cell opens that layer's slice and values; the Curvature page renders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

from landscape.app.views.curvature import Cell, selected_cell

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 300


def live_tiny(page: str, key: str) -> AppTest:
    """The page on a tiny live run (digits, mlp, OPS, two epochs), its experiment computed through the page."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page(page).run()
    at.selectbox(key="_w_model").set_value("mlp").run()
    at.selectbox(key="_w_method").set_value("ops").run()
    at.number_input(key="_w_epochs").set_value(2).run()
    at.button(key=f"{key}_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def chart_titles(at: AppTest) -> list[str]:
    import json

    return [json.loads(c.proto.spec)["layout"].get("title", {}).get("text", "") for c in at.get("plotly_chart")]


def test_selected_cell_reads_the_marker_of_a_selection_event():
    event = {"selection": {"points": [{"curve_number": 0, "x": 3, "y": "a.weight"},  # the heatmap: no customdata
                                      {"curve_number": 2, "customdata": ["em", "net.3.weight", 7]}]}}
    assert selected_cell(event) == Cell("em", "net.3.weight", 7)
    assert selected_cell({"selection": {"points": []}}) is None and selected_cell(None) is None


def test_sal_cell_opens_the_layers_slice_with_its_sal_lambda_max_and_trace():
    at = live_tiny("pages/sal.py", "sal")
    at.selectbox(key="_w_sal_cell_layer").set_value("3.weight").run()
    at.selectbox(key="_w_sal_cell_epoch").set_value(1).run()
    assert not any("1D slice along" in t for t in chart_titles(at))  # nothing computed before the button
    at.button(key="sal_slice_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "1D slice along 3.weight at epoch 1" in chart_titles(at)
    from landscape.app.state import AppSpec
    from landscape.app.views.study import live_study

    study = live_study(AppSpec(model="mlp", method="ops", epochs=2))
    metrics = {m.label: m.value for m in at.metric}
    for run in ("clean", "ops"):
        trace = study.sal[run]
        expected = trace.sal[list(trace.epochs).index(1), list(trace.layers).index("3.weight")]
        assert metrics[f"SAL ({run})"] == f"{expected:.4g}"
        assert metrics[f"λ_max ({run})"] == "not measured"  # curvature not computed yet
    at.switch_page("pages/curvature.py").run()  # compute the curvature there, then come back: λ_max appears
    at.button(key="curvature_compute").click().run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page("pages/sal.py").run()
    metrics = {m.label: m.value for m in at.metric}
    from landscape.app.views.curvature import stored_curvature

    curv = stored_curvature(AppSpec(model="mlp", method="ops", epochs=2))
    lam = curv["ops"].lambda_max[0, curv["ops"].layers.index("3.weight")]
    assert metrics["λ_max (ops)"] == f"{lam:.4g}"
    assert "1D slice along 3.weight at epoch 1" in chart_titles(at)  # the selected cell stays open


def test_curvature_page_renders_heatmaps_agreement_and_density():
    at = live_tiny("pages/curvature.py", "curvature")
    assert not any("λ_max per layer" in t for t in chart_titles(at))
    at.button(key="curvature_compute").click().run()
    assert not at.exception, [e.value for e in at.exception]
    titles = chart_titles(at)
    for title in ("λ_max per layer and epoch", "Hessian trace per layer and epoch", "SAL per layer and epoch",
                  "Spearman rank agreement across layers, per epoch", "Hessian eigenvalue density at epoch 2"):
        assert title in titles, titles
    labels = [m.label for m in at.metric]
    assert "Spearman(SAL, λ_max), clean" in labels and "Spearman(SAL, λ_max), ops" in labels
    assert len(at.dataframe) >= 1 and np.isfinite(at.dataframe[0].value["lambda_max"]).all()


def test_the_demo_opens_on_curvature_and_on_the_default_cells_slice_without_computing():
    """The demo ships curvature and layer slices (#13): the Curvature page opens on its figures, and the SAL page's
    default cell (the first layer, the last epoch) on its slice, with the demo's λ_max, and no button."""
    from landscape import demo

    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/curvature.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    assert "λ_max per layer and epoch" in chart_titles(at) and not at.button
    assert np.isfinite(at.dataframe[0].value["lambda_max"]).all()
    at.switch_page("pages/sal.py").run()
    assert not at.exception and not at.error, [e.value for e in [*at.exception, *at.error]]
    layer, epoch = demo.demo_layers()[0], demo.DEMO_TRAIN.epochs
    assert (at.selectbox(key="_w_sal_cell_layer").value, at.selectbox(key="_w_sal_cell_epoch").value) == (layer, epoch)
    assert f"1D slice along {layer} at epoch {epoch}" in chart_titles(at)
    assert not [b for b in at.button if b.key == "sal_slice_run"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["λ_max (em)"] != "not measured" and metrics["λ_max (clean)"] != "not measured"


def test_a_slice_or_surface_the_runs_cannot_give_is_refused_before_anything_trains():
    """The app builds its stages with the engine's checks: a bad epoch, layer or interp plane never trains."""
    import dataclasses

    import pytest

    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views import curvature
    from landscape.config import SurfaceSpec
    from landscape.errors import SpecError

    spec = AppSpec(model="mlp", method="random", epochs=2, n_train=40)
    assert curvature.slice_stage(spec, "1.weight", 2) is not None
    assert curvature.slice_stage(spec, "1.weight", 3) is None and curvature.slice_stage(spec, "nope.weight", 1) is None
    assert not curvature.slice_ready(spec, "1.weight", 3)
    with pytest.raises(SpecError, match="epoch = 3 is not a stored epoch"):
        curvature.layer_slices(spec, "1.weight", 3)
    with pytest.raises(SpecError, match="needs a poisoned run"):
        engine.surfaces(dataclasses.replace(spec, method="clean"), SurfaceSpec(kind="interp", resolution=3))
    root = Path(engine.store().root)
    assert not root.exists() or not list(root.rglob("*")), list(root.rglob("*"))
