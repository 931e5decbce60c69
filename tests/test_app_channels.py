"""AppTest of the SAL page's layer link (#13) on the shipped demo: per-channel SAL of the selected layer, and a
Plotly selection event on the SAL heatmap opening that cell's layer slice and values."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from streamlit.testing.v1 import AppTest

from landscape.app.state import AppSpec

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 300
SPEC = AppSpec()  # the sidebar's defaults: the shipped demo's experiment (digits, cnn, em, 10 epochs)


def sal_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    at.switch_page("pages/sal.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def charts(at: AppTest) -> dict[str, go.Figure]:
    """Plotly figures on the page by title (decoded: arrays may travel as typed binary data)."""
    figs = [pio.from_json(c.proto.spec) for c in at.get("plotly_chart")]
    return {f.layout.title.text or "": f for f in figs}


def decoded(value: Any) -> np.ndarray:
    """An array of a figure's JSON: a list, or plotly's typed array {"dtype", "bdata" (base64), "shape"}."""
    if isinstance(value, dict) and "bdata" in value:
        flat = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        return flat.reshape([int(n) for n in str(value.get("shape", len(flat))).split(",")]).astype(float)
    return np.asarray(value, dtype=float)


def heatmap_z(fig: go.Figure) -> list[np.ndarray]:
    return [decoded(t.z) for t in fig.data if t.type == "heatmap"]


def test_sal_page_draws_the_selected_layers_channels_clean_beside_poisoned():
    from landscape.app import engine
    from landscape.app.views.channels import channel_stages

    at = sal_page()
    at.selectbox(key="_w_sal_cell_layer").set_value("12.weight").run()
    cost = [i.value for i in at.info if "output channels of 12.weight" in i.value]
    assert cost and "Cost: SAL of each of the 64 output channels" in cost[0], [i.value for i in at.info]
    title = "loss SAL per output channel of 12.weight and epoch (one colour scale)"
    assert title not in charts(at)  # nothing computed before the button
    at.button(key="sal_channels_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    fig = charts(at)[title]
    store = engine.store()  # the user's store over the demo snapshot, as the page reads it
    traces = {run: stage.load(store) for run, stage in channel_stages(SPEC, "12.weight").items()}
    assert list(traces) == ["clean", "em"] and all(t is not None for t in traces.values())  # the page stored both
    for z, trace in zip(heatmap_z(fig), traces.values(), strict=True):  # clean beside poisoned, log10 by default
        assert z.shape == (64, 10)
        with np.errstate(divide="ignore", invalid="ignore"):
            np.testing.assert_allclose(z, np.where(trace.sal.T > 0, np.log10(trace.sal.T), np.nan), rtol=1e-12)
    assert fig.layout.coloraxis.cmin < fig.layout.coloraxis.cmax  # one shared scale
    table = next(d.value for d in at.dataframe if "channel" in d.value.columns)
    assert len(table) == 2 * 10 * 64 and sorted(set(table["channel"])) == list(range(64))
    row = table[(table["run"] == "em") & (table["epoch"] == 3) & (table["channel"] == 5)].iloc[0]
    assert row["sal"] == traces["em"].sal[2, 5] and row["layer"] == "12.weight"
    labels = [b.label for b in at.get("download_button")]
    assert labels.count("Download figure (HTML)") >= 2 and "Download CSV" in labels
    at.radio(key="sal_variant").set_value("accuracy").run()  # the accuracy variant, from the same entries
    z = heatmap_z(charts(at)["accuracy SAL per output channel of 12.weight and epoch (one colour scale)"])
    np.testing.assert_allclose(z[1], traces["em"].acc_variant.T)
    at.selectbox(key="_w_sal_cell_layer").set_value("14.weight").run()  # another layer: its own entries
    assert any("10 output channels of 14.weight" in i.value for i in at.info)


def test_a_selection_event_on_the_sal_heatmap_opens_that_layers_slice_and_values():
    from landscape.app.views.study import live_study

    at = sal_page()
    # what st.plotly_chart(on_select="rerun") returns after a click on the em panel's cell (7.weight, epoch 4)
    at.session_state["fig-sal-heatmaps-em-loss"] = {"selection": {"points": [
        {"curve_number": 3, "x": 4, "y": "7.weight", "customdata": ["em", "7.weight", 4]}]}}
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert (at.selectbox(key="_w_sal_cell_layer").value, at.selectbox(key="_w_sal_cell_epoch").value) == ("7.weight", 4)
    subheaders = [h.value for h in at.subheader]
    assert "7.weight at epoch 4" in subheaders and "Inside 7.weight: SAL per output channel" in subheaders
    if "1D slice along 7.weight at epoch 4" not in charts(at):  # not in the snapshot: computed through its button
        at.button(key="sal_slice_run").click().run()
        assert not at.exception, [e.value for e in at.exception]
    fig = charts(at)["1D slice along 7.weight at epoch 4"]
    assert sorted({t.name for t in fig.data}) == ["clean", "em"]  # clean beside poisoned
    study = live_study(SPEC)
    metrics = {m.label: m.value for m in at.metric}
    for run in ("clean", "em"):
        t = study.sal[run]
        assert metrics[f"SAL ({run})"] == f"{t.sal[list(t.epochs).index(4), t.layers.index('7.weight')]:.4g}"
    at.run()  # a rerun keeps the selection: the pickers stay where the click put them, and can move on from it
    at.selectbox(key="_w_sal_cell_epoch").set_value(9).run()
    assert "7.weight at epoch 9" in [h.value for h in at.subheader]
