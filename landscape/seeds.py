"""UD with its uncertainty: one experiment over several seeds, its headline numbers as mean ± spread.

A single-seed UD (Ye, Su, Qian, ICLR 2025) is not a stable quantity on small data: the same spec with
another seed (or the same seed on another CPU) moves it by more than the range between UE methods
(issue #15; `bench/regime.py` measures by how much). So every place that shows UD shows how many seeds it
rests on and, with more than one, their spread:

- `seed_specs(spec, n)` / `run_seeds(spec, n, ...)`: the experiment at n seeds. Seed i shifts the training
  seed (initialisation, shuffling, augmentation), the poison's crafting seed and the SAL seed by i, so seed 0
  is `spec` itself and `run --seeds 1` is the plain `run`. A provided poison (`--method provided`,
  `landscape.poisons.provided`) has no crafting seed: its images are the same at every seed (one poison entry),
  so the seeds are those of training and SAL only;
- `Spread`: one measure over the seeds (values, mean, sample standard deviation, range, seed count);
- `spread_over_seeds(summaries)`: the `Spread` of every headline measure (`SEED_MEASURES`) of
  `ExperimentResult.summary()` dicts;
- `seed_table(results)`: one row per seed of those measures (the CLI's seed table and its report);
- `seed_summary(results)`: the seed count, the seeds, every spread and the note, as JSON for the CLI and API;
- `study_rows()`, `study_spread(spec, rows)`, `study_methods(spec, rows)`, `study_settings(rows)`: what the
  shipped study measured on a setting (the app's UD page shows it beside its point value, and lets a user switch
  between the settings it covers);
- `single_seed_note(spec, advice=...)`: the plain warning shown with one seed, with the seed spread the shipped
  regime study measured on that setting (or the range over its settings when it did not run this one), and how to
  run more seeds where it is shown (`CLI_ADVICE`, `API_ADVICE`).
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from landscape.config import ExperimentSpec
from landscape.errors import SpecError
from landscape.experiment import ExperimentResult, run_experiment
from landscape.stages.base import StageProgress, no_progress
from landscape.stages.ud import resolve_experiment
from landscape.store import Store

# The headline numbers of `ExperimentResult.summary()` that are aggregated over seeds (UD, its parts, our
# threshold-free measures, and the accuracies they stand beside), each with the label a person reads it by (the
# CLI's seed table, the report's tables).
MEASURE_LABELS = {"ud": "UD", "beta": "β", "lp_clean": "#LP clean", "lp_poisoned": "#LP poisoned",
                  "w1_overall": "W1 (ours)", "mean_ratio_overall": "mean SAL ratio (ours)",
                  "clean_test_acc": "test acc clean", "poisoned_test_acc": "test acc poisoned"}
SEED_MEASURES = tuple(MEASURE_LABELS)
MAX_SEEDS = 100
# The shipped regime study (`bench/regime.py`), read for the single-seed note.
STUDY = Path(__file__).resolve().parent.parent / "assets" / "benchmarks" / "regime.json"
# How to run more seeds, in the words of where the single-seed note is shown.
CLI_ADVICE = "run --seeds 3"
API_ADVICE = "run_study(..., seeds=3)"


def seed_specs(spec: ExperimentSpec, n: int) -> list[ExperimentSpec]:
    """`spec` at `n` seeds: training, crafting and SAL seeds each shifted by 0, 1, ..., n-1 (the first is `spec`).

    A provided poison's crafting seed is set back to 0 when it is resolved (nothing is crafted): its entry is one.
    """
    if not isinstance(n, int) or isinstance(n, bool) or not 1 <= n <= MAX_SEEDS:
        raise SpecError(f"the number of seeds = {n!r} is out of range; expected an integer in [1, {MAX_SEEDS}] "
                        f"(each seed trains a clean and a poisoned model)")
    return [spec.replace(train=spec.train.replace(seed=spec.train.seed + i),
                         poison=spec.poison.replace(seed=spec.poison.seed + i),
                         sal=spec.sal.replace(seed=spec.sal.seed + i)) if i else spec for i in range(n)]


def run_seeds(spec: ExperimentSpec, n: int, *, store: Store, device: torch.device | str = "cpu",
              progress: StageProgress = no_progress, workers: int = 1) -> list[ExperimentResult]:
    """`run_experiment` at each of the `n` seeds of `seed_specs(spec, n)`, in seed order (each cached on its own).

    `workers`: as in `run_experiment` (the chains of one seed side by side; the numbers do not depend on it).
    """
    return [run_experiment(s, store=store, device=device, progress=progress, workers=workers)
            for s in seed_specs(spec, n)]


def _finite(values: Sequence[float | None]) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


@dataclass(frozen=True, repr=False)
class Spread:
    """One measure over seeds. NaN/None values (e.g. an undefined UD) are kept in `values`, left out of the rest.

    Attributes:
        values: the per-seed values, in seed order.
    """

    values: tuple[float | None, ...]

    @property
    def n(self) -> int:
        """Seeds with a finite value (what mean and std rest on)."""
        return len(_finite(self.values))

    @property
    def mean(self) -> float:
        finite = _finite(self.values)
        return statistics.fmean(finite) if finite else float("nan")

    @property
    def std(self) -> float:
        """Sample standard deviation (n - 1); NaN with fewer than two finite values (no spread is known)."""
        finite = _finite(self.values)
        return statistics.stdev(finite) if len(finite) > 1 else float("nan")

    @property
    def low(self) -> float:
        finite = _finite(self.values)
        return min(finite) if finite else float("nan")

    @property
    def high(self) -> float:
        finite = _finite(self.values)
        return max(finite) if finite else float("nan")

    def text(self, spec: str = ".3f") -> str:
        """``0.682 ± 0.210 (3 seeds, 0.45–0.90)``; one seed: ``0.682 (1 seed)``; none finite: ``n/a (0 of 3 seeds)``."""
        if self.n == 0:
            return f"n/a (0 of {len(self.values)} seeds)"
        if self.n == 1:
            return f"{format(self.mean, spec)} (1 seed)"
        of = "" if self.n == len(self.values) else f" of {len(self.values)}"
        return (f"{format(self.mean, spec)} ± {format(self.std, spec)} ({self.n}{of} seeds, "
                f"{format(self.low, spec)}–{format(self.high, spec)})")

    def __repr__(self) -> str:
        return f"Spread({self.text()})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: mean, std (None when undefined), min, max, n (finite seeds), seeds (all) and the values."""
        def plain(x: float) -> float | None:
            return x if math.isfinite(x) else None

        return {"mean": plain(self.mean), "std": plain(self.std), "min": plain(self.low), "max": plain(self.high),
                "n": self.n, "seeds": len(self.values),
                "values": [None if v is None or not math.isfinite(float(v)) else float(v) for v in self.values]}


def spread_over_seeds(summaries: Sequence[Mapping[str, Any]],
                      measures: Sequence[str] = SEED_MEASURES) -> dict[str, Spread]:
    """The `Spread` of each measure over the per-seed summaries (`ExperimentResult.summary()` dicts)."""
    if not summaries:
        raise ValueError("no seeds to aggregate")
    missing = sorted({m for m in measures for s in summaries if m not in s})
    if missing:
        raise KeyError(f"the summaries lack the measure(s) {missing}; they have {sorted(summaries[0])}")
    return {m: Spread(tuple(None if s[m] is None else float(s[m]) for s in summaries)) for m in measures}


def seed_table(results: Sequence[ExperimentResult]) -> list[dict[str, Any]]:
    """One row per seed: its training seed, then its `SEED_MEASURES` (`ExperimentResult.summary()` values)."""
    summaries = [(r.spec.train.seed, r.summary()) for r in results]
    return [{"seed": seed, **{m: s[m] for m in SEED_MEASURES}} for seed, s in summaries]


def seed_summary(results: Sequence[ExperimentResult], *, advice: str = CLI_ADVICE,
                 resolved: bool = False) -> dict[str, Any]:
    """What the CLI's ``--json`` and `Study.summary()` add about seeds: count, seeds, spreads, one-seed note.

    `reported_seed` names the seed whose measures sit beside it (the point values and per-epoch flags: the first
    seed's); the mean and std over all seeds are under `spread`. `advice` and `resolved`: as in
    `single_seed_note` (of the first seed's spec).
    """
    spreads = spread_over_seeds([r.summary() for r in results])
    return {"n_seeds": len(results), "seeds": [r.spec.train.seed for r in results],
            "reported_seed": results[0].spec.train.seed,
            "spread": {k: v.to_dict() for k, v in spreads.items()},
            "seed_note": single_seed_note(results[0].spec, advice=advice, resolved=resolved) if len(results) == 1
            else None}


# ------------------------------------------------------------------------------------------------ study


def _setting(spec: Mapping[str, Any], *, loose: bool = False, any_poison: bool = False) -> str:
    """What identifies a setting of the study in an `ExperimentSpec.to_dict()`: everything but the seeds.

    `loose` also ignores how often SAL was measured (`SALSpec.every`), `any_poison` the poison. As canonical
    JSON, so a spec read back from a file (lists for tuples) compares equal.
    """
    drop = {"seed", "every"} if loose else {"seed"}
    parts = ("data", "model", "train", "sal", "defense") if any_poison else ("data", "model", "train", "poison",
                                                                               "sal", "defense")

    def unseeded(part: Any) -> Any:
        return {k: v for k, v in part.items() if k not in drop} if isinstance(part, Mapping) else part

    return json.dumps({name: unseeded(spec.get(name)) for name in parts}, sort_keys=True, default=list)


def _study_file(path: Path | None) -> dict[str, Any]:
    """The regime study at `path` (default `STUDY`, the shipped one) as read; {} if it is not there or not readable."""
    try:
        data = json.loads((path or STUDY).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _cells(data: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [r for r in data.get("cells") or [] if isinstance(r, dict) and isinstance(r.get("spec"), dict)]


def study_rows(path: Path | None = None) -> list[dict[str, Any]]:
    """The cells of the regime study at `path` (default `STUDY`, the shipped one), each with its `spec` and `ud`.

    [] if it is not there or not readable.
    """
    return _cells(_study_file(path))


def study_spread(spec: ExperimentSpec, rows: Sequence[Mapping[str, Any]], *, loose: bool = False,
                 resolved: bool = False) -> Spread | None:
    """UD over the seeds the study ran of `spec`'s setting (same everything but the seeds), None if it did not.

    `loose`: a setting that differs from `spec` in how often SAL was measured counts too. `resolved`: `spec` is
    resolved already (`resolve_experiment`), so nothing is read (resolving reads a user data set's file).
    """
    want = _setting((spec if resolved else resolve_experiment(spec)).to_dict(), loose=loose)
    values = tuple(r.get("ud") for r in rows if _setting(r["spec"], loose=loose) == want)
    return Spread(values) if values else None


def study_methods(spec: ExperimentSpec, rows: Sequence[Mapping[str, Any]]) -> dict[str, Spread]:
    """UD over seeds of every method the study ran on `spec`'s setting whatever the poison (SAL at any epochs).

    What the app's UD page shows beside its point value; {} when the study did not run the setting.
    """
    want = _setting(resolve_experiment(spec).to_dict(), loose=True, any_poison=True)
    by_method: dict[str, list[float | None]] = {}
    for r in rows:
        if _setting(r["spec"], loose=True, any_poison=True) == want:
            by_method.setdefault(r["spec"]["poison"]["method"], []).append(r.get("ud"))
    return {m: Spread(tuple(v)) for m, v in by_method.items()}


def setting_label(spec: Mapping[str, Any]) -> str:
    """A study setting in words, from an `ExperimentSpec.to_dict()`.

    E.g. ``digits / cnn / sgd lr 0.05 / 30 epochs / SAL baseline fresh``.
    """
    t, sal = spec["train"], spec["sal"]
    return (f"{spec['data']['name']} / {spec['model']['name']} / {t['optimizer']} lr {t['lr']:g} / {t['epochs']} "
            f"epochs / SAL baseline {sal['baseline']}")


def study_settings(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Spread]]:
    """Every setting of the study by `setting_label`, each with UD over seeds per method (in the study's order)."""
    grouped: dict[str, dict[str, list[float | None]]] = {}
    for r in rows:
        methods = grouped.setdefault(setting_label(r["spec"]), {})
        methods.setdefault(r["spec"]["poison"]["method"], []).append(r.get("ud"))
    return {label: {m: Spread(tuple(v)) for m, v in methods.items()} for label, methods in grouped.items()}


def study_shares(label: str, path: Path | None = None) -> dict[str, dict[str, Any]]:
    """(ours) The study's per-epoch layer shares on the setting `label` (`setting_label`), by method.

    Each: {"layers", "epochs", "clean", "poisoned"}, the (T, L) share of each layer in its epoch's SAL, mean over
    the seeds (`bench/regime.py`); {} when the file has none for that setting.
    """
    data = _study_file(path)
    labels = {(r.get("block"), r.get("baseline")): setting_label(r["spec"]) for r in _cells(data)}
    return {e["method"]: e for e in data.get("per_epoch_shares", [])
            if labels.get((e.get("block"), e.get("baseline"))) == label}


def study_separating(dataset: str, baseline: str = "running", path: Path | None = None) -> dict[str, list[str]]:
    """The study's settings on `dataset` (its "blocks": data/model/recipe), each with the UEs that separate there.

    A UE separates when its UD and random noise's differ by more than their spreads over the seeds
    (`bench/regime.py`'s rule, fixed before the grid ran: the one-std intervals do not overlap). With SAL's
    `baseline`; in the study's order; {} when no study is shipped or it ran nothing on `dataset`.
    """
    found: dict[str, list[str]] = {}
    for row in _study_file(path).get("settings", []):
        block = str(row.get("block", ""))
        if block.split("/")[0] == dataset and row.get("baseline") == baseline and row.get("method") != "random":
            found.setdefault(block, []).extend([row["method"]] if row.get("separated") else [])
    return found


def single_seed_note(spec: ExperimentSpec, path: Path | None = None, *, advice: str = CLI_ADVICE,
                     resolved: bool = False) -> str:
    """The plain note shown beside a one-seed UD: it is unstable, and by how much (from the regime study).

    `advice`: how to run more seeds where the note is shown (`CLI_ADVICE`, the CLI's; `API_ADVICE`, the Python
    API's). `resolved`: `spec` is resolved already (a `Study`'s), so its data need not be there (`study_spread`).
    """
    head = "UD from a single seed is unstable: another seed (or another CPU) can move it a lot."
    tail = f"Run 3 or more seeds ({advice}) to see the spread here."
    rows = study_rows(path)
    for loose, how in ((False, ""), (True, " (SAL measured at other epochs)")):
        here = study_spread(spec, rows, loose=loose, resolved=resolved)
        if here is not None and here.n > 1:
            return f"{head} On this setting{how} the regime study (bench/regime.py) measured UD {here.text()}. {tail}"
    by_setting: dict[str, list[float | None]] = {}
    for r in rows:  # each row's setting once: thousands of rows
        by_setting.setdefault(_setting(r["spec"]), []).append(r.get("ud"))
    stds = [spread.std for spread in (Spread(tuple(v)) for v in by_setting.values()) if spread.n > 1]
    if stds:
        return (f"{head} The regime study did not run this setting; over its {len(stds)} settings the seed-to-seed "
                f"standard deviation of UD was {min(stds):.2f} to {max(stds):.2f} (median "
                f"{statistics.median(stds):.2f}). {tail}")
    return f"{head} {tail}"


__all__ = ["API_ADVICE", "CLI_ADVICE", "MEASURE_LABELS", "SEED_MEASURES", "STUDY", "Spread", "run_seeds",
           "seed_specs", "seed_summary", "seed_table", "single_seed_note", "setting_label", "spread_over_seeds",
           "study_methods", "study_rows", "study_separating", "study_settings", "study_shares", "study_spread"]
