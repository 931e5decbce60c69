"""App latency with the shipped demo: server start -> first rendered chart, and every page switch (Playwright).

Starts `streamlit run app.py` (headless, usage statistics off, an empty temporary store, so only the shipped
demo can be shown), opens it in the system Chromium, and measures with the wall clock of this process:

* `first_chart_s`: from launching the server process to the first plotly chart drawn on the Overview page
  (includes Python start-up, imports and the first script run); target <= 5 s;
* `switch_<page>_s`: from clicking the page in the sidebar navigation to its first chart drawn and the
  script run finished; target <= 2 s each.

Prints one JSON line per measurement and a one-line summary; `--json-out` also writes them to a file, and
`--screenshots DIR` saves the Landscape and SAL pages as PNGs (the README images in assets/).

    .venv/bin/python bench/app_latency.py [--repeats 3] [--screenshots assets]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from landscape.app.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Page name -> its sidebar navigation link (href suffix): every page of the table, then back to the landing page.
SWITCHES = {**{p.url_path: p.url_path for p in PAGES if not p.default}, "overview": ""}
TARGET_FIRST_CHART_S = 5.0
TARGET_SWITCH_S = 2.0
CHART_DRAWN = '[data-testid="stMain"] .stPlotlyChart .main-svg'


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


IDLE_JS = """() => {
  const app = document.querySelector('[data-testid="stApp"]');
  return app && app.dataset.testScriptState === 'notRunning' && !document.querySelector('[data-stale="true"]');
}"""


def wait_run_finished(page, timeout_ms: int = 60_000) -> None:
    """The script run is over (the app reports `notRunning`) and no element is stale."""
    page.wait_for_function(IDLE_JS, timeout=timeout_ms, polling=50)


def measure(repeats: int, screenshots: Path | None, log_dir: Path) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows: list[dict] = []
    for rep in range(repeats):
        port = free_port()
        store = tempfile.mkdtemp(prefix="ue-latency-store-")
        env = {**os.environ, "UE_LANDSCAPE_STORE": store}
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
               str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none"]
        url = f"http://127.0.0.1:{port}"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
            page = browser.new_page(viewport={"width": 1500, "height": 1000})
            with open(log_dir / f"streamlit-latency-{rep}.log", "w") as log:
                started = time.perf_counter()
                proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    while True:  # the browser can only connect once the server listens
                        with contextlib.suppress(OSError):
                            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                                break
                        if proc.poll() is not None:
                            raise RuntimeError(f"streamlit exited with {proc.returncode}")
                        time.sleep(0.05)
                    healthy = time.perf_counter() - started
                    page.goto(url)
                    page.wait_for_selector(CHART_DRAWN, timeout=60_000)
                    first = time.perf_counter() - started
                    rows.append({"measure": "first_chart_s", "seconds": first, "server_healthy_s": healthy,
                                 "repeat": rep})
                    wait_run_finished(page)
                    for name, href in SWITCHES.items():
                        link = page.locator(f'[data-testid="stSidebarNav"] a[href="{url}/{href}"]')
                        t0 = time.perf_counter()
                        link.click()
                        page.wait_for_url(f"{url}/{href}", timeout=30_000)
                        page.wait_for_selector(CHART_DRAWN, timeout=60_000)
                        wait_run_finished(page)
                        rows.append({"measure": f"switch_{name}_s", "seconds": time.perf_counter() - t0,
                                     "repeat": rep})
                        if page.locator('[data-testid="stException"]').count():
                            raise RuntimeError(f"page {name} shows an exception")
                        if screenshots is not None and rep == 0 and name in ("landscape", "sal"):
                            page.set_viewport_size({"width": 1500, "height": 1900})  # the main figures in view
                            page.wait_for_timeout(1500)  # let plotly redraw at the new size
                            page.screenshot(path=str(screenshots / f"screenshot-{name}.png"))
                            page.set_viewport_size({"width": 1500, "height": 1000})
                finally:
                    browser.close()
                    proc.terminate()
                    try:
                        proc.wait(timeout=20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="server starts (each visits every page once)")
    parser.add_argument("--screenshots", type=Path, default=None, help="folder for the Landscape/SAL PNGs")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON lines here")
    a = parser.parse_args()
    if not Path(CHROMIUM).exists():
        print(f"no system Chromium at {CHROMIUM}; install it (apt-get install chromium)", file=sys.stderr)
        return 2
    if a.screenshots is not None:
        a.screenshots.mkdir(parents=True, exist_ok=True)
    log_dir = ROOT / "test-artifacts"
    log_dir.mkdir(exist_ok=True)
    rows = measure(a.repeats, a.screenshots, log_dir)
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_avg_1m": os.getloadavg()[0]}
    lines = [json.dumps({"bench": "app_latency", **r, **machine}) for r in rows]
    print("\n".join(lines))
    if a.json_out is not None:
        a.json_out.write_text("\n".join(lines) + "\n")
    first = [r["seconds"] for r in rows if r["measure"] == "first_chart_s"]
    switches = [r["seconds"] for r in rows if r["measure"].startswith("switch_")]
    worst = max(switches) if switches else float("nan")
    ok = max(first) <= TARGET_FIRST_CHART_S and worst <= TARGET_SWITCH_S
    print(f"app_latency: first chart median {statistics.median(first):.2f} s (max {max(first):.2f}, target "
          f"<= {TARGET_FIRST_CHART_S:g}); page switch median {statistics.median(switches):.2f} s (max {worst:.2f}, "
          f"target <= {TARGET_SWITCH_S:g}); {len(first)} starts, load avg {machine['load_avg_1m']:.1f} on "
          f"{machine['cpus']} CPUs; {'within targets' if ok else 'OVER target'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
