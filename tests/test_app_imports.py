"""What opening the app costs in imports: the first page of a fresh session (the shipped demo, an empty store) must
not import scikit-learn, SciPy or pandas (about 1.1 s of the first script run; issue #17); the router then
imports pandas in the background (`landscape.app.warmup`), so the later pages' first visits do not wait for it, and
no page needs SciPy or scikit-learn to show a stored result.

Run in a subprocess, so the modules this test session has already imported do not count. torch is still imported
on this path (the stage layer resolves the demo's keys with the engine); that is measured by bench/app_latency.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sklearn", "scipy", "pandas")
SCRIPT = """
import json, sys, threading
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300).run()
imported = sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(","))
warmups = [t for t in threading.enumerate() if t.name == "ue-landscape-warmup"]
for t in warmups:
    t.join(timeout=300)
print(json.dumps({"exceptions": [str(e.value) for e in at.exception], "charts": len(at.get("plotly_chart")),
                  "modules": imported, "warmups": len(warmups),
                  "after_warmup": sorted({m.split(".")[0] for m in sys.modules} & set(sys.argv[2].split(",")))}))
"""


def first_run(page: str, store: Path) -> dict:
    """AppTest's first run of `page` in a fresh interpreter: what it drew and imported (see SCRIPT)."""
    env = {**os.environ, "UE_LANDSCAPE_STORE": str(store)}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / page), ",".join(HEAVY)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_the_first_page_of_a_fresh_session_imports_no_sklearn_scipy_or_pandas(tmp_path):
    report = first_run("pages/overview.py", tmp_path / "store")  # the page alone: no router, no warm-up
    assert report["warmups"] == 0
    assert not report["exceptions"], report["exceptions"]
    assert report["charts"] >= 1, "the Overview draws the demo's training curves"  # the page really ran
    assert not {m.split(".")[0] for m in report["modules"]}, f"imported on opening the app: {report['modules'][:10]}"


def test_the_router_imports_them_in_the_background_after_the_first_page(tmp_path):
    report = first_run("app.py", tmp_path / "store")
    assert not report["exceptions"], report["exceptions"]
    assert report["charts"] >= 1
    assert report["warmups"] == 1, "app.py starts one warm-up thread after the page has run"
    assert report["after_warmup"] == ["pandas"], report["after_warmup"]  # SciPy and scikit-learn: live work only


def test_the_curvature_page_imports_neither_scipy_nor_sklearn(tmp_path):
    """Its SAL-vs-curvature rank agreement is NumPy (`landscape.curvature.average_ranks`): SciPy's import cost ~0.5 s
    of the page's first visit before."""
    report = first_run("pages/curvature.py", tmp_path / "store")
    assert not report["exceptions"], report["exceptions"]
    assert report["charts"] >= 1
    assert not {m.split(".")[0] for m in report["modules"]} & {"scipy", "sklearn"}, report["modules"][:10]


def test_the_cross_task_page_imports_neither_scipy_nor_sklearn(tmp_path):
    """Its table reads the shipped probe's stored UDs (`TaskUDStage`): fitting KMeans for them imported both,
    ~2 s of the page's first visit (bench/results/app_latency.md)."""
    report = first_run("pages/cross_task.py", tmp_path / "store")
    assert not report["exceptions"], report["exceptions"]
    assert report["charts"] >= 1
    assert not {m.split(".")[0] for m in report["modules"]} & {"scipy", "sklearn"}, report["modules"][:10]


def _slow_warmup(monkeypatch, log: list) -> tuple[threading.Event, threading.Thread]:
    """The warm-up's import loop with one fake module whose import takes 0.3 s (and no real thread started)."""
    from landscape.app import warmup

    began = threading.Event()

    def slow_import(name: str) -> None:
        began.set()
        time.sleep(0.3)
        log.append(f"imported {name}")

    monkeypatch.setattr(warmup, "MODULES", ("fake",))
    monkeypatch.setattr(warmup, "FIRST_IDLE_S", 0.0)
    monkeypatch.setattr(warmup, "_import", slow_import)
    monkeypatch.setattr(warmup, "start", lambda: None)
    return began, threading.Thread(target=warmup._import_all, daemon=True)


def test_a_page_run_waits_for_an_import_in_flight(monkeypatch):
    """Code that only looks into sys.modules (Plotly checks for pandas) must never see a half-imported module:
    a page run that starts during a warm-up import begins once it has ended."""
    from landscape.app import warmup

    log: list[str] = []
    began, thread = _slow_warmup(monkeypatch, log)
    thread.start()
    assert began.wait(10)
    with warmup.page_run():
        log.append("page")
    thread.join(10)
    assert log == ["imported fake", "page"]


def test_no_import_starts_while_a_page_runs(monkeypatch):
    from landscape.app import warmup

    log: list[str] = []
    began, thread = _slow_warmup(monkeypatch, log)
    with warmup.page_run():
        thread.start()
        assert not began.wait(0.3)  # idle means no page running
        log.append("page")
    thread.join(10)
    assert log == ["page", "imported fake"]


SERVE = """
import json, sys, threading
import streamlit.web.cli as cli
from landscape.app import serve

def fake_main(args, prog_name):  # instead of starting the server: what it would run, once the preload is done
    preload = next(t for t in threading.enumerate() if t.name == "ue-landscape-preload")
    preload.join(timeout=300)
    print(json.dumps({"args": args, "prog": prog_name, "engine": all(m in sys.modules for m in serve.ENGINE),
                      "torch": "torch" in sys.modules}))

cli.main = fake_main
assert "torch" not in sys.modules
serve.main(["--server.port", "1234"])
"""


def test_make_apps_launcher_runs_app_py_with_the_engine_imported_meanwhile():
    out = subprocess.run([sys.executable, "-c", SERVE], cwd=ROOT, capture_output=True, text=True, timeout=600,
                         check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert report["args"] == ["run", str(ROOT / "app.py"), "--server.port", "1234"] and report["prog"] == "streamlit"
    assert report["engine"] and report["torch"]
