"""Compare a shipped UD benchmark with the literature: method rankings and the paper's qualitative findings.

Reads the benchmark JSON written by `python -m landscape bench` and prints a Markdown section:

- the ranking of the methods by clean test accuracy after poisoning (no defense), next to APBench's CIFAR-10
  ResNet-18 leaderboard ("Standard" column, `/work/shared/reference/ue_methods.md` §3.4), with Spearman's rho
  over the methods both contain;
- the ranking by UD, and whether UD agrees with accuracy on our data (Spearman's rho, the paper's claim that
  UD is "consistent with test accuracy");
- the paper's findings (Ye et al., ICLR 2025, §5): "defenses increase UD; JPEG raises it the most" and
  "TAP has UD > 1", checked cell by cell against the table.

Usage: python bench/ud_compare.py [assets/benchmarks/ud_digits_cnn.json] [--out bench/results/ud_digits_compare.md]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from landscape.bench import read_summary

# APBench leaderboard, CIFAR-10, ResNet-18, 100 % poisoned, clean test accuracy % (Qin et al., TMLR 2024).
APBENCH_STANDARD = {"tap": 6.27, "ar": 11.74, "lsp": 13.06, "ops": 14.69, "rem": 17.47, "em": 20.78,
                    "hypo": 70.38}
APBENCH = {  # (Standard, Cutout, JPEG, AT) for the defenses the digits table may contain
    "em": {"none": 20.78, "cutout": 18.79, "jpeg": 80.72, "at": 82.51},
    "rem": {"none": 17.47, "cutout": 21.96, "jpeg": 85.44, "at": 77.46},
    "hypo": {"none": 70.38, "cutout": 69.04, "jpeg": 85.21, "at": 81.49},
    "tap": {"none": 6.27, "cutout": 9.88, "jpeg": 84.08, "at": 79.92},
    "lsp": {"none": 13.06, "cutout": 14.96, "jpeg": 80.14, "at": 81.38},
    "ar": {"none": 11.74, "cutout": 10.95, "jpeg": 84.75, "at": 81.15},
    "ops": {"none": 14.69, "cutout": 52.98, "jpeg": 78.48, "at": 14.95},
}


def _rank(values: dict[str, float]) -> list[str]:
    return sorted(values, key=lambda k: (values[k], k))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("path", nargs="?", default="assets/benchmarks/ud_digits_cnn.json")
    p.add_argument("--out", default=None)
    a = p.parse_args()
    data = read_summary(a.path)
    summary = data["summary"]
    s = {(r["method"], r["defense"]): r for r in summary}
    methods = list(data["spec"]["methods"])
    defenses = data["spec"]["defenses"]
    base = defenses[0]
    lines = [f"## Comparison with the literature ({Path(a.path).name})", ""]

    acc = {m: s[(m, base)]["acc_mean"] * 100 for m in methods}
    ud = {m: s[(m, base)]["ud_mean"] for m in methods}
    shared = [m for m in methods if m in APBENCH_STANDARD]
    lines.append(f"Ranking without defense (`{base}`), most effective first (lowest clean test accuracy / lowest UD):")
    lines.append("")
    lines.append("| rank | ours by accuracy | acc % | ours by UD | UD | APBench CIFAR-10 by accuracy | acc % |")
    lines.append("|---:|---|---:|---|---:|---|---:|")
    ra, ru, rl = _rank(acc), _rank(ud), _rank(APBENCH_STANDARD)
    for i in range(max(len(ra), len(rl))):
        c1 = (ra[i], f"{acc[ra[i]]:.1f}") if i < len(ra) else ("", "")
        c2 = (ru[i], f"{ud[ru[i]]:.3f}") if i < len(ru) else ("", "")
        c3 = (rl[i], f"{APBENCH_STANDARD[rl[i]]:.2f}") if i < len(rl) else ("", "")
        lines.append(f"| {i + 1} | {c1[0]} | {c1[1]} | {c2[0]} | {c2[1]} | {c3[0]} | {c3[1]} |")
    lines.append("")
    rho_acc = spearmanr([acc[m] for m in shared], [APBENCH_STANDARD[m] for m in shared]).statistic
    rho_ud_lit = spearmanr([ud[m] for m in shared], [APBENCH_STANDARD[m] for m in shared]).statistic
    rho_ud_acc = spearmanr([ud[m] for m in methods], [acc[m] for m in methods]).statistic
    lines.append(f"- Spearman rho, our accuracy vs APBench accuracy over the {len(shared)} shared methods "
                 f"({', '.join(shared)}): **{rho_acc:.2f}**.")
    lines.append(f"- Spearman rho, our UD vs APBench accuracy (same methods): **{rho_ud_lit:.2f}**.")
    lines.append(f"- Spearman rho, our UD vs our accuracy (all {len(methods)} methods; the paper says UD is "
                 f"consistent with test accuracy, i.e. rho > 0): **{rho_ud_acc:.2f}**.")
    lines.append("")

    if "tap" in methods:
        t = s[("tap", base)]
        if t["ud_mean"] - t["ud_std"] > 1:
            verdict = "agrees (more than one standard deviation above 1)"
        elif t["ud_mean"] > 1:
            verdict = "agrees in the mean, but 1 is within one standard deviation over the seeds"
        else:
            verdict = "does not agree"
        lines.append(f"- Paper: TAP has UD > 1. Ours (`{base}`): TAP UD = {t['ud_mean']:.3f} ± {t['ud_std']:.3f} "
                     f"-> {verdict}.")
    others = [d for d in defenses if d != base]
    if others:
        rises = {d: {m: s[(m, d)]["ud_mean"] - s[(m, base)]["ud_mean"] for m in methods} for d in others}
        mean_rise = {d: float(np.nanmean(list(rises[d].values()))) for d in others}
        best = max(mean_rise, key=mean_rise.get)
        wins = {d: sum(1 for m in methods if all(rises[d][m] >= rises[o][m] for o in others)) for d in others}
        ups = {d: sum(1 for m in methods if rises[d][m] > 0) for d in others}
        verdict = (f"largest mean rise: **{best}**" if mean_rise[best] > 0
                   else "**no defense raises UD on average**")
        lines.append("- Paper: defenses increase UD, JPEG the most. Mean UD change vs no defense over the methods: "
                     + ", ".join(f"{d} {mean_rise[d]:+.3f} (up for {ups[d]} of {len(methods)})" for d in others)
                     + f"; {verdict}; per method, the defense with the largest change: "
                     + ", ".join(f"{d} for {wins[d]}" for d in others) + f" of {len(methods)} methods.")
        for d in others:
            acc_gain = {m: (s[(m, d)]["acc_mean"] - s[(m, base)]["acc_mean"]) * 100 for m in methods}
            lit = [m for m in methods if m in APBENCH and d.split("(")[0] in APBENCH[m]]
            lit_gain = {m: APBENCH[m][d.split("(")[0]] - APBENCH[m]["none"] for m in lit}
            lines.append(f"- Accuracy recovered by {d} (points, ours / APBench CIFAR-10): "
                         + ", ".join(f"{m} {acc_gain[m]:+.1f}"
                                     + (f" / {lit_gain[m]:+.1f}" if m in lit_gain else "") for m in methods)
                         + ".")
    lines.append("")
    text = "\n".join(lines)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
