"""AppTests of what a user meets between runs: a live run that Streamlit stopped is named on the next script run,
and the cost line prices what the engine will really do (the ratio slider never offers ratio 0, which poisons no
image)."""

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


def cost_line(at) -> str:
    lines = [str(i.value) for i in at.info if str(i.value).startswith("Cost:")]
    assert len(lines) == 1, [str(i.value) for i in at.info]
    return lines[0]


def test_the_poison_ratio_slider_never_offers_ratio_0():
    """Ratio 0 poisons no image (the method's run would be the clean run again) and is refused by `PoisonSpec`:
    the slider offered it (and crafted an empty poison); its smallest value now poisons images and is priced."""
    from landscape.app.state import RATIO_STEP

    at = open_page("pages/poison.py")
    slider = at.slider(key="_w_ratio")
    assert slider.min == RATIO_STEP > 0 and slider.step == RATIO_STEP, (slider.min, slider.step)
    slider.set_value(slider.min).run()
    no_exception(at)
    assert "image-gradient evaluations" in cost_line(at), cost_line(at)


def test_a_partial_poison_ratio_prices_crafting_every_image():
    """The method crafts every training image and keeps the poison on the ratio's share (`PoisonMethod.craft`),
    as the CLI's `craft` prices it: the cost line priced only the share (half the work at ratio 0.5)."""
    from landscape.config import DataSpec, PoisonSpec
    from landscape.poisons import build
    from landscape.stages.base import get_splits

    train = get_splits(DataSpec()).train
    whole = build(PoisonSpec(method="em", ratio=0.5), dataset=DataSpec()).estimate_cost(len(train), train.image_shape)
    at = open_page("pages/poison.py")
    at.slider(key="_w_ratio").set_value(0.5).run()
    no_exception(at)
    assert f"at most {whole['gradient_evals']:,} image-gradient evaluations" in cost_line(at), cost_line(at)
