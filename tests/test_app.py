"""AppTest smoke tests: start from app.py, switch to each page, no exception, the page's key element present.

Heavy work is kept out: pages read the shipped demo bundle, and the few computations run on tiny specs
(model-free poisons, one or two epochs, a training subset). Streamlit caches are cleared around every test
(streamlit/streamlit#9139: caches persist across AppTest instances in one process) by the autouse
fixture `_fresh_streamlit_caches` in conftest.py.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from landscape.app.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 300  # seconds per script run; the 2-core CI box can be slow while others compute


def open_page(page: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    if page is not None:
        at.switch_page(page).run()
    return at


def texts(at: AppTest) -> str:
    parts = [e.value for e in at.markdown] + [e.value for e in at.caption] + [e.value for e in at.info]
    return "\n".join(str(p) for p in parts)


def charts(at: AppTest) -> list:
    return list(at.get("plotly_chart"))


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def tiny(at: AppTest, page: str, *, method: str = "random", epochs: int = 1) -> AppTest:
    """Set the sidebar to a tiny live computation and the page to show live results."""
    at.selectbox(key="_w_method").set_value(method).run()
    at.number_input(key="_w_epochs").set_value(epochs).run()
    at.radio(key=f"source_{page}").set_value("live").run()
    return at


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.title)
def test_every_page_of_the_table_opens(page):
    """Every row of the one PAGES table is a page of app.py that opens without an exception, with its title."""
    at = open_page(page.file)
    no_exception(at)
    heading = "UE Landscape" if page.default else page.title  # the default page opens on the app's name
    assert at.title and heading.lower() in at.title[0].value.lower()


def test_app_opens_on_overview_with_demo_figure():
    at = open_page()
    no_exception(at)
    assert at.title[0].value == "UE Landscape"
    assert charts(at), "the overview shows the shipped demo figure"
    assert any(m.label.startswith("UD (") for m in at.metric), "and the demo's UD"
    assert at.button(key="quick_demo") is not None


def test_overview_quick_demo_runs_live(monkeypatch):
    from landscape.app.state import AppSpec
    from landscape.app.views import study

    monkeypatch.setattr(study, "quick_spec", lambda: AppSpec(model="mlp", method="ops", epochs=1))  # tiny
    # Switch explicitly: under AppTest a click on the entry page is lost in its nested navigation run.
    at = open_page("pages/overview.py")
    n_charts, n_ud = len(charts(at)), sum(m.label == "UD (ops)" for m in at.metric)
    at.button(key="quick_demo").click().run()
    no_exception(at)
    assert len(charts(at)) == n_charts + 1
    assert sum(m.label == "UD (ops)" for m in at.metric) == n_ud + 1


def test_shipped_demo_bundle_is_complete_and_small():
    from landscape.commands.demo import MAX_BYTES, bundle_size, demo_dir, load_bundle

    demo = load_bundle()
    assert demo is not None, "assets/demo is missing: python -m landscape demo"
    assert demo.manifest["plan"]["data"]["name"] == "digits" and demo.manifest["plan"]["model"]["name"] == "cnn"
    assert {"em", "ops"} <= set(demo.methods)
    assert set(demo.sal) == set(demo.runs) and set(demo.ud) == set(demo.methods)
    assert {"pca-2d", "random-2d", "interp-1d"} <= set(demo.surfaces)
    assert all(np.isfinite(demo.histories[r]["test_acc"]).all() for r in demo.runs)
    assert bundle_size(demo_dir()) <= MAX_BYTES


def test_poison_page_crafts_and_shows_grid_and_budget():
    at = open_page("pages/poison.py")
    no_exception(at)
    assert at.title[0].value == "Poison"
    assert len(charts(at)) == 2  # the shipped demo's images and budgets
    tiny(at, "poison", method="ops")
    assert at.button(key="craft") is not None and not charts(at)  # nothing computed before the button
    at.button(key="craft").click().run()
    no_exception(at)
    assert len(charts(at)) == 2  # image grid + budget figure
    assert len(at.dataframe) == 1
    # the spec survives a page switch and back, and the result is then served without a button
    at.switch_page("pages/train.py").run()
    at.switch_page("pages/poison.py").run()
    no_exception(at)
    assert at.selectbox(key="_w_method").value == "ops"
    assert len(charts(at)) == 2


def test_train_page_trains_clean_and_poisoned():
    at = open_page("pages/train.py")
    no_exception(at)
    assert at.title[0].value == "Train"
    assert charts(at) and len(at.metric) == 3  # the shipped demo: clean, em, ops
    tiny(at, "train", method="random", epochs=2)
    at.button(key="train").click().run()
    no_exception(at)
    assert charts(at) and len(at.metric) == 2
    assert all(m.value.endswith("%") for m in at.metric)


def test_engine_error_becomes_st_error_not_exception(tmp_path):
    at = open_page("pages/train.py")
    at.selectbox(key="_w_dataset").set_value("cifar10").run()
    at.text_input(key="_w_data_root").set_value(str(tmp_path / "missing")).run()
    at.radio(key="source_train").set_value("live").run()
    no_exception(at)
    assert at.error, "a missing CIFAR folder is reported with the engine's message (the cost line reads the data)"
    assert not [b for b in at.button if b.key == "train"], "and nothing is offered to compute"
    assert "Traceback" not in at.error[0].value


@pytest.mark.parametrize("page", ["pages/loss_landscape.py", "pages/sal.py", "pages/ud.py"])
def test_analysis_pages_show_the_demo(page):
    at = open_page(page)
    no_exception(at)
    assert charts(at), f"{page} shows the shipped demo's figures"
    assert len(at.get("download_button")) >= len(charts(at)), "every figure (and table) is downloadable"


def test_landscape_page_every_demo_slice():
    at = open_page("pages/loss_landscape.py")
    for kind in ("pca", "random", "interp"):
        for dims in (2, 1):
            at.radio(key="ls_kind").set_value(kind).run()
            at.radio(key="ls_dims").set_value(dims).run()
            no_exception(at)
            assert charts(at), f"{kind} {dims}D"
    at.radio(key="ls_metric").set_value("accuracy").run()
    no_exception(at)
    assert charts(at)


def test_sal_and_ud_pages_show_the_demo_numbers():
    at = open_page("pages/sal.py")
    assert any(m.label.startswith("β") for m in at.metric)
    at.radio(key="sal_variant").set_value("accuracy").run()
    no_exception(at)
    at.switch_page("pages/ud.py").run()
    no_exception(at)
    labels = [m.label for m in at.metric]
    assert any(label.startswith("UD (") for label in labels) and "β" in labels
    assert "Reading UD on 8x8 digits" in texts(at)


def test_ud_page_live_tiny_run():
    at = open_page("pages/ud.py")
    at.selectbox(key="_w_model").set_value("mlp").run()  # 3 weight layers: SAL in seconds
    tiny(at, "ud", method="ops", epochs=1)
    assert not any(m.label.startswith("UD (") for m in at.metric)  # nothing computed before the button
    at.button(key="ud_run").click().run()
    no_exception(at)
    ud = next(m for m in at.metric if m.label == "UD (ops)")
    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views.study import ud_value
    from landscape.stages.ud import UDStage

    report = UDStage.of(engine.experiment_spec(AppSpec(model="mlp", method="ops", epochs=1))).load(engine.store())
    assert ud.value == ud_value(report)  # the engine's stored number, as the page formats it
    at.switch_page("pages/sal.py").run()  # the same session's live run is served on the SAL page
    no_exception(at)
    assert at.radio(key="source_sal").value == "live" and charts(at)


def test_concurrent_requests_compute_once_and_store_one_entry():
    """Two sessions asking for the same run at once both get it; the store holds one valid entry per stage."""
    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.store import Store, default_root

    spec = AppSpec(method="random", epochs=1, n_train=200)
    results, errors = {}, []

    def ask(name: str) -> None:
        try:
            results[name] = engine.training_result(spec, spec.method)
        except Exception as err:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(err)

    threads = [threading.Thread(target=ask, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=TIMEOUT)
    assert not errors and set(results) == {"a", "b"}
    np.testing.assert_array_equal(results["a"].history["test_loss"], results["b"].history["test_loss"])
    store = Store(default_root())
    for stage in ("poison", "train"):
        keys = store.keys(stage)
        assert len(keys) == 1 and store.load(stage, keys[0]) is not None


def test_sal_page_live_run_with_the_paper_preset():
    """The sidebar's SAL procedure reaches the engine: a live run with the authors' procedure (paper preset)."""
    from landscape.config import SALSpec

    at = open_page("pages/sal.py")
    at.selectbox(key="_w_model").set_value("mlp").run()
    at.radio(key="_w_sal").set_value("paper").run()
    tiny(at, "sal", method="ops", epochs=1)
    assert "paper preset" in texts(at)  # the cost line names the procedure it prices
    at.button(key="sal_run").click().run()
    no_exception(at)
    assert charts(at)
    from landscape.app.state import AppSpec
    from landscape.app.views.study import live_study

    study = live_study(AppSpec(model="mlp", method="ops", epochs=1, sal="paper"))
    assert all(trace.spec == SALSpec.preset("paper") for trace in study.sal.values())


def test_offline_mnist_subset_needs_no_folder_and_shows_its_own_budget():
    at = open_page("pages/train.py")
    at.selectbox(key="_w_dataset").set_value("mnist-5k").run()
    no_exception(at)
    assert not [t for t in at.text_input if t.key == "_w_data_root"], "mnist-5k ships with a package: no folder"
    at.selectbox(key="_w_dataset").set_value("mnist").run()
    assert [t for t in at.text_input if t.key == "_w_data_root"], "MNIST reads its IDX files from a folder"
