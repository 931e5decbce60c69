"""AppTests of what a user meets between runs: a live run that Streamlit stopped is named on the next script run,
and the cost line prices what the engine will really do (poison ratio 0 crafts nothing)."""

from __future__ import annotations

import os

import pytest
from streamlit.runtime.scriptrunner import RerunData, get_script_run_ctx

from landscape.app import widgets
from landscape.store import Store
from tests.test_app import no_exception, open_page, tiny


def interrupting(monkeypatch, how: str) -> list[str]:
    """Make the first progress bar of a live run stop the script as Streamlit does (returns the stages drawn).

    "stop": the app's Stop button (a stop request); "switch": a switch to the default page, a rerun request
    (a changed widget reruns the same page the same way). Either is raised as an exception from the next `st`
    call, here the progress bar's.
    """
    draw, seen = widgets.StatusProgress.__call__, []

    def interrupt(self: widgets.StatusProgress, stage: str, done: int, total: int) -> None:
        if not seen:
            requests = get_script_run_ctx().script_requests
            requests.request_stop() if how == "stop" else requests.request_rerun(RerunData())
        seen.append(stage)
        draw(self, stage, done, total)

    monkeypatch.setattr(widgets.StatusProgress, "__call__", interrupt)
    return seen


def stopped_notes(at) -> list[str]:
    return [str(w.value) for w in at.warning if "was stopped before it finished" in str(w.value)]


@pytest.mark.parametrize("how", ["stop", "switch"])
def test_a_stopped_live_run_is_named_on_the_next_script_run_and_left_no_entry(monkeypatch, how):
    """Stopped midway (Streamlit's Stop, or a page switch), a run's status box just vanished on the next script run:
    that run now says the previous run was stopped before it finished, once, and the store holds nothing of it."""
    at = tiny(open_page("pages/train.py"), model="mlp")
    assert not stopped_notes(at)
    seen = interrupting(monkeypatch, how)
    at.button(key="train").click().run()
    no_exception(at)
    assert seen == ["train-clean"], seen
    if how == "stop":  # the next script run is the user's next action; a switch runs the other page at once
        assert not stopped_notes(at)
        at.run()
        no_exception(at)
        assert at.button(key="train") is not None, "the run is offered again"
    else:
        assert at.title[0].value.startswith("UE Landscape"), "the page switched to"
    notes = stopped_notes(at)
    assert len(notes) == 1 and "(Training)" in notes[0] and "Nothing half-computed was kept" in notes[0], notes
    assert not Store(os.environ["UE_LANDSCAPE_STORE"]).keys("train"), "the stopped training stored nothing"
    at.run()
    assert not stopped_notes(at), "said once"


def test_no_stopped_note_after_a_run_that_finished(monkeypatch):
    at = tiny(open_page("pages/train.py"), model="mlp")
    at.button(key="train").click().run()
    no_exception(at)
    at.run()
    assert not stopped_notes(at)
