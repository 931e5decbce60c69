"""Real-browser checks from a user's walk of the app: a page opened by its URL on a fresh server, and a live run
stopped midway with Streamlit's Stop button, then run again.

They use tests/test_browser.py's server (`python -m landscape.app.serve`, as `make app`, and for the first also
plain `streamlit run app.py`, with the project's .streamlit/config.toml) and the system Chromium; without it they
are skipped (a failure under CI).
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from landscape.app.pages import PAGES
from tests.test_browser import (
    COMPUTE_TIMEOUT_MS,
    PAGE_TIMEOUT_MS,
    ROOT,
    assert_no_exception,
    chromium_page,
    set_number,
    set_selectbox,
    stored_ud,
    wait_idle,
)

pytestmark = pytest.mark.browser

STOP = '[data-testid="stStatusWidget"] button:has-text("Stop")'


@pytest.mark.parametrize("launcher", [False, True], ids=["streamlit-run", "launcher"])
def test_a_page_opened_by_its_url_on_a_fresh_server_shows_no_page_not_found(tmp_path, launcher):
    # The first request of a fresh server, for a page that had a URL other than its file's name (Landscape: it was
    # at /landscape, its file is pages/loss_landscape.py): `streamlit run app.py` showed the dialog then.
    p = next(p for p in PAGES if p.title == "Landscape")
    with chromium_page(tmp_path / "store", f"streamlit-by-url-{launcher}.log", launcher=launcher) as (url, page):
        page.goto(f"{url}/{p.url_path}")
        wait_idle(page)
        page.wait_for_selector(".stPlotlyChart", timeout=PAGE_TIMEOUT_MS)
        assert p.title.lower() in page.locator("h1").first.inner_text().lower(), f"{p.url_path} opened another page"
        dialogs = page.locator('[role="dialog"]')
        assert dialogs.count() == 0, f"{p.url_path} opens with a dialog: {dialogs.first.inner_text()[:300]}"
        assert page.locator('[data-testid="stSidebarNav"] a').count() == len(PAGES)  # app.py's navigation


def store_report(store) -> str:
    done = subprocess.run([sys.executable, "-m", "landscape", "store", "--store", str(store)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_a_live_run_stopped_midway_leaves_nothing_half_written_and_runs_again(tmp_path):
    store = tmp_path / "store"
    with chromium_page(store, "streamlit-stop.log") as (url, page):
        page.goto(url)
        wait_idle(page)
        set_selectbox(page, "_w_model", "mlp")
        set_selectbox(page, "_w_method", "ops")
        set_number(page, "_w_epochs", 3)
        page.locator(".st-key-overview_run button").click()
        stop = page.locator(STOP)
        stop.wait_for(timeout=30_000)  # the running indicator's Stop button: the one way to cancel a run
        stop.click()
        wait_idle(page)
        assert_no_exception(page, "overview (stopped)")
        report = store_report(store)
        assert "would remove: nothing" in report, report
        page.locator(".st-key-overview_run button").click()  # the same run again, to the end
        # the script run after the stop says so above the page (widgets.stopped_notice), while the run goes on
        page.get_by_text("was stopped before it finished").first.wait_for(timeout=PAGE_TIMEOUT_MS)
        page.wait_for_selector('[data-testid="stMetric"]:has-text("UD")', timeout=COMPUTE_TIMEOUT_MS)
        wait_idle(page, COMPUTE_TIMEOUT_MS)
        assert_no_exception(page, "overview (run again)")
        value = page.locator('[data-testid="stMetric"]:has-text("UD") [data-testid="stMetricValue"]').first
        assert value.inner_text().strip() == stored_ud(store, "ops", epochs=3)
        assert "would remove: nothing" in store_report(store)
