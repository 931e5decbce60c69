"""The numbers the product tells a user match the measurements recorded in the repository.

Each test reads a recorded result (bench/results, assets/benchmarks) and checks the text that quotes it: the
method docstrings (the app's "About" box), the cost model of the app's crafting line, the constants the pages
quote, and the figures README.md and bench/README.md give. A re-measurement that changes a number fails here
until the text is updated with it.
"""

from __future__ import annotations

import inspect
import json
import statistics
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
