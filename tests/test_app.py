"""AppTests: start from app.py, open each page of the PAGES table, no exception, the page's key element present.

Every test starts with an empty user store (conftest) over the shipped demo snapshot, so a fresh session
opens on the demo with nothing to compute; the few computations run on tiny specs (model-free poisons, one
or two epochs, a training subset). Streamlit caches are cleared around every test (streamlit/streamlit#9139:
caches persist across AppTest instances in one process) by the autouse fixture `_fresh_streamlit_caches`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from landscape.app.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")
TIMEOUT = 300  # seconds per script run; the 2-core CI box can be slow while others compute
COMPUTE_BUTTONS = ("overview_run", "craft", "train", "surface", "sal_run", "ud_run", "ct_run", "curvature_compute")
DEMO_EXTRAS = ("sal_slice_run",)  # the SAL cell panel's slice: the demo holds it, a live run computes it on request


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


def buttons(at: AppTest, keys: tuple[str, ...] = COMPUTE_BUTTONS) -> list[str]:
    return [b.key for b in at.button if b.key in keys]


def no_exception(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def tiny(at: AppTest, *, method: str = "random", epochs: int = 1, model: str | None = None) -> AppTest:
    """Set the sidebar to a tiny computation (not in the demo snapshot)."""
    if model is not None:
        at.selectbox(key="_w_model").set_value(model).run()
    at.selectbox(key="_w_method").set_value(method).run()
    at.number_input(key="_w_epochs").set_value(epochs).run()
    return at


def stored_ud(**sidebar) -> str:
    """UD of the sidebar spec as the pages format it, read through the app's store (snapshot, then user's)."""
    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views.study import ud_value

    report = engine.ud_stage(AppSpec(**sidebar)).load(engine.store())
    assert report is not None, f"UD of {sidebar} is stored"
    return ud_value(report)


def test_every_page_url_is_the_one_streamlits_legacy_pages_mode_gives_its_file():
    # Until the first st.navigation call a fresh server names pages/ files its own way; a page whose st.Page URL
    # differed (Landscape at /landscape, its file pages/loss_landscape.py) opened by its URL got "Page not found".
    # And a page's script runs with pages/ first on sys.path: a file named as a module (pages/landscape.py) would
    # shadow it for every page.
    import importlib.util

    from streamlit.source_util import page_icon_and_name

    for page in PAGES:
        if not page.default:
            assert page.url_path == page_icon_and_name(ROOT / page.file)[1], page
        stem = Path(page.file).stem
        assert importlib.util.find_spec(stem) is None, f"{page.file} shadows the module {stem!r}"
    assert [p.url_path for p in PAGES].count("") == 1 and len({p.url_path for p in PAGES}) == len(PAGES)


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.title)
def test_every_page_opens_on_the_demo_in_a_fresh_session(page):
    """A fresh session with an empty store: every page of the table opens with its title and shows the shipped
    demo's figures, with no compute button, no exception and no error."""
    at = open_page(page.file)
    no_exception(at)
    assert not at.error, [e.value for e in at.error]
    heading = "UE Landscape" if page.default else page.title  # the default page opens on the app's name
    assert at.title and heading.lower() in at.title[0].value.lower()
    assert charts(at), f"{page.title} shows the demo"
    offered = buttons(at, COMPUTE_BUTTONS + DEMO_EXTRAS)
    assert not offered, f"{page.title} offers to compute what the demo holds: {offered}"
    assert "shipped demo snapshot" in texts(at), "and says where the result comes from"
    assert len(at.get("download_button")) >= len(charts(at)), "every figure (and table) is downloadable"


def test_the_overview_points_from_the_digits_ud_to_why_it_need_not_follow_accuracy():
    at = open_page()  # the demo: digits, where EM's UD is near 1 although its accuracy drops
    assert "UD need not follow the accuracy drop: the UD page says why" in texts(at)


def test_the_app_defaults_are_the_demo_requests():
    from landscape import demo
    from landscape.app.state import AppSpec
    from landscape.config import SALSpec

    d = AppSpec()
    assert (d.data(), d.model_spec(), d.train(), d.poison()) == (demo.DEMO_DATA, demo.DEMO_MODEL, demo.DEMO_TRAIN,
                                                                 demo.DEMO_POISON)
    assert SALSpec.preset(d.sal) == demo.DEMO_SAL
    at = open_page("pages/loss_landscape.py")
    assert at.select_slider(key="ls_res").value == demo.DEMO_RESOLUTION


def test_overview_runs_the_sidebar_experiment():
    at = open_page("pages/overview.py")
    tiny(at, method="ops", model="mlp")
    assert at.button(key="overview_run") is not None and not charts(at)  # nothing computed before the button
    at.button(key="overview_run").click().run()
    no_exception(at)
    assert charts(at) and not buttons(at)  # the run's cost line and button are cleared once it is done
    assert not any(str(i.value).startswith("Cost:") for i in at.info), [i.value for i in at.info]
    at.run()  # the next script run finds the stored result: no button
    no_exception(at)
    assert charts(at) and not buttons(at)
    ud = next(m for m in at.metric if m.label == "UD (ops)")
    assert ud.value == stored_ud(model="mlp", method="ops", epochs=1)


def test_poison_page_offers_the_poisoned_training_set_as_an_8_bit_npz_built_on_click(monkeypatch):
    import io

    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views import poison
    from landscape.stages.base import get_splits

    built = []
    release_bytes = poison.release_bytes
    monkeypatch.setattr(poison, "release_bytes", lambda spec: built.append(spec) or release_bytes(spec))
    at = open_page("pages/poison.py")  # the demo: em on digits
    no_exception(at)
    labels = [b.label for b in at.get("download_button")]
    assert any(label.startswith("Download the poisoned training set (.npz, 8-bit") for label in labels), labels
    assert not built, "the file is built only when the button is pressed"
    spec = AppSpec()
    with np.load(io.BytesIO(release_bytes(spec)), allow_pickle=False) as arrays:
        train = get_splits(spec.data()).train
        crafted = engine.poison_stage(spec).load(engine.store())
        assert arrays["x"].dtype == np.uint8
        np.testing.assert_array_equal(arrays["x"], (crafted.apply(train).x * 255).round().numpy().astype(np.uint8))
        np.testing.assert_array_equal(arrays["y"], train.y.numpy())


def test_poison_page_crafts_and_shows_grid_and_stored_budget():
    from landscape.app import engine
    from landscape.app.state import AppSpec

    at = open_page("pages/poison.py")
    tiny(at)  # random: the demo holds em, ops and ar (the cross-task probe's)
    assert at.button(key="craft") is not None and not charts(at)  # nothing computed before the button
    cost = [i.value for i in at.info if "crafting" in i.value]  # a model-free method: no "about 0 ... gradient"
    assert cost and "model-free" in cost[0] and "image-gradient" not in cost[0], cost
    at.button(key="craft").click().run()
    no_exception(at)
    assert len(charts(at)) == 2  # image grid + budget figure
    table = at.dataframe[0].value
    assert set(table["method"]) == {"em", "random"}  # the demo's em (seen first) and the crafted one
    crafted = engine.poison_stage(AppSpec(method="random", epochs=1)).load(engine.store())
    assert table.set_index("method").loc["random", "linf"] == crafted.meta["budget"]["linf"]
    # the spec survives a page switch and back, and the result is then served without a button
    at.switch_page("pages/train.py").run()
    at.switch_page("pages/poison.py").run()
    no_exception(at)
    assert at.selectbox(key="_w_method").value == "random"
    assert len(charts(at)) == 2 and not buttons(at)


def test_train_page_trains_clean_and_poisoned():
    at = open_page("pages/train.py")
    assert [m.label for m in at.metric] == ["clean: clean test accuracy", "em: clean test accuracy"]  # the demo
    tiny(at, method="random", epochs=2)
    at.button(key="train").click().run()
    no_exception(at)
    assert charts(at) and [m.label for m in at.metric] == ["clean: clean test accuracy", "random: clean test accuracy"]
    assert all(m.value.endswith("%") for m in at.metric)


def test_engine_error_becomes_st_error_not_exception(tmp_path):
    at = open_page("pages/train.py")
    at.selectbox(key="_w_dataset").set_value("cifar10").run()
    at.text_input(key="_w_data_root").set_value(str(tmp_path / "missing")).run()
    no_exception(at)
    assert at.error, "a missing CIFAR folder is reported with the engine's message (the cost line reads the data)"
    assert str(tmp_path / "missing") in at.error[0].value and "Traceback" not in at.error[0].value
    assert not buttons(at), "and nothing is offered to compute"


@pytest.mark.parametrize("dataset", ["cifar10", "mnist"])
def test_a_data_set_without_its_folder_says_where_to_type_it(dataset):
    """Picked with the Data folder still empty: the message points at the sidebar's field, in the app's words."""
    at = open_page("pages/train.py")
    at.selectbox(key="_w_dataset").set_value(dataset).run()
    no_exception(at)
    message = at.error[0].value
    assert "Data folder" in message and "DataSpec.root is None" not in message, message


def test_landscape_page_every_demo_slice():
    at = open_page("pages/loss_landscape.py")
    for kind in ("pca", "random", "interp"):
        for dims in (2, 1):
            at.radio(key="ls_kind").set_value(kind).run()
            at.radio(key="ls_dims").set_value(dims).run()
            no_exception(at)
            assert charts(at) and not buttons(at), f"{kind} {dims}D is in the demo"
    at.radio(key="ls_metric").set_value("accuracy").run()
    no_exception(at)
    assert charts(at)
    at.select_slider(key="ls_res").set_value(11).run()  # another grid: not stored, so its cost and button
    assert buttons(at) == ["surface"] and "grid(s) of" in texts(at)


def test_sal_and_ud_pages_show_the_stored_demo_numbers():
    at = open_page("pages/sal.py")
    assert any(m.label.startswith("β") for m in at.metric)
    at.radio(key="sal_variant").set_value("accuracy").run()
    no_exception(at)
    at.switch_page("pages/ud.py").run()
    no_exception(at)
    ud = next(m for m in at.metric if m.label == "UD (em)")
    assert ud.value == stored_ud()
    caveat = next(t for t in texts(at).split("\n") if "Reading UD on 8x8 digits" in t)
    from landscape.seeds import study_separating

    shipped = study_separating("digits")
    assert shipped, "the shipped regime study ran digits settings"
    for block, methods in shipped.items():  # every digits setting of the study, with the UEs that separate there
        assert f"{block}: {', '.join(methods) or 'none'}" in caveat, caveat


def test_the_digits_caveat_quotes_this_runs_learnable_epochs_from_its_ud():
    """The caveat's explanation is the run's own numbers: the epochs with layers above β, from the stored UD."""
    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views.study import epochs_text

    at = open_page("pages/ud.py")
    no_exception(at)
    caveat = next(t for t in texts(at).split("\n") if "Reading UD on 8x8 digits" in t)
    r = engine.ud_stage(AppSpec()).load(engine.store())
    clean, poisoned = (epochs_text(e[c > 0]) for e, c in ((r.epochs_clean, r.counts_clean),
                                                           (r.epochs_poisoned, r.counts_poisoned)))
    assert f"layers above β at epochs {clean} of {len(r.counts_clean)} (clean) and {poisoned} (em)" in caveat, caveat
    assert "near-zero" not in caveat and "not reproduced" in caveat


def test_cross_task_page_says_whether_the_papers_finding_holds_for_the_probe_shown():
    from landscape import demo, multitask
    from landscape.app import engine
    from landscape.stages import crosstask

    at = open_page("pages/cross_task.py")
    no_exception(at)
    ct = demo.cross_task()
    rows = crosstask.load_cross_task(ct, engine.store()).table()
    holds = [m for m in ct.methods if multitask.finding_holds(rows, m, ct.tasks)]
    fails = [m for m in ct.methods if m not in holds]
    notes = next(t for t in texts(at).split("\n") if "The paper's finding" in t)
    assert all(line in notes for line in multitask.verdict(rows, ct.methods, ct.tasks)), notes
    assert (f"does not hold here for {', '.join(fails)}" in notes) == bool(fails), notes
    assert (f"holds here for {', '.join(holds)}" in notes) == bool(holds), notes


def test_ud_page_shows_each_shipped_benchmark_once():
    """A result shipped as CSV, JSON and Markdown is one report and one table, not the same table twice."""
    at = open_page("pages/ud.py")
    no_exception(at)
    tables = [(d.value.shape, tuple(sorted(d.value.columns))) for d in at.dataframe]  # the same rows, any format
    assert len(set(tables)) == len(tables), f"the same table twice on the UD page: {tables}"
    from landscape.app.views.bench import benchmark_results

    results = benchmark_results()
    assert {"ud_digits_cnn", "regime"} <= set(results), results
    heads = [m.value for m in at.markdown if m.value.startswith("**")]
    assert all(sum(h.startswith(f"**{stem}**") for h in heads) == 1 for stem in results), heads


def test_ud_page_live_tiny_run():
    at = open_page("pages/ud.py")
    tiny(at, method="ops", model="mlp")  # 3 weight layers: SAL in seconds
    assert not any(m.label.startswith("UD (") for m in at.metric)  # nothing computed before the button
    at.button(key="ud_run").click().run()
    no_exception(at)
    ud = next(m for m in at.metric if m.label == "UD (ops)")
    assert ud.value == stored_ud(model="mlp", method="ops", epochs=1)  # the engine's stored number
    at.switch_page("pages/sal.py").run()  # the same run is served on the SAL page
    no_exception(at)
    assert charts(at) and not buttons(at)


def test_a_run_stored_by_the_cli_opens_in_a_fresh_session_without_a_button():
    """#12 acceptance 1: the CLI fills the store; a new app session over it shows the run, nothing to compute, with
    the poison's budget figures as the engine stored them."""
    from landscape.app import engine
    from landscape.app.state import AppSpec

    cli = [sys.executable, "-m", "landscape", "run", "--model", "mlp", "--method", "random", "--epochs", "1", "--json",
           "--store", os.environ["UE_LANDSCAPE_STORE"]]
    done = subprocess.run(cli, capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    at = open_page()
    tiny(at, model="mlp")  # random: a poison the demo does not hold
    for page in PAGES:
        if page.title in ("Landscape", "Curvature", "Cross-task"):  # the CLI run computes no surface or curvature,
            continue  # and the Cross-task page does not depend on the sidebar's model and method (the demo's probe)
        at.switch_page(page.file).run()
        no_exception(at)
        assert charts(at) and not buttons(at), f"{page.title} shows the stored run"
        assert "your store" in texts(at)
        if page.title == "UD":
            ud = next(m for m in at.metric if m.label == "UD (random)")
            assert ud.value == (f"{summary['ud']:.3f}" if summary["ud_defined"] else "undefined")
        if page.title == "Poison":
            stored = engine.poison_stage(AppSpec(model="mlp", method="random", epochs=1)).load(engine.store())
            row = at.dataframe[0].value.set_index("method").loc["random"]
            budget = stored.meta["budget"]  # every figure of the table is the one the engine stored when crafting
            for column, key in (("linf", "linf"), ("l2_mean", "l2_mean"), ("l2_max", "l2_max"),
                                ("l0_mean", "l0_mean"), ("n_changed", "n_changed")):
                assert row[column] == budget[key], column
            assert budget["n_changed"] > 0 and budget["l0_mean"] > 0


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
    store = Store(default_root())  # the user's store alone: what the app wrote
    for stage in ("poison", "train"):
        keys = store.keys(stage)
        assert len(keys) == 1 and store.load(stage, keys[0]) is not None


def test_sal_page_live_run_with_the_paper_preset():
    """The sidebar's SAL procedure reaches the engine: a live run with the authors' procedure (paper preset)."""
    from landscape.app.state import AppSpec
    from landscape.app.views.study import live_study
    from landscape.config import SALSpec

    at = open_page("pages/sal.py")
    at.radio(key="_w_sal").set_value("paper").run()
    tiny(at, method="ops", model="mlp")
    assert "paper preset" in texts(at)  # the cost line names the procedure it prices
    at.button(key="sal_run").click().run()
    no_exception(at)
    assert charts(at)
    study = live_study(AppSpec(model="mlp", method="ops", epochs=1, sal="paper"))
    assert all(trace.spec == SALSpec.preset("paper") for trace in study.sal.values())


@pytest.mark.parametrize("page", ["pages/overview.py", "pages/train.py", "pages/sal.py", "pages/loss_landscape.py"])
def test_cost_lines_price_only_the_runs_not_stored(page):
    """Another poison on the demo's setting: the clean run (and its SAL) are in the demo snapshot, so the cost line
    prices one training run (and one run's SAL), not two."""
    from landscape.app import cost, engine
    from landscape.app.state import AppSpec

    at = open_page(page)
    at.selectbox(key="_w_method").set_value("ops").run()
    no_exception(at)
    shown = "\n".join(str(e.value) for e in at.info)
    assert "1 x 10 epochs of `cnn`" in shown and "2 x 10 epochs" not in shown, shown
    spec = AppSpec(method="ops")
    assert engine.runs_to_train(spec) == 1 and cost.sal_runs_to_measure(spec) == 1
    if page in ("pages/overview.py", "pages/sal.py"):
        assert cost.sal_estimate(spec, 1) in shown and cost.sal_estimate(spec, 2) not in shown, shown


def test_offline_mnist_subset_needs_no_folder_and_shows_its_own_budget():
    at = open_page("pages/train.py")
    at.selectbox(key="_w_dataset").set_value("mnist-5k").run()
    no_exception(at)
    assert not [t for t in at.text_input if t.key == "_w_data_root"], "mnist-5k ships with a package: no folder"
    at.selectbox(key="_w_dataset").set_value("mnist").run()
    assert [t for t in at.text_input if t.key == "_w_data_root"], "MNIST reads its IDX files from a folder"


def test_a_custom_budget_names_its_unit_and_one_the_images_cannot_hold_is_refused_before_crafting():
    """OPS's L0 budget counts pixels (not the [0, 1] pixel scale); 200 pixels on 8x8 digits is refused at once."""
    at = open_page("pages/poison.py")
    at.selectbox(key="_w_method").set_value("ops").run()
    at.toggle(key="_w_custom_eps").set_value(True).run()
    (field,) = [n for n in at.sidebar.number_input if n.key.startswith("_w_eps")]
    assert field.label == "Budget (L0, pixels per image)", field.label
    field.set_value(200.0).run()
    no_exception(at)
    assert any("only 64" in e.value for e in at.error), [e.value for e in at.error]
    assert "craft" not in buttons(at)


@pytest.mark.parametrize("method", ["random", "hypo", "em"])
def test_overview_names_the_experiment_in_plain_words(method):
    """The sentence reads for every method (it used to say "an `random`-poisoned")."""
    at = open_page()
    at.selectbox(key="_w_method").set_value(method).run()
    assert f"A clean `cnn` and one trained on `{method}`-poisoned images, on digits, 10 epochs" in texts(at)
