"""A new data set and a new model need one registration each and no other edit (#12, acceptance 4).

`tests/plugin.py` registers a generated 16x16 three-channel data set and a non-Sequential two-branch net through
`DATASETS.register` / `MODELS.register`; a fresh interpreter imports it and runs the CLI's `run` (poison crafted
with the new net as EM's surrogate, clean and poisoned training, SAL, UD) and `surface` on them.
"""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
WEIGHT_LAYERS = ["stem.0.weight", "block.branch_a.0.weight", "block.branch_a.3.weight", "block.branch_b.0.weight",
                 "head.weight"]  # the five Conv2d/Linear layers of tests.fixtures.ResidualTwoBranchNet
DATA_MODEL = ["--dataset", "rgb16", "--model", "twobranch", "--epochs", "3"]
EM_WITH_THE_NEW_NET = ["--method", "em", "--eps", "0.25", "--option", "surrogate=twobranch", "--option", "max_loops=2",
                       "--option", "train_steps=5", "--option", "pgd_steps=3"]


def cli(*args: str) -> dict:
    """Run `python -m landscape ARGS --json` with the plugin registered first; the parsed JSON."""
    code = ("import sys, tests.plugin\nfrom landscape.cli import main\n"
            f"sys.exit(main({list(args) + ['--json']!r}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def test_a_registered_data_set_and_model_run_through_the_cli_and_the_surfaces(tmp_path):
    store = str(tmp_path / "store")
    run = cli("run", *DATA_MODEL, *EM_WITH_THE_NEW_NET, "--store", store)
    assert (run["dataset"], run["model"], run["epochs"]) == ("rgb16", "twobranch", 3)
    assert run["layers"] == WEIGHT_LAYERS  # SAL found every layer of the non-Sequential net
    assert len(run["counts_clean"]) == len(run["counts_poisoned"]) == 3
    assert dict(map(tuple, run["spec"]["poison"]["options"]))["surrogate"] == "twobranch"
    assert run["ud_defined"] and np.isfinite(run["ud"]) and 0 <= run["poisoned_test_acc"] <= 1
    assert run["clean_test_acc"] != run["poisoned_test_acc"]  # the poison changed what was learnt

    out = tmp_path / "surface.html"
    # `surface` takes a method by name at its default settings (no --option): the model-free baseline
    surface = cli("surface", *DATA_MODEL, "--method", "random", "--kind", "pca", "--resolution", "3", "--n-eval", "40",
                  "--store", store, "--out", str(out))
    assert out.exists() and out.with_suffix(".npz").exists()
    with np.load(out.with_suffix(".npz"), allow_pickle=False) as arrays:
        loss = arrays["shared/loss"]  # (alpha, beta) grid of the shared PCA plane
        epochs = {run: arrays[f"shared/path/{run}/epochs"].tolist() for run in ("clean", "random")}
    assert loss.shape == (3, 3) and np.isfinite(loss).all() and loss.min() > 0 and loss.std() > 0  # not constant
    assert epochs == {"clean": [0, 1, 2, 3], "random": [0, 1, 2, 3]}  # both trajectories projected, init included
    shared = surface["surfaces"]["shared"]
    assert shared["grid"] == [3, 3] and shared["non_finite"] == 0
    assert shared["min_loss"] == float(loss.min()) and shared["max_loss"] == float(loss.max())
