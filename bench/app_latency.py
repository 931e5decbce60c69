"""App latency with the shipped demo: server start -> first rendered chart, and every page switch (Playwright).

Starts `streamlit run app.py` (headless, usage statistics off, an empty temporary store, so only the shipped
demo can be shown), opens it in the system Chromium, and measures with the wall clock of this process:

* `first_chart_s`: from launching the server process to the first plotly chart drawn on the Overview page
  (includes Python start-up, imports and the first script run); target <= 2 s, and <= 2.5x `import_streamlit_s`;
* `switch_<page>_s`: from clicking the page in the sidebar navigation to its first chart drawn and the
  script run finished; target median <= 0.3 s, max <= 1 s;
* `import_streamlit_s`: `python -c "import streamlit"` as a subprocess, timed `IMPORT_RUNS` times per repeat (the
  median is reported): the machine's speed, so the first chart is judged against it in the same run;
* `floor_first_chart_s`: `first_chart_s` of `bench/_floor_app.py` (one plotly chart, nothing else): what
  Streamlit itself costs here, the floor no change to the app can go below;
* `first_chart_serve_s`: `first_chart_s` of `python -m landscape.app.serve` (what `make app` runs: the same app,
  with the engine imported while the browser loads), measured in the same repeat.

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
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from landscape.app.pages import PAGES

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
# Page name -> its sidebar navigation link (href suffix): every page of the table, then back to the landing page.
SWITCHES = {**{p.url_path: p.url_path for p in PAGES if not p.default}, "overview": ""}
TARGET_FIRST_CHART_S = 2.0
TARGET_FIRST_CHART_RATIO = 2.5  # first chart / `python -c "import streamlit"`, both medians of the same run
TARGET_SWITCH_MEDIAN_S = 0.3
TARGET_SWITCH_MAX_S = 1.0
IMPORT_RUNS = 3
FLOOR_APP = "bench/_floor_app.py"
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


def import_streamlit_s() -> float:
    """Seconds of one `python -c "import streamlit"` subprocess (interpreter start-up included)."""
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import streamlit"], cwd=ROOT, check=True)
    return time.perf_counter() - t0


@contextlib.contextmanager
def opened(browser, app: str, log: Path) -> Iterator[tuple[Any, str, float, float]]:
    """`streamlit run app` over an empty temporary store, opened in a fresh browser context (cold cache).

    `app` "serve" starts `python -m landscape.app.serve` instead (app.py through `make app`'s launcher).
    Yields the page, the URL, seconds from launching the server to the first chart drawn, and to the server
    answering its health check; the server is stopped on leaving.
    """
    port = free_port()
    env = {**os.environ, "UE_LANDSCAPE_STORE": tempfile.mkdtemp(prefix="ue-latency-store-")}
    start = ["-m", "landscape.app.serve"] if app == "serve" else ["-m", "streamlit", "run", app]
    cmd = [sys.executable, *start, "--server.headless", "true", "--server.port", str(port), "--server.address",
           "127.0.0.1", "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none"]
    url = f"http://127.0.0.1:{port}"
    context = browser.new_context(viewport={"width": 1500, "height": 1000})
    page = context.new_page()
    with open(log, "w") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
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
            yield page, url, time.perf_counter() - started, healthy
        finally:
            context.close()
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()


def measure(repeats: int, screenshots: Path | None, log_dir: Path) -> list[dict]:
    from playwright.sync_api import sync_playwright

    rows: list[dict] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            for rep in range(repeats):
                rows += [{"measure": "import_streamlit_s", "seconds": import_streamlit_s(), "repeat": rep}
                         for _ in range(IMPORT_RUNS)]
                with opened(browser, FLOOR_APP, log_dir / f"streamlit-latency-floor-{rep}.log") as (_, _, s, h):
                    rows.append({"measure": "floor_first_chart_s", "seconds": s, "server_healthy_s": h, "repeat": rep})
                with opened(browser, "app.py", log_dir / f"streamlit-latency-{rep}.log") as (page, url, s, h):
                    rows.append({"measure": "first_chart_s", "seconds": s, "server_healthy_s": h, "repeat": rep})
                    wait_run_finished(page)
                    rows += switches(page, url, rep, screenshots if rep == 0 else None)
                with opened(browser, "serve", log_dir / f"streamlit-latency-serve-{rep}.log") as (page, _, s, h):
                    rows.append({"measure": "first_chart_serve_s", "seconds": s, "server_healthy_s": h, "repeat": rep})
        finally:
            browser.close()
    return rows


def switches(page, url: str, rep: int, screenshots: Path | None) -> list[dict]:
    """Click every page of the navigation in turn: seconds to its first chart drawn and its script run finished."""
    rows = []
    for name, href in SWITCHES.items():
        link = page.locator(f'[data-testid="stSidebarNav"] a[href="{url}/{href}"]')
        t0 = time.perf_counter()
        link.click()
        page.wait_for_url(f"{url}/{href}", timeout=30_000)
        page.wait_for_selector(CHART_DRAWN, timeout=60_000)
        wait_run_finished(page)
        rows.append({"measure": f"switch_{name}_s", "seconds": time.perf_counter() - t0, "repeat": rep})
        if page.locator('[data-testid="stException"]').count():
            raise RuntimeError(f"page {name} shows an exception")
        if screenshots is not None and name in ("landscape", "sal"):
            page.set_viewport_size({"width": 1500, "height": 1900})  # the main figures in view
            page.wait_for_timeout(1500)  # let plotly redraw at the new size
            page.screenshot(path=str(screenshots / f"screenshot-{name}.png"))
            page.set_viewport_size({"width": 1500, "height": 1000})
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
    def median(measure: str) -> float:
        values = [r["seconds"] for r in rows if r["measure"] == measure]
        return statistics.median(values) if values else float("nan")

    first = [r["seconds"] for r in rows if r["measure"] == "first_chart_s"]
    switched = [r["seconds"] for r in rows if r["measure"].startswith("switch_")]
    worst = max(switched) if switched else float("nan")
    first_med, imported, floor = median("first_chart_s"), median("import_streamlit_s"), median("floor_first_chart_s")
    ratio = first_med / imported
    ok = (first_med <= TARGET_FIRST_CHART_S and ratio <= TARGET_FIRST_CHART_RATIO
          and statistics.median(switched) <= TARGET_SWITCH_MEDIAN_S and worst <= TARGET_SWITCH_MAX_S)
    print(f"app_latency: first chart median {first_med:.2f} s (max {max(first):.2f}, target <= "
          f"{TARGET_FIRST_CHART_S:g}); import streamlit median {imported:.2f} s, first chart / import "
          f"{ratio:.2f} (target <= {TARGET_FIRST_CHART_RATIO:g}); through landscape.app.serve (make app) "
          f"{median('first_chart_serve_s'):.2f} s; floor app's first chart median {floor:.2f} s; "
          f"page switch median {statistics.median(switched):.2f} s (max {worst:.2f}, targets median <= "
          f"{TARGET_SWITCH_MEDIAN_S:g}, max <= {TARGET_SWITCH_MAX_S:g}); {len(first)} starts, load avg "
          f"{machine['load_avg_1m']:.2f} on {machine['cpus']} CPUs; {'within targets' if ok else 'OVER target'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
