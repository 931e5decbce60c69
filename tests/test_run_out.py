"""`python -m landscape run --out FILE`: the experiment's report (.html), its SAL table (.csv), its JSON (.json)."""

from __future__ import annotations

import csv
import html
import json

import numpy as np
import pytest

from landscape.cli import main
from landscape.config import ExperimentSpec
from landscape.experiment import run_experiment
from landscape.seeds import seed_specs
from landscape.store import Store

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = ["run", "--dataset", "digits", "--n-train", "100", "--n-test", "30", "--model", "mlp", "--epochs", "2",
       "--sal-rounds", "1", "--workers", "1"]
PLOTLY_BUNDLE = "* plotly.js v"  # the licence header that opens the embedded plotly.js, once per copy
FIGURES = 5  # training curves, SAL heatmaps, SAL distribution, learnable layers, UD counts


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> Store:
    """One store for the module: the tiny clean and random runs are trained once."""
    return Store(tmp_path_factory.mktemp("run-out-store"))


def _run(args: list[str], store: Store, capsys) -> tuple[int, str, str]:
    code = main([*RUN, *args, "--store", str(store.root)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _as_plotly_writes(text: str) -> str:
    """`text` as a JSON string in plotly's HTML (ASCII, with <, >, & and / escaped for a script tag)."""
    escaped = json.dumps(text)[1:-1]
    for char in "<>&/":
        escaped = escaped.replace(char, f"\\u{ord(char):04x}")
    return escaped


def _result(summary: dict, store: Store, seed: int = 0):
    """The experiment the CLI ran (its spec read back from --json), loaded from the store."""
    spec = seed_specs(ExperimentSpec.from_dict(summary["spec"]), seed + 1)[seed]
    return run_experiment(spec, store=store)


def test_json_out_is_the_object_json_prints(shared, tmp_path, capsys):
    out = tmp_path / "run.json"
    code, stdout, _ = _run(["--method", "random", "--json", "--out", str(out)], shared, capsys)
    assert code == 0
    printed = json.loads(stdout)
    assert json.loads(out.read_text()) == printed and out.read_text() == stdout
    assert printed["out"] == str(out) and printed["method"] == "random" and printed["n_seeds"] == 1
    code, text, _ = _run(["--method", "random", "--out", str(tmp_path / "again.json")], shared, capsys)
    assert code == 0 and f"wrote {tmp_path / 'again.json'}" in text and "UD =" in text  # the table, then the file
    again = json.loads((tmp_path / "again.json").read_text())
    assert {k: v for k, v in again.items() if k != "out"} == {k: v for k, v in printed.items() if k != "out"}


def test_csv_out_is_one_row_per_run_epoch_and_layer_with_the_sal_matrices(shared, tmp_path, capsys):
    out = tmp_path / "sal.csv"
    code, stdout, _ = _run(["--method", "random", "--json", "--out", str(out)], shared, capsys)
    assert code == 0
    result = _result(json.loads(stdout), shared)
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    layers, epochs = result.sal_clean.layers, result.sal_clean.epochs
    assert len(rows) == 2 * len(epochs) * len(layers) == 2 * 2 * 3  # runs x SAL epochs x layers
    assert list(rows[0]) == ["seed", "run", "epoch", "layer", "sal", "s_max", "s_min", "baseline_loss",
                             "acc_variant_pp", "learnable", "beta_t", "beta"]
    ud = result.ud
    for run, trace, flags in (("clean", result.sal_clean, ud.flags_clean),
                              ("random", result.sal_poisoned, ud.flags_poisoned)):
        mine = [r for r in rows if r["run"] == run]
        got = np.array([[float(r["sal"]) for r in mine if int(r["epoch"]) == e] for e in trace.epochs])
        np.testing.assert_array_equal(got, trace.sal)  # exact: the floats are written in full
        for key, matrix in (("s_max", trace.s_max), ("s_min", trace.s_min), ("baseline_loss", trace.baseline),
                            ("acc_variant_pp", trace.acc_variant)):
            np.testing.assert_array_equal([float(r[key]) for r in mine], matrix.ravel())
        assert [int(r["learnable"]) for r in mine] == flags.astype(int).ravel().tolist()
        assert [r["layer"] for r in mine] == list(layers) * len(trace.epochs)
        assert [float(r["beta_t"]) for r in mine] == np.repeat(ud.betas, len(layers)).tolist()
    assert {r["seed"] for r in rows} == {"0"} and {float(r["beta"]) for r in rows} == {ud.beta}


def test_csv_of_the_clean_method_has_the_clean_run_only(shared, tmp_path, capsys):
    out = tmp_path / "clean.csv"
    assert _run(["--method", "clean", "--out", str(out)], shared, capsys)[0] == 0
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["run"] for r in rows} == {"clean"} and len(rows) == 2 * 3


def test_html_out_is_one_page_of_the_apps_figures(shared, tmp_path, capsys):
    from landscape.figures import experiment_figures

    out = tmp_path / "report.html"
    code, stdout, _ = _run(["--method", "random", "--json", "--out", str(out)], shared, capsys)
    assert code == 0
    summary = json.loads(stdout)
    page = out.read_text()
    assert page.count(PLOTLY_BUNDLE) == 1 and page.count("Plotly.newPlot") == FIGURES
    assert "<title>digits / mlp / random, 2 epochs, SAL preset custom</title>" in page
    for title in ("Clean vs poisoned training", "SAL per layer and epoch", "SAL distribution",
                  "Learnable layers per epoch (green: SAL", "Learnable layers per epoch (UD = #LP(poisoned)"):
        assert title in page
    figures = experiment_figures(_result(summary, shared), log=True)
    assert len(figures) == FIGURES  # one plot per figure the experiment has
    for fig in figures.values():  # every figure the app draws for the experiment, as plotly writes its title
        assert _as_plotly_writes(fig.layout.title.text) in page
    assert "Headline numbers per seed" in page and f"{summary['beta']:.4g}" in page
    assert "UD over seeds" not in page  # one seed: no spread to draw


def test_seeds_report_the_first_seed_and_every_seed(shared, tmp_path, capsys):

    html, table = tmp_path / "seeds.html", tmp_path / "seeds.csv"
    code, stdout, _ = _run(["--method", "random", "--seeds", "2", "--json", "--out", str(html)], shared, capsys)
    assert code == 0
    summary = json.loads(stdout)
    page = html.read_text()
    assert "2 seeds (figures: seed 0)" in page and "Over the seeds" in page and "UD over seeds" in page
    assert page.count(PLOTLY_BUNDLE) == 1 and page.count("Plotly.newPlot") == FIGURES + 1
    assert summary["out"] == str(html) and summary["seeds"] == [0, 1]
    assert _run(["--method", "random", "--seeds", "2", "--out", str(table)], shared, capsys)[0] == 0
    with table.open(newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2 * 3  # seeds x runs x epochs x layers
    second = _result(summary, shared, seed=1)
    got = [float(r["sal"]) for r in rows if r["seed"] == "1" and r["run"] == "random"]
    np.testing.assert_array_equal(got, second.sal_poisoned.sal.ravel())


@pytest.mark.parametrize("name", ["report.png", "report", "sal.tsv"])
def test_bad_suffix_is_refused_before_any_training(tmp_path, capsys, name):
    store = tmp_path / "store"
    code = main([*RUN, "--method", "random", "--out", str(tmp_path / name), "--store", str(store)])
    err = capsys.readouterr().err
    assert code == 2 and repr(str(tmp_path / name)) in err and ".html, .csv, .json" in err
    assert not store.exists() or not any(store.iterdir())  # nothing trained, nothing stored
    assert not (tmp_path / name).exists()


def test_write_html_escapes_its_text(tmp_path):
    from landscape.commands.common import write_html

    out = tmp_path / "page.html"
    write_html([], out, "npz:/data/<b>x</b>", notes=["a < b"], tables={"t & u": [{"k<": "<v>", "n": float("nan")}]})
    page = out.read_text()
    assert "<b>" not in page and "&lt;b&gt;x&lt;/b&gt;" in page and "a &lt; b" in page and "t &amp; u" in page
    assert "<th>k&lt;</th>" in page and "<td>&lt;v&gt;</td>" in page and "<td>n/a</td>" in page


def test_html_tables_name_the_measures_as_the_text_table_does(shared, tmp_path, capsys):
    """The report's headers (and the spread's measure column) are the labels the text seed table prints
    (`MEASURE_LABELS`), never raw keys; the page is styled inline, fetching nothing."""
    import re

    from landscape.seeds import MEASURE_LABELS, SEED_MEASURES

    out = tmp_path / "report.html"
    code, text, _ = _run(["--method", "random", "--seeds", "2", "--out", str(out)], shared, capsys)
    assert code == 0
    page = out.read_text()
    headers = re.findall(r"<th>(.*?)</th>", page)
    assert headers[:len(MEASURE_LABELS) + 1] == ["seed", *(html.escape(v) for v in MEASURE_LABELS.values())]
    assert not set(headers) & set(SEED_MEASURES), headers
    spread = page.split("<caption>Over the seeds</caption>", 1)[1].split("</table>", 1)[0]
    assert re.findall(r"<tr><td>(.*?)</td>", spread) == [html.escape(v) for v in MEASURE_LABELS.values()]
    for label in MEASURE_LABELS.values():
        assert f"{label:>22}: " in text  # the text table's labels: the same mapping
    assert "<style>" in page and "font-family:system-ui" in page and "padding:" in page
    assert "<link" not in page and "<script src" not in page and "@import" not in page
