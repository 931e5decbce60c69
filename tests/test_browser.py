"""One real-browser test: `streamlit run app.py` driven by the system Chromium through Playwright.

It visits every page (each opens on a chart of the shipped demo, in a fresh session with an empty store), runs
a tiny computation through the UI (digits, the mlp, a model-free poison, two epochs, SAL and UD) until a UD value
appears, asserts that no page shows an exception, and saves a screenshot of every page to test-artifacts/. It
never downloads a browser: without /usr/bin/chromium it is skipped (with the reason), except under CI (env CI
set), where that is a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from landscape.app.pages import PAGES

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
PAGE_TIMEOUT_MS = 120_000
COMPUTE_TIMEOUT_MS = 600_000


def _require_chromium() -> None:
    if Path(CHROMIUM).exists():
        return
    reason = f"system Chromium not found at {CHROMIUM} (install it with: apt-get install chromium)"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; CI must run the browser test")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def streamlit_server(store: Path, log: Path, *, launcher: bool = True) -> Iterator[str]:
    """The app as `make app` starts it (`landscape.app.serve`: `streamlit run app.py` with the engine imported while
    the browser loads; with `launcher=False`, plain `streamlit run app.py`) on a free localhost port (headless, no
    usage statistics); yields its URL."""
    port = free_port()
    env = {**os.environ, "UE_LANDSCAPE_STORE": str(store)}
    start = ["landscape.app.serve"] if launcher else ["streamlit", "run", "app.py"]
    cmd = [sys.executable, "-m", *start, "--server.headless", "true", "--server.port", str(port),
           "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 120
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
                with contextlib.suppress(OSError):
                    if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError("streamlit did not become healthy within 120 s")
                time.sleep(0.3)
            yield url
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  const idle = app && app.dataset.testScriptState === 'notRunning'
    && document.querySelector('[data-testid="stMain"] h1')
    && !document.querySelector('[data-testid="stSkeleton"]')
    && !document.querySelector('[data-stale="true"]');
  if (!idle) { window.__idleSince = undefined; return false; }
  window.__idleSince = window.__idleSince || Date.now();
  return Date.now() - window.__idleSince > 500;
}"""


def wait_idle(page, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Wait until the script run finished: not running, a title shown, nothing stale or a skeleton, for 0.5 s."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout_ms)
    page.wait_for_timeout(200)  # let a triggered rerun start before checking that it finished
    page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=100)


def assert_no_exception(page, name: str) -> None:
    exceptions = page.locator('[data-testid="stException"]')
    assert exceptions.count() == 0, f"{name} shows an exception: {exceptions.first.inner_text()[:500]}"


def set_selectbox(page, key: str, value: str) -> None:
    box = page.locator(f".st-key-{key}")
    box.click()
    page.get_by_role("option", name=value, exact=True).click()
    wait_idle(page)


def set_number(page, key: str, value: int) -> None:
    field = page.locator(f".st-key-{key} input")
    field.fill(str(value))
    field.press("Enter")
    wait_idle(page)


def stored_ud(store: Path, method: str, *, epochs: int) -> str:
    """UD of the tiny run as the UD page formats it, read from the store the server wrote (the engine's number)."""
    from landscape.app import engine
    from landscape.app.state import AppSpec
    from landscape.app.views.study import ud_value
    from landscape.stages.ud import UDStage
    from landscape.store import Store

    stage = UDStage.of(engine.experiment_spec(AppSpec(model="mlp", method=method, epochs=epochs)))
    report = stage.load(Store(store))
    assert report is not None, "the live run stored its UD"
    return ud_value(report)


@contextlib.contextmanager
def chromium_page(store: Path, log_name: str, *, launcher: bool = True) -> Iterator[tuple[str, Any]]:
    """A Streamlit server on `store` (`streamlit_server`) and a Chromium page (1400x1000) driven by Playwright:
    yields (URL, page)."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with streamlit_server(store, ARTIFACTS / log_name, launcher=launcher) as url, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield url, browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def test_every_page_in_chromium_and_a_tiny_live_ud(tmp_path):
    with chromium_page(tmp_path / "store", "streamlit.log") as (url, page):
        for p in PAGES:
            page.goto(f"{url}/{p.url_path}")
            wait_idle(page)
            # a fresh session opens every page on the shipped demo, nothing to compute
            page.wait_for_selector(".stPlotlyChart", timeout=PAGE_TIMEOUT_MS)
            assert page.get_by_text("shipped demo snapshot").count() > 0, p.title
            assert_no_exception(page, p.title)
            page.screenshot(path=str(ARTIFACTS / f"page-{p.url_path or 'overview'}.png"), full_page=True)
        # A tiny computation through the UI, in one session: digits, a model-free poison, 2 epochs.
        page.goto(f"{url}/ud")
        wait_idle(page)
        set_selectbox(page, "_w_model", "mlp")  # 3 weight layers: SAL in seconds on a CPU
        set_selectbox(page, "_w_method", "ops")
        set_number(page, "_w_epochs", 2)
        page.locator(".st-key-ud_run button").click()
        page.wait_for_selector('[data-testid="stMetric"]:has-text("UD")', timeout=COMPUTE_TIMEOUT_MS)
        wait_idle(page, COMPUTE_TIMEOUT_MS)
        assert_no_exception(page, "ud (live)")
        value = page.locator('[data-testid="stMetric"]:has-text("UD") [data-testid="stMetricValue"]').first
        assert value.inner_text().strip() == stored_ud(tmp_path / "store", "ops", epochs=2)
        page.screenshot(path=str(ARTIFACTS / "page-ud-live.png"), full_page=True)
        # the live result is now served on the other pages of the same session
        page.locator('[data-testid="stSidebarNav"] a[href$="/sal"]').click()
        wait_idle(page)
        assert_no_exception(page, "sal (after the live run)")
