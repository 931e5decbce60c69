"""AppTest for the Cross-task page: nothing runs before the button; table, curves, SAL heatmaps, similarity after.

(The page's default probe is in the shipped demo, so a fresh session opens on it: tests/test_app.py.)

The engine's heavy call is replaced by a small real result (digits subset, 2 epochs, one model-free poison)
computed once for the module, so the page renders real data without training 16 models.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from landscape import multitask
from landscape.config import DataSpec, SALSpec, TrainSpec
from landscape.stages import crosstask

APP = str(Path(__file__).resolve().parent.parent / "app.py")
PAGE = "pages/cross_task.py"
TIMEOUT = 300


@pytest.fixture(scope="module")
def small_result(tmp_path_factory):
    from landscape.store import Store

    spec = multitask.CrossTaskSpec.for_methods(
        ["random"], data=DataSpec(n_train=120, n_test=60), train=TrainSpec(epochs=2, optimizer="adam", lr=3e-3),
        sal=SALSpec(eval_size=48, rounds=1))
    return crosstask.run_cross_task(spec, store=Store(tmp_path_factory.mktemp("ct-app")))


def _open() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=TIMEOUT).run()
    assert not at.exception, [e.value for e in at.exception]
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_nothing_runs_before_the_button_then_everything_renders(monkeypatch, small_result):
    calls = []

    def fake_run(spec, *, store, device, progress):
        calls.append(spec)
        progress("cross-task", 1, 1)
        return small_result

    monkeypatch.setattr(crosstask, "run_cross_task", fake_run)
    at = _open()
    assert at.title[0].value == "Cross-task"
    at.number_input(key="ct_epochs").set_value(2).run()  # not the default probe, which the demo ships
    assert not at.get("plotly_chart") and not calls
    assert any("task models still to train" in i.value for i in at.info)
    at.button(key="ct_run").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(calls) == 1 and calls[0].methods == ("em", "ops", "ar") and calls[0].train.epochs == 2
    assert len(at.dataframe) == 1
    table = at.dataframe[0].value
    assert list(table["task"]) == list(small_result.spec.tasks) and {"clean", "poisoned", "drop", "ud"} <= set(table)
    assert len(at.get("plotly_chart")) == 4  # drops, curves, SAL heatmaps, similarity


def test_stored_result_is_shown_and_widgets_rerender(monkeypatch, small_result):
    monkeypatch.setattr(crosstask, "load_cross_task", lambda spec, store: small_result)
    at = _open()
    assert len(at.get("plotly_chart")) == 4
    assert not [b for b in at.button if b.key == "ct_run"]  # a stored result needs no button
    at.selectbox(key="ct_task").set_value("reconstruct").run()
    at.radio(key="ct_scope").set_value("encoder").run()
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.get("plotly_chart")) == 4
    monkeypatch.setattr(crosstask, "load_cross_task", lambda spec, store: None)
    at.toggle(key="ct_sal").set_value(False).run()  # another spec, not stored: back to the button
    assert not at.exception and at.button(key="ct_run") is not None and not at.get("plotly_chart")


def test_no_method_asks_for_one():
    at = _open()
    at.multiselect(key="ct_methods").set_value([]).run()
    assert not at.exception
    assert any("at least one" in i.value for i in at.info)
