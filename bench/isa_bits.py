"""Do the kernels' instruction sets change a run's bits, and does reproducible mode make them equal? (#18)

Runs the issue's experiment, `python -m landscape [--reproducible] run --method em --epochs N --json`, in a fresh
process and a fresh store per setting, on this one machine. Kernel caps stand in for other CPUs:

    native       this CPU's own kernels
    avx512core   oneDNN capped at AVX512_CORE: an AVX-512 CPU without AMX/FP16 (Skylake-SP .. Ice Lake)
    avx2         ATen, oneDNN, MKL and NumPy capped at AVX2: a CPU without AVX-512 (Haswell .. Alder Lake, Zen 1-3)

each plain and in reproducible mode (`UE_LANDSCAPE_REPRODUCIBLE=1`); and `aten-avx2`, `onednn-avx2`, `mkl-avx2`,
`numpy-avx2` cap one library at a time (which kernels decide the bits). It compares every stored checkpoint of the
clean and the poisoned run with the first setting's, bit for bit (and max |Δw| after the first and the last
epoch), the crafted poison, and the headline numbers (UD, β, accuracies). Caps above this CPU's own level are
skipped. A cap can only remove instruction sets, so what this shows is whether the ISA decides the bits; other
differences between real CPUs (cache sizes that change oneDNN's blocking, AMD vs Intel in MKL) are not tested.

Usage: python bench/isa_bits.py [--epochs 30] [--settings native,avx2,...] [--method em] [--out isa_bits]
Writes bench/results/<out>.jsonl (one row per setting) and prints a table and a one-line summary.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from landscape.device import cpu_level, numeric_environment_line
from landscape.store import Store

ROOT = Path(__file__).resolve().parents[1]
NPY_NO_AVX512 = "AVX512F AVX512CD AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR"
CAPS: dict[str, tuple[str, dict[str, str]]] = {
    "native": ("v3", {}),
    "avx512core": ("v4", {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE"}),
    "avx2": ("v3", {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
                    "NPY_DISABLE_CPU_FEATURES": NPY_NO_AVX512}),
    # one library capped at a time: which kernels decide the bits
    "aten-avx2": ("v3", {"ATEN_CPU_CAPABILITY": "avx2"}),
    "onednn-avx2": ("v3", {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "mkl-avx2": ("v3", {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    "numpy-avx2": ("v3", {"NPY_DISABLE_CPU_FEATURES": NPY_NO_AVX512}),
}
KERNEL_VARS = ("ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
               "NPY_DISABLE_CPU_FEATURES", "UE_LANDSCAPE_REPRODUCIBLE")
DEFAULT_SETTINGS = "native,avx512core,avx2,native+repro,avx512core+repro,avx2+repro"


def run_setting(setting: str, args: argparse.Namespace, store: Path) -> dict[str, Any]:
    """One fresh process of the experiment under `setting` ("<cap>" or "<cap>+repro"); its summary and timing."""
    cap, _, mode = setting.partition("+")
    env = {k: v for k, v in os.environ.items() if k not in KERNEL_VARS} | CAPS[cap][1]
    argv = [sys.executable, "-m", "landscape", *(["--reproducible"] if mode == "repro" else []), "run",
            "--method", args.method, "--epochs", str(args.epochs), "--device", "cpu", "--store", str(store), "--json"]
    started = time.perf_counter()
    out = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, env=env, check=False)
    if out.returncode != 0:
        raise SystemExit(f"{setting} failed:\n{out.stderr[-3000:]}")
    summary = json.loads(out.stdout)
    return {"setting": setting, "wall_s": time.perf_counter() - started, "ud": summary["ud"],
            "beta": summary["beta"], "clean_test_acc": summary["clean_test_acc"],
            "poisoned_test_acc": summary["poisoned_test_acc"], "lp_clean": summary["lp_clean"],
            "lp_poisoned": summary["lp_poisoned"]}


def stored_arrays(store: Path) -> dict[str, dict[str, np.ndarray]]:
    """{"poison": arrays, "clean": run arrays, "<method>": run arrays} of one setting's store."""
    s, found = Store(store), {}
    for stage in ("poison", "train"):
        for key in s.keys(stage):
            record = json.loads((s.path(stage, key) / "meta.json").read_text())
            entry = s.load(stage, key)
            name = "poison" if stage == "poison" else record["spec"]["poison"]["method"]
            found[name] = {k: v for k, v in entry.arrays.items() if "seconds" not in k}  # timings are not results
            found[name + ":environment"] = record["environment"]
    return found


def compare(base: dict[str, Any], other: dict[str, Any], method: str) -> dict[str, Any]:
    """Bitwise equality per stored result, and max |Δw| of the runs' weights after the first and the last epoch."""
    out: dict[str, Any] = {}
    for name in ("poison", "clean", method):
        a, b = base[name], other[name]
        out[f"{name}_bits_equal"] = a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
        if name != "poison":
            last = max(int(k.split("/")[1]) for k in a if k.startswith("ckpt/"))
            for epoch in (1, last):
                keys = [k for k in a if k.startswith(f"ckpt/{epoch}/")]
                out[f"{name}_max_dw_epoch{epoch}"] = max(float(np.abs(a[k] - b[k]).max()) for k in keys)
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--method", default="em")
    p.add_argument("--settings", default=DEFAULT_SETTINGS)
    p.add_argument("--out", default="isa_bits", help="results file name under bench/results (no suffix)")
    a = p.parse_args()
    level = cpu_level()
    settings = [s for s in a.settings.split(",") if CAPS[s.partition("+")[0]][0] <= level or s.startswith("native")]
    print(f"# {numeric_environment_line()}\n# load average at start: {os.getloadavg()}")
    rows, arrays = [], {}
    with tempfile.TemporaryDirectory(prefix="isa-bits-") as tmp:
        for setting in settings:
            store = Path(tmp) / setting
            row = run_setting(setting, a, store)
            arrays[setting] = stored_arrays(store)
            row["kernels"] = {k: v for k, v in arrays[setting][a.method + ":environment"].items()
                              if k in ("aten_capability", "onednn_isa", "mkl_cbwr", "reproducible")}
            row.update(compare(arrays[settings[0]], arrays[setting], a.method))
            row.update(epochs=a.epochs, method=a.method, load_avg=os.getloadavg()[0])
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = ROOT / "bench" / "results" / f"{a.out}.jsonl"
    out.parent.mkdir(exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows))
    print(f"\n{'setting':<18} {'UD':>6} {'clean acc':>9} {'pois. acc':>9}  bits = {settings[0]}? "
          f"(poison, clean, {a.method})  max|Δw| clean e1 / e{a.epochs}")
    for r in rows:
        bits = ", ".join("yes" if r[f"{n}_bits_equal"] else "no" for n in ("poison", "clean", a.method))
        print(f"{r['setting']:<18} {r['ud']:>6.3f} {r['clean_test_acc']:>9.4f} {r['poisoned_test_acc']:>9.4f}  "
              f"{bits:<16} {r['clean_max_dw_epoch1']:.2g} / {r[f'clean_max_dw_epoch{a.epochs}']:.2g}")
    pinned = [s for s in settings if s.endswith("+repro")]
    names = ("poison", "clean", a.method)
    pinned_equal = all(compare(arrays[pinned[0]], arrays[s], a.method)[f"{n}_bits_equal"]
                       for s in pinned[1:] for n in names)
    plain = "; ".join(f"{r['setting']} {r['ud']:.3f}" for r in rows if "+" not in r["setting"])
    verdict = (f"reproducible mode gives {'identical' if pinned_equal else 'DIFFERENT'} bits under "
               f"{', '.join(pinned)} (UD {rows[settings.index(pinned[0])]['ud']:.3f})" if len(pinned) > 1 else "")
    print(f"SUMMARY {a.method}, {a.epochs} epochs: plain UD {plain}" + (f"; {verdict}" if verdict else ""))


if __name__ == "__main__":
    main()
