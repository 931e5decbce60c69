"""#12 acceptance 4, the app: a registered data set and model reach every app page with no other edit.

`tests/plugin.py` registers `rgb16` (generated 16x16 RGB images, four classes) and `twobranch` (a non-Sequential
two-branch residual net) through the registries only. In a fresh interpreter (so the registrations do not leak
into the other tests' registries) an AppTest picks them in the sidebar and opens every page of the `PAGES` table,
pressing each compute button the page offers, until the page shows its figures with nothing left to compute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 300  # seconds per script run (the 2-core CI box is shared)
# every button that starts a computation, on any page (a page shows one at a time)
COMPUTE = ("overview_run", "craft", "train", "surface", "sal_run", "sal_slice_run", "sal_channels_run", "ud_run",
           "curvature_run", "curvature_compute", "ct_run")
SIDEBAR = {"dataset": "rgb16", "model": "twobranch", "method": "ops", "epochs": 2}
EXPECTED_PRESSES = {"Overview": ["overview_run"], "Landscape": ["surface"],
                    "SAL": ["sal_slice_run", "sal_channels_run"], "Curvature": ["curvature_compute"],
                    "Cross-task": ["ct_run"]}
WEIGHT_LAYERS = ["stem.0.weight", "block.branch_a.0.weight", "block.branch_a.3.weight", "block.branch_b.0.weight",
                 "head.weight"]  # the five Conv2d/Linear layers of tests.fixtures.ResidualTwoBranchNet


def _check(at, where: str) -> None:
    assert not at.exception, f"{where}: {[e.value for e in at.exception]}"
    assert not at.error, f"{where}: {[e.value for e in at.error]}"


def _compute_buttons(at) -> list[str]:
    return [b.key for b in at.button if b.key in COMPUTE]


def visit_every_page() -> None:
    """Run in a fresh interpreter with `tests.plugin` imported: every page of the app on rgb16 + twobranch."""
    from streamlit.testing.v1 import AppTest

    from landscape.app import engine
    from landscape.app.pages import PAGES
    from landscape.app.state import AppSpec
    from landscape.app.views.study import live_study, ud_value

    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=TIMEOUT).run()
    _check(at, "app.py")
    at.selectbox(key="_w_dataset").set_value(SIDEBAR["dataset"]).run()
    at.selectbox(key="_w_model").set_value(SIDEBAR["model"]).run()
    at.selectbox(key="_w_method").set_value(SIDEBAR["method"]).run()
    at.number_input(key="_w_epochs").set_value(SIDEBAR["epochs"]).run()
    _check(at, "sidebar")
    spec = AppSpec(**SIDEBAR)
    pressed: dict[str, list[str]] = {}
    for page in PAGES:
        at.switch_page(page.file).run()
        _check(at, page.title)
        assert at.selectbox(key="_w_dataset").value == "rgb16" and at.selectbox(key="_w_model").value == "twobranch"
        if page.title == "Cross-task":  # one cheap poison and one epoch per task model
            at.multiselect(key="ct_methods").set_value(["ops"]).run()
            at.number_input(key="ct_epochs").set_value(1).run()
        for _ in range(4):  # a page may offer more computations once the first is done (SAL's slice and channels)
            todo = _compute_buttons(at)
            if not todo:
                break
            pressed.setdefault(page.title, []).append(todo[0])
            at.button(key=todo[0]).click().run()
            _check(at, f"{page.title} after {todo[0]}")
            at.run()  # the next script run finds the result stored
            _check(at, f"{page.title} after {todo[0]}, rerun")
        assert not _compute_buttons(at), f"{page.title} still offers {_compute_buttons(at)}"
        assert list(at.get("plotly_chart")), f"{page.title} draws no figure"
        if page.title == "UD":
            ud = next(m for m in at.metric if m.label == "UD (ops)")
            assert ud.value == ud_value(engine.ud_stage(spec).load(engine.store()))
        if page.title == "SAL":
            assert list(live_study(spec).sal["clean"].layers) == WEIGHT_LAYERS  # every layer of the non-Sequential net
        if page.title == "Poison":
            crafted = engine.poison_stage(spec).load(engine.store())
            row = at.dataframe[0].value.set_index("method").loc["ops"]
            assert crafted is not None and row["linf"] == crafted.meta["budget"]["linf"] and row["n_changed"] > 0
        if page.title == "Landscape":
            assert engine.surface_set(spec, _default_request()).surfaces  # stored for rgb16 + twobranch
    print("pressed:", json.dumps(pressed))


def _default_request():
    from landscape.app.views import surfaces

    return surfaces.surface_request(next(iter(surfaces.SURFACE_KINDS)), 2, 21)


def test_every_app_page_works_with_a_registered_data_set_and_model():
    code = "import tests.plugin\nfrom tests.test_app_extension import visit_every_page\nvisit_every_page()\n"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, env=env)
    assert done.returncode == 0, (done.stdout + done.stderr)[-4000:]
    pressed = json.loads(done.stdout.split("pressed:", 1)[1])
    # nothing of rgb16 + twobranch is stored beforehand: the first page computes the experiment (poison, both
    # runs, SAL, UD) and the pages with their own computation compute it
    assert pressed == EXPECTED_PRESSES, pressed
