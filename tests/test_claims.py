"""The numbers the product tells a user match the measurements recorded in the repository.

Each test reads a recorded result (bench/results, assets/benchmarks) and checks the text that quotes it: the
method docstrings (the app's "About" box), the cost model of the app's crafting line, the constants the pages
quote, and the figures README.md and bench/README.md give. A re-measurement that changes a number fails here
until the text is updated with it.
"""

from __future__ import annotations

import inspect
import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from landscape.poisons import POISONS
from landscape.poisons.sweeps import NOTES

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def rows(name: str) -> list[dict]:
    return [json.loads(line) for line in (RESULTS / name).read_text().splitlines() if line.strip()]


def flat(text: str) -> str:
    """`text` with every run of whitespace one space (quoted figures may break across lines)."""
    return " ".join(text.split())


def pct(x: float) -> str:
    return f"{100 * x:.1f}"


def doc(method: str) -> str:
    return flat(inspect.getdoc(POISONS.get(method)) or "")


def crafted(name: str) -> list[dict]:
    """The crafting rows of a budget or effect file (no clean runs, no summaries)."""
    return [r for r in rows(name) if not r.get("summary") and r.get("method") != "clean"]


# ------------------------------------------------------------------------------------------ method docstrings

@pytest.mark.parametrize("method", POISONS.names())
def test_a_method_docstring_gets_each_sweep_note_it_cites_once_from_one_source(method):
    text = doc(method)
    for mark, note in NOTES.items():
        assert text.count(flat(note)) == (1 if mark in text.replace(flat(note), "") else 0), (method, mark)
    source = (ROOT / "landscape" / "poisons" / f"{method}.py").read_text()
    assert "Measured with bench/ue_budget.py" not in source, f"{method}.py repeats a sweep note: cite its mark"


def test_the_sweep_notes_quote_the_recorded_clean_runs_and_seed_spread():
    clean = next(r for r in rows("ue_budget.jsonl") if r["method"] == "clean")
    assert f"clean training {pct(clean['test_acc'])} %" in NOTES["¹"]
    em = sorted((r for r in rows("ue_effect.jsonl") if r.get("method") == "em" and not r.get("summary")),
                key=lambda r: r["seed"])
    assert ", ".join(pct(r["test_acc"]) for r in em) + " % over seeds 0-2" in NOTES["¹"]
    clean5k = {r["test_acc"] for name in ("ue_budget_mnist5k_a.jsonl", "ue_budget_mnist5k_b.jsonl")
               for r in rows(name) if r.get("method") == "clean" and not r.get("summary")}
    assert len(clean5k) == 1 and f"clean training {pct(clean5k.pop())} %" in NOTES["²"]


def test_each_method_docstring_quotes_its_recorded_digits_sweep():
    """"8, 16, 32, 64/255 gave a, b, c, d %": the seed-0 victim accuracies of bench/results/ue_budget.jsonl."""
    by_method: dict[str, list[dict]] = {}
    for r in crafted("ue_budget.jsonl"):
        by_method.setdefault(r["method"], []).append(r)
    assert set(by_method) == set(POISONS.names())
    for method, runs in by_method.items():
        sweep = ", ".join(pct(r["test_acc"]) for r in sorted(runs, key=lambda r: r["eps"]))
        assert sweep in doc(method), (method, sweep)


def test_each_method_docstring_quotes_its_recorded_seeds_and_mnist_runs():
    digits_seeds = {}
    for r in crafted("ue_effect.jsonl"):
        digits_seeds.setdefault(r["method"], []).append(r)
    for method in ("em", "rem", "lsp", "ar"):  # the docstrings that list the three digits seeds
        listed = ", ".join(pct(r["test_acc"]) for r in sorted(digits_seeds[method], key=lambda r: r["seed"]))
        assert listed in doc(method), (method, listed)
    tap = "/".join(pct(r["test_acc"]) for r in sorted(digits_seeds["tap"], key=lambda r: r["seed"]))
    assert tap in doc("tap")
    for name in ("ue_budget_mnist5k_a.jsonl", "ue_budget_mnist5k_b.jsonl", "ue_effect_mnist5k_seeds12.jsonl"):
        for r in crafted(name):
            assert pct(r["test_acc"]) in doc(r["method"]), (name, r["method"], r.get("eps"), r["test_acc"])


def test_the_quoted_crafting_seconds_are_the_recorded_ones():
    def seconds(method: str, name: str = "ue_effect.jsonl") -> list[float]:
        return [r["craft_seconds"] for r in crafted(name) if r["method"] == method]

    em, rem, tap = seconds("em"), seconds("rem") + seconds("rem", "ue_budget.jsonl"), \
        seconds("tap") + seconds("tap", "ue_budget.jsonl")
    assert f"{min(em):.1f}-{max(em):.1f} s over seeds 0-2" in doc("em")
    assert f"{min(rem):.1f}-{max(rem):.1f} s" in doc("rem")
    assert f"{min(tap):.1f}-{max(tap):.1f} s" in doc("tap")
    loops = [r["surrogate"]["loops"] for r in crafted("ue_effect.jsonl") if r["method"] == "em"]
    assert f"after {min(loops)}-{max(loops)} loops" in doc("em")


# ------------------------------------------------------------------------------------------ the crafting cost line

def test_the_crafting_estimate_matches_the_recorded_crafting_times():
    """The cost line's seconds (`PoisonMethod.estimate_cost`) for the image-gradient evaluations a recorded run
    made (its loops, where it stopped early) lie within 1.5x of the run's seconds, per surrogate (median)."""
    from landscape.config import DataSpec, PoisonSpec
    from landscape.poisons import build

    sets = {"ue_effect.jsonl": ("digits", 1437, (1, 8, 8)), "ue_budget.jsonl": ("digits", 1437, (1, 8, 8)),
            "ue_budget_mnist5k_a.jsonl": ("mnist-5k", 4000, (1, 28, 28)),
            "ue_budget_mnist5k_b.jsonl": ("mnist-5k", 4000, (1, 28, 28))}
    ratios: dict[str, list[float]] = {}
    for name, (dataset, n, shape) in sets.items():
        for r in crafted(name):
            options = dict(r.get("options") or {})
            if "surrogate" not in options:
                continue
            if "loops" in (r.get("surrogate") or {}):
                options["max_loops"] = r["surrogate"]["loops"]
            spec = PoisonSpec(method=r["method"], eps=r["eps"], options=tuple(sorted(options.items())))
            estimate = build(spec, dataset=DataSpec(name=dataset)).estimate_cost(n, shape)["cpu_seconds"]
            ratios.setdefault(options["surrogate"], []).append(estimate / r["craft_seconds"])
    assert set(ratios) == {"cnn", "lenet5"}
    for surrogate, values in ratios.items():
        assert 1 / 1.5 < statistics.median(values) < 1.5, (surrogate, sorted(values))


# ------------------------------------------------------------------------------------------ constants pages quote

def test_the_digits_caveat_quotes_when_the_regime_studys_clean_cnn_layers_go_flat():
    from landscape.app.views.study import CLEAN_FLAT_AFTER

    last = []
    for r in rows("regime.jsonl"):
        if r.get("block") == "digits/cnn/sgd" and r.get("method") == "em" and "baselines" in r:
            b = r["baselines"]["running"]
            every, epochs = b["spec"]["sal"]["every"], r["epochs"]
            measured = [*range(every, epochs + 1, every)] + ([epochs] if epochs % every else [])
            last.append(max(e for e, c in zip(measured, b["counts_clean"], strict=True) if c > 0))
    assert len(last) == 3 and max(last) == CLEAN_FLAT_AFTER, last


def test_the_cross_task_verdict_is_the_shipped_benchs():
    """`multitask.verdict` (the page's reading) gives the sentences bench/results/cross_task.md shipped."""
    from landscape import multitask

    all_rows = rows("cross_task.jsonl")
    summary = next(r for r in all_rows if r["kind"] == "summary")
    table = [r for r in all_rows if r["kind"] == "cross_task"]
    tasks = list(dict.fromkeys(r["task"] for r in table))
    assert multitask.verdict(table, summary["methods"], tasks) == summary["verdict"]
    assert not any(multitask.finding_holds(table, m, tasks) for m in summary["methods"])


# ------------------------------------------------------------------------------------------ README and bench/README

README = flat((ROOT / "README.md").read_text())
BENCH_README = flat((ROOT / "bench" / "README.md").read_text())


def test_bench_readme_holds_the_comparison_ud_compare_generates_from_the_shipped_table():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "ud_compare.py"),
                          str(ROOT / "assets" / "benchmarks" / "ud_digits_cnn.json")],
                         capture_output=True, text=True, check=True, cwd=ROOT).stdout
    body = out.split("\n", 2)[2]  # below its own heading
    assert flat(body) in BENCH_README
    assert flat(out) == flat((RESULTS / "ud_digits_compare.md").read_text())


def test_the_readmes_quote_the_shipped_ud_table():
    summary = {(r["method"], r["defense"]): r for r in json.loads(
        (ROOT / "assets" / "benchmarks" / "ud_digits_cnn.json").read_text())["summary"]}

    def ms(method: str, digits: int = 2) -> str:
        r = summary[(method, "none")]
        return f"{r['ud_mean']:.{digits}f} ± {r['ud_std']:.{digits}f}"

    for text in (README, BENCH_README):
        assert f"OPS ({ms('ops')}" in text
        assert f"EM {ms('em')}" in text or f"EM's UD went from 0.86 ± 0.43 to {ms('em')}" in text
    assert f"against {ms('random')}" in README


def test_the_readme_quotes_the_regime_studys_random_noise_range():
    settings = json.loads((ROOT / "assets" / "benchmarks" / "regime.json").read_text())["settings"]
    means = [s["ud_mean"] for s in settings if s["method"] == "random"]
    assert min(means) > 1 and f"(1.005 to {max(means):.2f}:" in README, (min(means), max(means))
    assert f"{min(means):.3f}" == "1.005"


def test_the_readme_quotes_the_recorded_cross_task_drops():
    table = [r for r in rows("cross_task.jsonl") if r["kind"] == "cross_task"]

    def drop(task: str, method: str) -> int:
        return round(100 * statistics.fmean(r["drop"] for r in table if r["task"] == task and r["method"] == method))

    assert f"segmentation mIoU −{drop('segment', 'em')} % and edge MSE +{drop('edges', 'em')} % under EM" in README
    for method, name in (("ops", "OPS"), ("ar", "AR"), ("random", "random noise")):
        assert f"−{drop('segment', method)} % and +{drop('edges', method)} % under {name}" in README, method


def test_bench_readme_quotes_the_recorded_study_times():
    intel = (RESULTS / "study_time.txt").read_text()
    amd = (RESULTS / "study_time_amd.txt").read_text()
    two = re.findall(r"study --workers 2 \(fresh store\): ([\d.]+) s = ([\d.]+)x train", intel)
    assert len(two) == 1 and f"**{two[0][0]} s" in BENCH_README and f"= {two[0][1]}x the train" in BENCH_README
    train = re.search(r"plain train --epochs 30 \(fresh store\), median of 3: ([\d.]+) s", intel).group(1)
    serial = re.search(r"study --workers 1 \(fresh store\): ([\d.]+) s", intel).group(1)
    assert f"`train` {train} s" in BENCH_README and f"`--workers 1` {serial} s" in BENCH_README
    runs = re.findall(r"study --workers 2 \(fresh store\): ([\d.]+) s = ([\d.]+)x train", amd)
    before, after = runs[:2], runs[2:]
    assert len(after) == 2 and all(float(x) <= 4 and float(s) <= 30 for s, x in after)
    assert f"{before[0][0]} s and {before[1][0]} s with 2 workers ({before[0][1]}x and {before[1][1]}x" in BENCH_README
    assert f"after them {after[0][0]} s and {after[1][0]} s (**{after[0][1]}x and {after[1][1]}x**" in BENCH_README


def test_the_readmes_quote_the_recorded_instruction_set_runs():
    by = {r["setting"]: r for r in (json.loads(line) for line in (RESULTS / "isa_bits.txt").read_text().splitlines()
                                    if line.startswith("{"))}
    native, avx2 = by["native"], by["avx2"]
    assert f"UD {native['ud']:.3f}, test accuracy {native['clean_test_acc']:.3f} / {native['poisoned_test_acc']:.3f}" \
        in README
    assert f"UD is {avx2['ud']:.3f}, accuracy {avx2['clean_test_acc']:.3f} / {avx2['poisoned_test_acc']:.3f}" in README
    assert f"UD {native['ud']:.3f}" in BENCH_README and f"UD {avx2['ud']:.3f}" in BENCH_README
    assert f"took {by['native+repro']['wall_s']:.0f} s instead of {native['wall_s']:.0f} s" in README


def test_the_readme_quotes_the_recorded_clean_baseline():
    s = next(r for r in rows("train_baseline.jsonl") if r.get("summary") and r["model"] == "cnn")
    assert f"{pct(s['test_acc_mean'])}% ± {pct(s['test_acc_std'])}% clean test accuracy over {s['seeds']} seeds" \
        in README


def test_a_footnote_note_follows_a_mark_after_a_word_not_a_square():
    """"sweep²" cites the MNIST sweep; "(32/8)²" (an exponent, as LSP's docstring has) does not."""
    from landscape.poisons.sweeps import NOTES, with_notes

    doc = "Summary.\n\n    d = (32/8)² patches.\n\n    Args (options):\n        x: y.\n"
    assert with_notes(doc) == doc
    cited = with_notes(doc.replace("patches.", "patches (sweep²)."))
    assert NOTES["²"].split()[0] in cited and NOTES["¹"].split(":")[0] not in cited.replace(NOTES["²"], "")


def test_the_readmes_quote_the_clean_flat_epoch_the_app_states():
    """The app's digits caveat and both READMEs quote one figure of the regime study: keep them together."""
    from landscape.app.views.study import CLEAN_FLAT_AFTER

    for readme in (ROOT / "README.md", ROOT / "bench" / "README.md"):
        assert f"after epoch {CLEAN_FLAT_AFTER} of 30" in " ".join(readme.read_text().split()), readme
