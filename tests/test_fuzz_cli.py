"""#18 acceptance 1: bad input to any command ends in one clear line, never a traceback, and leaves nothing behind.

A table of hostile and careless inputs across every command (bad numbers, names, seeds and subset sizes, empty
and unexpandable paths, a store or output that is a file, a read-only folder or an existing folder, broken data
files). Each case runs `landscape.cli.main` in this process (fast) in an empty working folder, with the store
variable pointing at a folder that does not exist yet; it must return a non-zero status with exactly one line on
stderr that says "error" and names what was wrong (the case's `needle`), print no traceback, and leave no file in
the working folder, the store, or anywhere in the prepared world of paths. A few cases run `python -m landscape`
as a real subprocess. `test_every_command_is_fuzzed` keeps the table honest when a command is added.

"Read-only" is real: as root (who ignores permission bits) the folder is made immutable with `chattr +i`.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from landscape import cli
from landscape.commands import COMMANDS
from tests.readonly import read_only
from tests.test_cifar import _dump, write_cifar
from tests.test_mnist import FILES as MNIST_FILES
from tests.test_mnist import write_mnist

ROOT = Path(__file__).resolve().parents[1]
NOBODY = "~nosuchuser-ue-landscape"
BIG = str(2**63)  # one past the largest seed
HUGE = "1" + "0" * 400  # an integer far beyond any float


# ---------------------------------------------------------------------------------------------- the world


def _cifar_with(world: Path, name: str, batch: str, **changes: object) -> None:
    """A tiny CIFAR-10 under world/<name> whose `batch` file has some entries replaced."""
    folder = write_cifar(world / name, 10)
    content = pickle.loads((folder / batch).read_bytes())
    content.update({k.encode(): v for k, v in changes.items()})
    _dump(content, folder / batch)


def _nan_weights(path: Path) -> None:
    """Weights of the default model (cnn) for digits that fit it, with a NaN in 2.weight and an inf in 7.weight."""
    from safetensors.torch import save_file

    from landscape.config import DataSpec, ModelSpec
    from landscape.stages.base import build_net

    state = {k: v.clone() for k, v in build_net(ModelSpec(), DataSpec()).state_dict().items()}
    state["2.weight"].view(-1)[0], state["7.weight"].view(-1)[3] = float("nan"), float("inf")
    save_file(state, str(path))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    """Paths the cases point at: a file, a read-only folder, a folder, broken data sets and weights."""
    w = tmp_path_factory.mktemp("world")
    (w / "afile").write_text("not a folder\n")
    (w / "adir").mkdir()
    (w / "garbage.safetensors").write_bytes(b"\x00" * 64)
    _nan_weights(w / "nan.safetensors")
    (w / "notes.npz").write_text("not an npz archive")
    np.savez(w / "floaty.npz", x=np.zeros((20, 1, 8, 8), np.float32), y=np.linspace(0, 3, 20))
    np.savez(w / "few.npz", x=np.zeros((3, 1, 8, 8), np.float32), y=np.array([0, 1, 2]))
    _cifar_with(w, "cifar-zero", "data_batch_1", data=np.zeros((0, 3072), np.uint8), labels=[])
    _cifar_with(w, "cifar-zero-test", "test_batch", data=np.zeros((0, 3072), np.uint8), labels=[])
    _cifar_with(w, "cifar-float", "data_batch_1", labels=[1.7] * 20)
    _cifar_with(w, "cifar-str", "data_batch_2", labels=["3"] * 20)
    _cifar_with(w, "cifar-bool", "data_batch_3", labels=[True] * 20)
    _cifar_with(w, "cifar-float-array", "data_batch_4", labels=np.full(20, 1.5))
    _cifar_with(w, "cifar-range", "test_batch", labels=[10] * 20)
    write_cifar(w / "cifar-ok", 10)
    mnist = write_mnist(w / "mnist-cut" / "mnist")
    raw = (mnist / MNIST_FILES[0]).read_bytes()
    (mnist / MNIST_FILES[0]).write_bytes(raw[: len(raw) // 2])
    (w / "images" / "a").mkdir(parents=True)
    (w / "images" / "a" / "broken.png").write_bytes(b"\x89PNG not really")
    with read_only(w / "ro"):
        yield w


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def _argv(args: list[str], world: Path) -> list[str]:
    return [a.replace("{w}", str(world)) for a in args]


# ---------------------------------------------------------------------------------------------- the table

FAST = ["--epochs", "1", "--n-train", "20", "--n-test", "10"]  # if a case is wrongly accepted, it costs a second
SUBSET = FAST[2:]  # for weights --analyse, which trains nothing (and refuses --epochs)

# store and output paths that every computing command must refuse before it computes
STORES = [
    ("empty", "", "empty"),
    ("blank", "   ", "empty"),
    ("file", "{w}/afile", "afile"),
    ("under-a-file", "{w}/afile/store", "afile"),
    ("read-only", "{w}/ro", "not writable"),
    ("under-read-only", "{w}/ro/store", "not writable"),
    ("no-such-user", f"{NOBODY}/store", "nosuchuser"),
]
COMPUTING = {
    "train": ["train", *FAST],
    "craft": ["craft", "--method", "random", "--n-train", "20"],
    "run": ["run", *FAST, "--method", "random"],
    "evaluate-ue": ["evaluate-ue", *FAST, "--method", "random"],
    "cross-task": ["cross-task", "--epochs", "1", "--methods", "random", "--n-train", "20", "--n-test", "10"],
    "surface": ["surface", *FAST, "--resolution", "3", "--out", "{w}/adir/s.html"],
    "bench": ["bench", *FAST, "--methods", "random", "--seeds", "1", "--out", "{w}/adir/b"],
    "weights-export": ["weights", *FAST, "--export", "{w}/adir/w.safetensors"],
    "curvature": ["curvature", *FAST, "--method", "random", "--out", "{w}/adir/c.csv"],
}

CASES: list[tuple[str, list[str], dict[str, str], str]] = []


def case(name: str, args: list[str], needle: str, env: dict[str, str] | None = None) -> None:
    CASES.append((name, args, env or {}, needle))


for cmd, args in COMPUTING.items():
    for label, value, needle in STORES:
        case(f"{cmd}/store-{label}", [*args, "--store", value], needle)
    case(f"{cmd}/env-store-file", args, "afile", {"UE_LANDSCAPE_STORE": "{w}/afile"})
    case(f"{cmd}/env-store-no-such-user", args, "UE_LANDSCAPE_STORE", {"UE_LANDSCAPE_STORE": f"{NOBODY}/s"})

# the parser: unknown commands and flags, values of the wrong type
case("no-command", [], "COMMAND")
case("unknown-command", ["explode"], "explode")
case("unknown-flag", ["train", "--explode", "1"], "--explode")
# an option the command does not take is the command's error, pointing at the command's --help
case("unknown-flag-of-train", ["train", "--dry-run"],
     "python -m landscape train: error: unrecognized arguments: --dry-run (see python -m landscape train --help)")
case("unknown-flag-of-bench", ["bench", "--json"], "python -m landscape bench: error: unrecognized arguments: --json")
case("unknown-positional", ["train", "--epochs", "1", "x"],
     "python -m landscape train: error: unrecognized arguments: x")
case("option-before-command", ["--json", "train"], "--json; a command's options go after the command")
for flag, value in [("--epochs", "x"), ("--epochs", "1.5"), ("--batch-size", "many"), ("--lr", "fast"),
                    ("--seed", "1e3"), ("--seed", "x"), ("--n-train", "half"), ("--width", "2.5")]:
    case(f"train/type{flag}={value}", ["train", flag, value], value)
for flag, value in [("--optimizer", "lbfgs"), ("--schedule", "step"), ("--augment", "mixup")]:
    case(f"train/choice{flag}={value}", ["train", flag, value], value)

# training numbers out of range
for flag, value, needle in [
    ("--epochs", "0", "epochs"), ("--epochs", "-3", "epochs"), ("--epochs", "501", "epochs"),
    ("--epochs", HUGE, "epochs"), ("--batch-size", "0", "batch_size"), ("--batch-size", "9000", "batch_size"),
    ("--lr", "0", "lr"), ("--lr", "-0.1", "lr"), ("--lr", "nan", "lr"), ("--lr", "inf", "lr"), ("--lr", "11", "lr"),
    ("--momentum", "1", "momentum"), ("--momentum", "-0.5", "momentum"), ("--weight-decay", "-1", "weight_decay"),
    ("--weight-decay", "2", "weight_decay"), ("--seed", "-1", "seed"), ("--seed", BIG, "seed"),
    ("--seed", str(2**64), "seed"), ("--seed", HUGE, "seed"), ("--width", "0", "width"), ("--width", "17", "width"),
    ("--crop-padding", "-1", "TrainSpec.crop_padding = -1"), ("--crop-padding", "17", "TrainSpec.crop_padding = 17"),
]:
    case(f"train/range{flag}={value[:12]}", ["train", *FAST, flag, value], needle)
for extra, needle in [(["--optimizer", "adam"], "optimizer = 'adam'"), (["--momentum", "0"], "momentum = 0.0")]:
    case(f"train/nesterov{extra[0]}={extra[1]}", ["train", *FAST, "--nesterov", *extra], needle)
case("run/range--crop-padding=-1", ["run", *FAST, "--method", "random", "--crop-padding", "-1"],
     "TrainSpec.crop_padding = -1")
case("surface/range--crop-padding=x", ["surface", *FAST, "--crop-padding", "x"], "--crop-padding: invalid int value")

# data sets and subsets
for value, needle in [("nosuch", "nosuch"), ("", "data set"), (":", "data set"), ("cifar10:", "cifar10"),
                      ("digits?size=3", "digits?size=3"), ("folder:{w}/images?size=x", "size"),
                      ("folder:{w}/images?size=0", "'size=0'"), ("folder:{w}/images?size=²", "'size=²'"),
                      ("folder:{w}/images?size=" + "9" * 5000, "out of range"),  # int() refused both (traceback)
                      ("folder:{w}/images?colour=1", "colour"), ("npz:{w}/missing.npz", "missing.npz"),
                      ("npz:{w}/notes.npz", "notes.npz"), ("npz:{w}/floaty.npz", "floaty.npz"),
                      ("npz:{w}/afile", "afile"), ("folder:{w}/afile", "afile"), ("folder:{w}/images", "images"),
                      ("cifar10", "cifar"), ("mnist", "MNIST")]:
    case(f"train/dataset={value[:24]}", ["train", "--epochs", "1", "--dataset", value], needle)
for n_train, n_test, needle in [("0", None, "n_train"), ("-5", None, "n_train"), ("5", None, "n_train"),
                                ("9", None, "10 classes"), ("1000000000", None, "1000000000"), (HUGE, None, "n_train"),
                                (None, "0", "n_test"), (None, "3", "n_test"), (None, "100000", "100000")]:
    args = ["train", "--epochs", "1"] + (["--n-train", n_train] if n_train else []) + \
        (["--n-test", n_test] if n_test else [])
    case(f"train/subset-{n_train}-{n_test}"[:40], args, needle)
for root, needle in [("", "root"), ("   ", "root"), (f"{NOBODY}/cifar", "nosuchuser"), ("{w}/missing", "missing"),
                     ("{w}/afile", "afile"), ("{w}/cifar-zero", "no images"), ("{w}/cifar-zero-test", "no images"),
                     ("{w}/cifar-float", "1.7"), ("{w}/cifar-str", "'3'"), ("{w}/cifar-bool", "True"),
                     ("{w}/cifar-float-array", "float64"), ("{w}/cifar-range", "labels span")]:
    case(f"train/cifar-root={Path(root).name or 'empty'}", ["train", *FAST, "--dataset", "cifar10",
                                                             "--data-root", root], needle)
case("train/cifar-root-twice", ["train", "--dataset", "cifar10:{w}/cifar-ok", "--data-root", "{w}/adir"], "once")
case("train/mnist-truncated", ["train", "--epochs", "1", "--dataset", "mnist", "--data-root", "{w}/mnist-cut"],
     "truncated")
case("train/mnist-no-such-user", ["train", "--dataset", "mnist", "--data-root", f"{NOBODY}/m"], "nosuchuser")
case("train/npz-float-labels", ["train", "--epochs", "1", "--dataset", "npz:{w}/floaty.npz"], "floaty")
case("train/npz-no-such-user", ["train", "--dataset", f"npz:{NOBODY}/x.npz"], "nosuchuser")

# models, methods, devices
for value, needle in [("nosuch", "nosuch"), ("no_such_module_xyz:factory", "no_such_module_xyz"),
                      ("tests.fixtures:missing_factory", "missing_factory"), ("tests.fixtures:wrong_width", "wrong"),
                      ("tests.fixtures:rgb_only", "rgb_only"), (":", ":")]:
    case(f"train/model={value}", ["train", *FAST, "--model", value], needle)
case("train/method-nosuch", ["train", *FAST, "--method", "nosuch"], "nosuch")
case("train/device-nosuch", ["train", *FAST, "--device", "tpu"], "tpu")
case("train/device-cuda-absent", ["train", *FAST, "--device", "cuda"], "cuda")

# poisons (craft, run, evaluate-ue)
for cmd in ("craft", "run", "evaluate-ue"):
    base = COMPUTING[cmd][:-2] if cmd != "craft" else ["craft", "--n-train", "20"]
    for flags, needle in [(["--method", "nosuch"], "nosuch"), (["--eps", "0"], "eps"), (["--eps", "-1"], "eps"),
                          (["--eps", "x"], "x"), (["--eps", "1/0"], "1/0"), (["--ratio", "1.5"], "ratio"),
                          (["--ratio", "-0.1"], "ratio"), (["--ratio", "0"], "ratio = 0 poisons no image"),
                          (["--poison-seed", "-1"], "seed"),
                          (["--poison-seed", BIG], "seed"), (["--option", "steps"], "steps"),
                          (["--method", "em", "--option", "no_such_option=1"], "no_such_option"),
                          (["--method", "em", "--option", "pgd_steps=-3"], "pgd_steps = -3")]:
        args = base + (["--method", "random"] if "--method" not in flags else []) + flags
        case(f"{cmd}/poison{''.join(flags)}"[:48], args, needle)
case("craft/clean", ["craft", "--method", "clean"], "clean")
case("craft/ratio-rounds-to-0", ["craft", "--method", "random", "--n-train", "20", "--ratio", "0.01"],
     "ratio = 0.01 poisons none of the 20")
CRAFT = COMPUTING["craft"]
for flags, needle in [(["--out", "{w}/adir/p.png"], "suffix '.png' is neither .npz nor a folder"),
                      (["--out", "{w}"], "is a folder that is not empty"), (["--out", "{w}/afile"], "afile is a file"),
                      (["--out", "{w}/adir/pngs", "--out-dtype", "float32"], "needs an .npz"),
                      (["--out", "{w}/adir/p.npz", "--out-dtype", "int8"], "invalid choice: 'int8'"),
                      (["--out-dtype", "float32"], "--out-dtype: not used without --out"),
                      (["--out", "{w}/ro/p.npz"], "not writable"), (["--out", "{w}/ro/pngs"], "not writable"),
                      (["--out", ""], "--out is empty"), (["--out", f"{NOBODY}/p.npz"], "cannot be expanded")]:
    case(f"craft{''.join(flags)}"[:48], [*CRAFT, *flags], needle)
case("evaluate-ue/clean", ["evaluate-ue", "--method", "clean"], "clean")

# SAL flags (run)
for flag, value, needle in [("--sal-eps", "0", "eps"), ("--sal-rounds", "0", "rounds"), ("--sal-lr", "-1", "lr"),
                            ("--sal-batch-size", "0", "batch_size"), ("--sal-eval-size", "0", "eval_size"),
                            ("--sal-every", "0", "every"), ("--sal-seed", "-1", "seed"), ("--sal-seed", BIG, "seed"),
                            ("--sal-engine", "magic", "magic"), ("--sal", "slow", "slow")]:
    case(f"run/sal{flag}={value}", ["run", *FAST, "--method", "random", flag, value], needle)

for flags, needle in [(["--seeds", "0"], "seeds"), (["--seeds", "-2"], "seeds"), (["--seeds", "1000"], "seeds"),
                      (["--seed", str(2**63 - 1), "--seeds", "2"], "seed"), (["--workers", "0"], "workers = '0'"),
                      (["--workers", "two"], "workers = 'two'"), (["--workers", "-1"], "workers"),
                      (["--out", "{w}/adir/r.txt"], "the suffix must be one of .html, .csv, .json"),
                      (["--out", "{w}/adir"], "{w}/adir is a folder; give a file name inside it, e.g. "
                                              "{w}/adir/report.html"),
                      (["--out", "{w}/ro/r.csv"], "not writable"), (["--out", "{w}/afile/r.json"], "afile"),
                      (["--out", ""], "empty"), (["--out", f"{NOBODY}/r.html"], "nosuchuser")]:
    case(f"run{''.join(flags)}"[:40], ["run", *FAST, "--method", "random", *flags], needle)

# curvature
CURV = ["curvature", *FAST, "--method", "random"]
for flags, needle in [(["--n-data", "0"], "n_data"), (["--n-data", "9000"], "n_data"), (["--top-k", "0"], "top_k"),
                      (["--tol", "0"], "tol"), (["--tol", "nan"], "tol"), (["--min-steps", "0"], "min_steps"),
                      (["--max-steps", "2"], "max_steps"), (["--probes", "1"], "probes"),
                      (["--esd-runs", "0"], "esd_runs"), (["--every", "0"], "every"),
                      (["--curvature-seed", "-1"], "seed"), (["--split", "val"], "val"),
                      (["--out", "{w}/adir/c.txt"], "suffix"),
                      (["--out", "{w}/adir"], "{w}/adir is a folder; give a file name inside it, e.g. "
                                              "{w}/adir/curvature.csv"),
                      (["--out", "{w}/ro/c.csv"], "not writable"), (["--out", ""], "empty"),
                      (["--out", f"{NOBODY}/c.csv"], "nosuchuser")]:
    case(f"curvature{''.join(flags)}"[:40], [*CURV, *flags], needle)

# cross-task
for methods, needle in [("", "at least one"), (",", "at least one"), (" , ", "at least one"), ("nosuch", "nosuch"),
                        ("em,em", "once"), ("clean", "clean")]:
    case(f"cross-task/methods={methods!r}", ["cross-task", "--epochs", "1", "--methods", methods], needle)
for flags, needle in [(["--tasks", "nosuch"], "nosuch"), (["--epochs", "0"], "epochs"), (["--seed", "-1"], "seed"),
                      (["--sal-every", "0"], "every"), (["--dataset", "npz:{w}/missing.npz"], "missing.npz")]:
    case(f"cross-task{''.join(flags)}"[:40], ["cross-task", "--methods", "random", *flags], needle)

# surface
SURF = ["surface", *FAST]
for flags, needle in [(["--resolution", "1"], "resolution"), (["--resolution", "0"], "resolution"),
                      (["--resolution", "500"], "resolution"), (["--dims", "3"], "3"),
                      (["--kind", "hessian"], "hessian"),
                      (["--alpha-range", "1", "0"], "alpha_range"), (["--alpha-range", "nan", "1"], "alpha_range"),
                      (["--dims", "1", "--beta-range", "0", "1"], "beta_range"), (["--n-eval", "0"], "n_eval"),
                      (["--eval-batch-size", "0"], "batch_size"), (["--surface-seed", "-1"], "seed"),
                      (["--method", "nosuch"], "nosuch"), (["--out", "{w}/adir"], "is a folder"),
                      (["--out", "{w}/ro/s.html"], "not writable"), (["--out", "{w}/afile/s.html"], "afile"),
                      (["--out", ""], "empty"), (["--out", f"{NOBODY}/s.html"], "nosuchuser"),
                      (["--out", "{w}/adir/s.txt"], "suffix"), (["--layer", "no.such.weight"], "no.such.weight"),
                      (["--layer", "0.weight", "--dims", "3"], "3"),
                      # refused by resolving the stage against the runs, before they train (the store stays empty)
                      (["--kind", "interp"], "needs a poisoned run"),
                      (["--kind", "pca"], "needs at least 3 checkpoints, but the runs keep 2"),
                      (["--layer", "0.weight", "--epoch", "9"], "epoch = 9 is not a stored epoch"),
                      (["--epoch", "1"], "--layer"),
                      (["--method", "random", "--method", "random"], "--method random is given more than once")]:
    case(f"surface{''.join(flags)}"[:48], [*SURF, *flags], needle)

# bench
BENCH = ["bench", *FAST, "--methods", "random", "--seeds", "1"]
for flags, needle in [(["--seed-list", "a,b"], "a,b"), (["--seed-list", ""], "--seed-list"),
                      (["--seed-list", "1,,2"], "1,,2"), (["--seed-list", "1,1"], "repeat"),
                      (["--seed-list", "-1"], "-1"), (["--seed-list", BIG], BIG), (["--seeds", "0"], "seed"),
                      (["--threads", "0"], "threads"), (["--threads", "-2"], "threads"),
                      (["--workers", "0"], "workers"), (["--dry-run", "--threads", "0"], "--threads: 0"),
                      (["--dry-run", "--threads", "-2"], "--threads: -2"),
                      (["--dry-run", "--workers", "0"], "--workers: 0"),
                      (["--dry-run", "--workers", "-3"], "--workers: -3"),
                      (["--dry-run", "--seeds", "0"], "--seeds: 0"),
                      (["--dry-run", "--threads", "x"], "--threads: 'x'"),
                      (["--methods", ""], "method"), (["--methods", "nosuch"], "nosuch"), (["--defenses", ""], "empty"),
                      (["--defenses", "nosuch"], "nosuch"), (["--defenses", "jpeg:quality"], "quality"),
                      (["--defenses", "at:eps=1/0"], "1/0"), (["--defenses", "at:eps=x/255"], "x/255"),
                      (["--defenses", "none,jpeg:quality=30,none"], "repeat an entry: none, jpeg(quality=30), none"),
                      (["--sal", "slow"], "slow"), (["--sal-every", "0"], "every"), (["--crop-padding", "-1"], "crop"),
                      (["--store", "{w}/afile", "--dry-run"], "afile"),
                      (["--out", "{w}/adir"], "{w}/adir is a folder; --out is the prefix of the three files"),
                      (["--out", "{w}/ro/b"], "not writable"), (["--out", ""], "empty")]:
    case(f"bench{''.join(flags)}"[:40], [*BENCH, *flags], needle)

# download (nothing is fetched: every case fails before)
for flags, needle in [(["--root", ""], "empty"), (["--root", "{w}/afile"], "afile"), (["--root", "{w}/ro"], "writable"),
                      (["--root", f"{NOBODY}/data"], "nosuchuser"), (["--dataset", "svhn", "--root", "{w}/x"], "svhn"),
                      (["--root", "{w}/dl", "--max-bytes", "0"], "max_bytes"),
                      (["--root", "{w}/dl", "--max-members", "-1"], "max_members"),
                      (["--root", "{w}/dl", "--md5", "abc"], "md5"), (["--root", "{w}/dl", "--max-bytes", "x"], "x")]:
    args = ["download"] + ([] if "--dataset" in flags else ["--dataset", "mnist"]) + flags
    case(f"download{''.join(flags)}"[:40], args, needle)
# an --md5 that no file can have is refused before the archive is fetched (the missing --url would fail later)
for value in ("zz", "c58f30108f718f92721af3b95e74349a0", "c58f30108f718f92721af3b95e74349a\n", ""):
    case(f"download/cifar-md5={value[-12:]!r}", ["download", "--dataset", "cifar10", "--root", "{w}/dl", "--url",
                                               "file://{w}/missing.tar.gz", "--md5", value],
         f"argument --md5: {value!r} is not an MD5 digest")

# store
for flags, needle in [(["--store", "{w}/afile"], "afile"), (["--store", ""], "empty"),
                      (["--store", f"{NOBODY}/s"], "nosuchuser"), (["--gc", "--store", "{w}/afile"], "afile"),
                      (["--gc", "--store", "{w}/ro"], "not writable"), (["--store", "{w}/nostore"], "no store at"),
                      (["--gc", "--store", "{w}/nostore"], "no store at")]:
    case(f"store{''.join(flags)}"[:40], ["store", *flags], needle)

# demo (the snapshot folder is checked before the build's minutes of work; an existing file is never replaced)
for flags, needle in [(["--out", "{w}/afile"], "afile"), (["--out", "{w}/ro/demo"], "not writable"),
                      (["--out", ""], "empty"), (["--out", f"{NOBODY}/demo"], "nosuchuser"),
                      (["--check", "--out", "{w}/afile"], "afile"), (["--check", "--out", "{w}/missing"], "missing")]:
    case(f"demo{''.join(flags)}"[:40], ["demo", *flags], needle)

# weights
for flags, needle in [([], "--export"), (["--export", "a.safetensors", "--analyse", "b"], "not allowed"),
                      (["--export", "{w}/adir"], "{w}/adir is a folder; give a file name inside it, e.g. "
                                                   "{w}/adir/weights.safetensors"),
                      (["--export", "{w}/ro/w.safetensors"], "not writable"),
                      (["--export", ""], "empty"), (["--analyse", "{w}/missing.safetensors"], "missing.safetensors"),
                      (["--analyse", "{w}/garbage.safetensors"], "garbage.safetensors"), (["--analyse", ""], "empty"),
                      (["--analyse", f"{NOBODY}/w.safetensors"], "nosuchuser"),
                      (["--analyse", "{w}/adir"], "adir")]:
    case(f"weights{''.join(flags)}"[:40], ["weights", *(SUBSET if "--analyse" in flags else FAST), *flags], needle)
# an epoch the run does not keep is refused before it trains; weights with NaN or inf before SAL is measured; an
# option the mode does not use (training flags for --analyse, SAL flags for --export) before anything is read
EXPORT, NAN = ["--export", "{w}/adir/w.safetensors"], "{w}/nan.safetensors"
for name, flags, needle in [("export-epoch--1", [*FAST, *EXPORT, "--epoch", "-1"], "--epoch -1"),
                            ("export-epoch-past-the-end", [*FAST, *EXPORT, "--epoch", "2"], "keeps epochs 0, 1"),
                            ("export-sal", [*FAST, *EXPORT, "--sal-rounds", "1"], "--sal-rounds: not used by --export"),
                            ("analyse-nan", [*SUBSET, "--analyse", NAN], "2.weight (1 NaN of 2,304), 7.weight"),
                            ("analyse-epoch", [*SUBSET, "--analyse", NAN, "--epoch", "0"], "--epoch: not used by"),
                            ("analyse-method", [*SUBSET, "--analyse", NAN, "--method", "em"], "--method: not used by"),
                            ("analyse-epochs", [*FAST, "--analyse", NAN], "--epochs: not used by --analyse")]:
    case(f"weights/{name}", ["weights", *flags], needle)


IDS = [c[0] for c in CASES]
assert len(set(IDS)) == len(IDS), sorted({i for i in IDS if IDS.count(i) > 1})


def test_the_table_is_big_enough():
    assert len(CASES) >= 150, len(CASES)


def test_every_command_is_fuzzed():
    fuzzed = {argv[0] for _, argv, _, _ in CASES if argv}
    missing = set(COMMANDS.names()) - fuzzed
    assert not missing, f"commands with no bad-input case: {sorted(missing)}"


@pytest.mark.parametrize(("argv", "env", "needle"), [c[1:] for c in CASES], ids=IDS)
def test_bad_input_gives_one_clear_line_and_leaves_nothing(argv, env, needle, world, tmp_path, monkeypatch, capsys):
    cwd, store = tmp_path / "cwd", tmp_path / "store"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(store))
    for name, value in env.items():
        monkeypatch.setenv(name, value.replace("{w}", str(world)))
    before = _tree(world)
    try:
        status = cli.main(_argv(argv, world))
    except SystemExit as exit_:  # argparse
        status = exit_.code
    out, err = capsys.readouterr()
    lines = [line for line in err.splitlines() if line.strip()]
    assert status not in (0, None), f"accepted: {argv}\n{out}\n{err}"
    assert len(lines) == 1 and "error" in lines[0], f"not one error line: {err!r}"
    assert "Traceback" not in err + out
    assert needle.replace("{w}", str(world)).lower() in lines[0].lower(), f"{needle!r} not named in: {lines[0]}"
    assert not list(cwd.iterdir()), f"left in the working folder: {list(cwd.iterdir())}"
    assert not store.exists(), f"left behind: the store {store} ({list(store.rglob('*'))})"  # not even empty
    assert _tree(world) == before, f"left in the world: {_tree(world) - before}"


@pytest.mark.parametrize(("argv", "env", "needle"), [
    (["train", "--store", f"{NOBODY}/store"], {}, "nosuchuser"),
    (["train", "--epochs", "1"], {"UE_LANDSCAPE_STORE": f"{NOBODY}/s"}, "UE_LANDSCAPE_STORE"),
    (["bench", "--seed-list", "a,b"], {}, "a,b"),
    (["nosuch"], {}, "nosuch"),
], ids=["store-no-such-user", "env-no-such-user", "seed-list", "unknown-command"])
def test_bad_input_through_python_dash_m(argv, env, needle, tmp_path):
    """The real entry point: exit status 2, one line on stderr, no traceback, nothing written."""
    result = subprocess.run([sys.executable, "-m", "landscape", *argv], capture_output=True, text=True, cwd=tmp_path,
                            env={**os.environ, "UE_LANDSCAPE_STORE": str(tmp_path / "store"),
                                 "PYTHONPATH": str(ROOT), **env}, timeout=120)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and len(lines) == 1 and needle in lines[0], result.stderr
    assert "Traceback" not in result.stderr and not list(tmp_path.iterdir())
