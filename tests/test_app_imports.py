"""What opening the app costs in imports: the first page of a fresh session (the shipped demo, an empty store) must
not import scikit-learn, SciPy or pandas (about 1.1 s of the first script run; issue #17).

Run in a subprocess, so the modules this test session has already imported do not count. torch is still imported
on this path (the stage layer resolves the demo's keys with the engine); that is measured by bench/app_latency.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("sklearn", "scipy", "pandas")
SCRIPT = """
import json, sys
from streamlit.testing.v1 import AppTest
at = AppTest.from_file(sys.argv[1], default_timeout=300).run()
print(json.dumps({"exceptions": [str(e.value) for e in at.exception], "charts": len(at.get("plotly_chart")),
                  "modules": sorted(m for m in sys.modules if m.split(".")[0] in sys.argv[2].split(","))}))
"""


def test_the_first_page_of_a_fresh_session_imports_no_sklearn_scipy_or_pandas(tmp_path):
    env = {**os.environ, "UE_LANDSCAPE_STORE": str(tmp_path / "store")}
    out = subprocess.run([sys.executable, "-c", SCRIPT, str(ROOT / "app.py"), ",".join(HEAVY)], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=600, check=True)
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert not report["exceptions"], report["exceptions"]
    assert report["charts"] >= 1, "the Overview draws the demo's training curves"  # the page really ran
    assert not {m.split(".")[0] for m in report["modules"]}, f"imported on opening the app: {report['modules'][:10]}"
