"""`python -m landscape run`: clean vs poisoned training with SAL every epoch, then β, counts and UD.

Example: `python -m landscape run --method em --epochs 10 --out report.html` prints the table and writes the
figures the app shows for the experiment (training curves, SAL heatmaps, SAL distribution, learnable layers, UD's
counts) as one self-contained page; `--out sal.csv` writes one row per run, epoch and layer (SAL with its parts,
the learnable flag, β_t and β: `ExperimentResult.sal_table`), `--out run.json` the object `--json` prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from landscape import jsontext
from landscape.commands import COMMANDS, Command
from landscape.commands.common import add_experiment_args, experiment_specs, output_file, print_json, working
from landscape.commands.craft import add_poison_args, poison_spec
from landscape.config import SAL_PRESETS, ExperimentSpec, SALSpec, choices
from landscape.display import experiment_title, number
from landscape.experiment import ExperimentResult
from landscape.files import atomic_write
from landscape.seeds import MEASURE_LABELS, run_seeds, seed_summary, seed_table, spread_over_seeds
from landscape.spec import plural
from landscape.stages.pool import default_workers, parse_workers

# --sal-* flag -> SALSpec field (None = keep the preset's value)
SAL_FLAGS = ("eps", "rounds", "lr", "batch_size", "engine", "eval_size", "baseline", "every", "seed")
OUT_FORMATS = (".html", ".csv", ".json")


def add_sal_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("SAL", "how SAL is measured (a preset, then any field overridden)")
    g.add_argument("--sal", default="fast", choices=SAL_PRESETS,
                   help="preset: fast (default, checked against the paper's procedure) or paper (the authors')")
    g.add_argument("--sal-eps", type=float, default=None, help="relative ball radius (0.05)")
    g.add_argument("--sal-rounds", type=int, default=None, help="K, rounds per inner problem (fast 2, paper 10)")
    g.add_argument("--sal-lr", type=float, default=None, help="SGD lr of the inner problems (fast 0.2, paper 0.1)")
    g.add_argument("--sal-batch-size", type=int, default=None, help="batch size of a SAL pass (default: trainer's)")
    g.add_argument("--sal-engine", default=None, choices=choices(SALSpec, "engine"))
    g.add_argument("--sal-eval-size", type=int, default=None, help="batched engine: SAL subset size (fast 1024)")
    g.add_argument("--sal-baseline", default=None, choices=choices(SALSpec, "baseline"), help="L_0 of SAL")
    g.add_argument("--sal-every", type=int, default=None, help="measure every this many epochs")
    g.add_argument("--sal-seed", type=int, default=None)


def sal_spec(a: argparse.Namespace) -> SALSpec:
    base = SALSpec.preset(a.sal)
    changes = {name: getattr(a, f"sal_{name}") for name in SAL_FLAGS if getattr(a, f"sal_{name}") is not None}
    return base.replace(**changes) if changes else base


def add_arguments(p: argparse.ArgumentParser) -> None:
    add_experiment_args(p)
    add_poison_args(p)
    add_sal_args(p)
    p.add_argument("--seeds", type=int, default=1,
                   help="run this many seeds (--seed, --seed + 1, ...; crafting and SAL seeds shifted alike) and "
                        "report UD, β, #LP and the threshold-free measures as mean ± std over them (default 1); with "
                        "--json the top-level measures are the first seed's (reported_seed) and each measure's "
                        "values, mean and std over the seeds are under spread")
    p.add_argument("--workers", default="auto",
                   help="processes computing the two independent chains side by side (the clean run with its SAL; "
                        "crafting, then the poisoned run with its SAL), one torch thread each, on the CPU: 'auto' "
                        f"(default: 2, or 1 on a one-CPU machine; {default_workers()} here) or N; 1 = one after the "
                        "other in this process. The numbers are the same bit for bit whatever the count")
    p.add_argument("--out", default=None,
                   help=f"also write the results to a file ending in {', '.join(OUT_FORMATS)} (default: none): "
                        ".html = one self-contained page of the app's figures of this experiment (training curves, "
                        "SAL heatmaps and distribution, learnable layers, UD's counts; SAL on a log10 scale) with its "
                        "headline numbers; .csv = one row per seed, run, SAL epoch and layer (SAL, its two sides, "
                        "L_0, accuracy SAL, learnable flag, β_t of the epoch, β); .json = the object --json prints. "
                        "With --seeds N > 1 the page's figures are the first seed's, with a table of every seed, "
                        "the spread over them and UD over the seeds; the csv holds every seed's rows, the json every "
                        "measure's values over the seeds (spread)")


def _fmt(x: float | None, spec: str = ".3f") -> str:
    return number(x, spec)  # the text table's default: 3 decimals


def title(result: ExperimentResult, seeds: int) -> str:
    """The report's title: data set, model, method, epochs, SAL preset (and the seeds)."""
    text = experiment_title(result.summary())
    return text + (f", {plural(seeds, 'seed')} (figures: seed {result.spec.train.seed})" if seeds > 1 else "")


def print_report(result: ExperimentResult) -> None:
    s = result.summary()
    ud = result.ud
    print(title(result, 1))
    print(f"test accuracy: clean {_fmt(s['clean_test_acc'])}, poisoned {_fmt(s['poisoned_test_acc'])}   "
          f"(train accuracy: clean {_fmt(s['clean_train_acc'])}, poisoned {_fmt(s['poisoned_train_acc'])})")
    layers = list(result.sal_clean.layers)
    print(f"learnable threshold β = {_fmt(ud.beta, '.6g')}  (KMeans k=2 midpoint per clean epoch, mean)")
    print(f"{'epoch':>5} {'β_t':>10} {'#LP clean':>9} {'#LP pois.':>9}  learnable layers (clean | poisoned)")
    rows = max(len(ud.counts_clean), len(ud.counts_poisoned))
    for t in range(rows):
        epochs = ud.epochs_clean if t < len(ud.counts_clean) else ud.epochs_poisoned
        cols = []
        for counts, flags in ((ud.counts_clean, ud.flags_clean), (ud.counts_poisoned, ud.flags_poisoned)):
            cols.append((_fmt(counts[t], ".0f"), "".join("x" if f else "." for f in flags[t]))
                        if t < len(counts) else ("", ""))
        beta_t = _fmt(ud.betas[t], ".4g") if t < len(ud.betas) else ""
        print(f"{int(epochs[t]):>5} {beta_t:>10} {cols[0][0]:>9} {cols[1][0]:>9}  {cols[0][1]} | {cols[1][1]}")
    print(f"layers: {', '.join(layers)}")
    print(f"#LP clean = {_fmt(ud.lp_clean)}, #LP poisoned = {_fmt(ud.lp_poisoned)}")
    if ud.ud_defined:
        print(f"UD = {ud.ud:.3f}  (1 = as learnable as clean; lower = more unlearnable)")
    else:
        print(f"UD undefined: {ud.message}")
    print(f"ours, threshold-free: mean SAL ratio poisoned/clean = {_fmt(ud.mean_ratio_overall)}, "
          f"W1(clean, poisoned SAL) = {_fmt(ud.w1_overall, '.4g')}")
    for note in ud.notes:
        print(f"note: {note}")
    for label, run in (("clean", result.clean), ("poisoned", result.poisoned)):
        if run.diverged:
            print(f"warning ({label}): {run.diverged}")


def print_seed_table(results: list[ExperimentResult], spreads: dict) -> None:
    """One line per seed, then every measure as mean ± std over the seeds (the seed count shown)."""
    print(f"\n{plural(len(results), 'seed')} (training, crafting and SAL seeds shifted together; the per-epoch "
          f"report above is seed {results[0].spec.train.seed}'s):")
    print(f"{'seed':>5} {'UD':>7} {'β':>10} {'#LP c':>6} {'#LP p':>6} {'W1':>9} {'ratio':>6} {'acc c':>6} {'acc p':>6}")
    for s in seed_table(results):
        print(f"{s['seed']:>5} {_fmt(s['ud']):>7} {_fmt(s['beta'], '.4g'):>10} {_fmt(s['lp_clean'], '.2f'):>6} "
              f"{_fmt(s['lp_poisoned'], '.2f'):>6} {_fmt(s['w1_overall'], '.3g'):>9} "
              f"{_fmt(s['mean_ratio_overall'], '.3f'):>6} {_fmt(s['clean_test_acc'], '.3f'):>6} "
              f"{_fmt(s['poisoned_test_acc'], '.3f'):>6}")
    for key, label in MEASURE_LABELS.items():
        print(f"{label:>22}: {spreads[key].text('.4g' if key in ('beta', 'w1_overall') else '.3f')}")


def write_report(results: list[ExperimentResult], summary: dict[str, Any], out: Path) -> None:
    """The .html page: a row per seed (and the spread over them), notes, the first seed's figures (and UD by seed).

    The measures are named by their labels (`landscape.seeds.MEASURE_LABELS`, as the text seed table names them).
    """
    from landscape import figures
    from landscape.commands.common import write_html

    result, method = results[0], results[0].spec.poison.method
    tables: dict[str, Any] = {"Headline numbers per seed": [{MEASURE_LABELS.get(k, k): v for k, v in row.items()}
                                                            for row in seed_table(results)]}
    shown = list(figures.experiment_figures(result, log=True).values())
    if len(results) > 1:
        spread = summary["spread"]
        tables["Over the seeds"] = [{"measure": MEASURE_LABELS[m], **{k: v for k, v in d.items() if k != "values"}}
                                    for m, d in spread.items()]
        shown.append(figures.ud_seed_spread({method: spread["ud"]["values"]}, point={method: result.ud.ud}))
    notes = [note for note in (result.ud.message, *result.ud.notes, summary["seed_note"]) if note]
    write_html(shown, out, title(result, len(results)), notes=notes, tables=tables)


def write_out(results: list[ExperimentResult], summary: dict[str, Any], out: Path) -> None:
    """Write `out` in the format of its suffix (`OUT_FORMATS`); see ``--out``'s help."""
    from landscape.commands.common import write_output
    from landscape.export import write_table_csv

    write_output(out, {
        ".html": lambda p: write_report(results, summary, p),
        ".csv": lambda p: write_table_csv([{"seed": r.spec.train.seed, **row} for r in results
                                           for row in r.sal_table()], p),
        ".json": lambda p: atomic_write(p, jsontext.dumps(summary) + "\n"),
    })


def run(a: argparse.Namespace) -> int:
    out = output_file(a.out, "--out", OUT_FORMATS, "report.html")  # before any training
    data, model, train = experiment_specs(a)
    spec = ExperimentSpec(data=data, model=model, train=train, poison=poison_spec(a), sal=sal_spec(a))
    workers = parse_workers(a.workers)
    with working(a) as (store, device, progress):
        results = run_seeds(spec, a.seeds, store=store, device=device, progress=progress, workers=workers)
    result, seeds = results[0], seed_summary(results)
    summary = {**result.summary(), "device": str(device), "spec": spec.to_dict(),
               "flags_clean": result.ud.flags_clean.tolist(), "flags_poisoned": result.ud.flags_poisoned.tolist(),
               "betas": result.ud.betas.tolist(), **seeds, **({"out": str(out)} if out is not None else {})}
    if out is not None:
        write_out(results, summary, out)
    if a.json:
        print_json(summary)
    else:
        print_report(result)
        if seeds["seed_note"]:
            print(f"note: {seeds['seed_note']}")
        else:
            print_seed_table(results, spread_over_seeds([r.summary() for r in results]))
        if out is not None:
            print(f"wrote {out}")
    return 1 if any(r.clean.diverged or r.poisoned.diverged for r in results) else 0


COMMANDS.register("run")(Command("train clean and poisoned with SAL every epoch; print β, counts and UD",
                                 add_arguments, run))
