"""Package-level contracts: no streamlit in the engine, no import cycle, specs independent of import order, CLI."""

import ast
import json
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import landscape

ROOT = Path(landscape.__file__).resolve().parent
APP_GLUE = "landscape.app"  # the one package of the engine that may import streamlit (used only by the app)


def _modules() -> dict[str, Path]:
    """Every module of `landscape`, by dotted name (packages by their __init__.py)."""
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """The `landscape` modules `name` imports anywhere in its code (function bodies included), except under
    `if TYPE_CHECKING:`. Importing `a.b.c` also runs the package `a.b`, so an import counts as one of every
    package above the target too, except the packages above `name` itself (Python has started those already)."""
    targets: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]

    def add(module: str) -> None:
        if module in MODULES:
            targets.add(module)

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):  # typing-only imports do not run
                for child in node.orelse:
                    self.visit(child)
            else:
                self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            for alias in node.names:
                add(alias.name)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + [base]).strip(".")
            for alias in node.names:
                add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)

    Visitor().visit(ast.parse(path.read_text()))
    own = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 1)}
    ancestors = {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 1)}
    return (targets | (ancestors & set(MODULES))) - own - {name}


def test_no_import_cycle_among_landscape_modules():
    graph = {name: _imports(name, path) for name, path in MODULES.items()}
    assert graph["landscape.experiment"], "the walk finds imports"  # the test itself can fail
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done

    def visit(name: str, path: list[str]) -> None:
        state[name] = 1
        for target in sorted(graph[name]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail(f"import cycle: {' -> '.join(cycle)}")
            if target not in state:
                visit(target, [*path, target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def test_the_app_glue_never_imports_the_cli():
    graph = {name: _imports(name, path) for name, path in MODULES.items() if name.startswith(f"{APP_GLUE}.")}
    assert "landscape.app.engine" in graph and graph["landscape.app.engine"], "the walk finds the app's imports"
    bad = {name: sorted(t for t in targets if t.startswith("landscape.commands")) for name, targets in graph.items()}
    assert not {name: t for name, t in bad.items() if t}


def test_config_imports_only_errors_and_not_torch():
    """The specs sit on the spec machinery, which sits on the errors: nothing else, so no registry and no torch."""
    assert _imports("landscape.spec", MODULES["landscape.spec"]) == {"landscape.errors"}
    assert _imports("landscape.config", MODULES["landscape.config"]) == {"landscape.errors", "landscape.spec"}
    code = "import landscape.config, sys; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


def _defines_a_spec(path: Path) -> bool:
    return any(isinstance(node, ast.ClassDef) and any(ast.unparse(b).endswith("Spec") for b in node.bases)
               for node in ast.walk(ast.parse(path.read_text())))


SPEC_MODULES = tuple(sorted(name for name, path in MODULES.items() if _defines_a_spec(path)))
IMPORT_ORDERS = (("landscape.config",), ("landscape.poisons.em", "landscape.config"),
                 ("landscape.models.cnn", "landscape.experiment"), ("landscape.stages.bench", "landscape.multitask"),
                 ("landscape.figures", "landscape.data", "landscape.stages"))
CONSTRUCT_SPECS = """
import dataclasses, importlib
from landscape.config import DataSpec, DefenseSpec, ExperimentSpec, ModelSpec, PoisonSpec, Spec, TrainSpec

def has_defaults(cls):
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))

made = [cls() for module in MODULES for cls in vars(importlib.import_module(module)).values()
        if isinstance(cls, type) and issubclass(cls, Spec) and dataclasses.is_dataclass(cls) and has_defaults(cls)]
made += [PoisonSpec(method="rem"), DataSpec(name="cifar10"), ModelSpec(name="resnet18"), DefenseSpec("jpeg"),
         ExperimentSpec(poison=PoisonSpec(method="tap"), train=TrainSpec(epochs=2))]
print(len(made))
"""


def test_the_spec_modules_are_found():
    assert {"landscape.config", "landscape.multitask", "landscape.stages.bench", "landscape.stages.base",
            "landscape.stages.weights"} <= set(SPEC_MODULES)


@pytest.mark.parametrize("order", IMPORT_ORDERS)
def test_every_spec_constructs_at_module_level_in_any_import_order(order):
    """Each spec class, with its defaults (and registered names other than the defaults), at module level of a
    fresh interpreter, after importing engine modules in different orders: no spec depends on import order."""
    first = "".join(f"import {m}\n" for m in order)
    code = first + f"MODULES = {SPEC_MODULES!r}\n" + CONSTRUCT_SPECS
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) >= 15  # every spec class of the engine with defaults, and the named ones


def test_no_engine_module_imports_streamlit():
    """Every module of the engine but the app glue, imported in turn in one fresh interpreter: none loads streamlit
    (the first that would is named)."""
    glue = {m for m in MODULES if m == APP_GLUE or m.startswith(f"{APP_GLUE}.")}
    engine = sorted(set(MODULES) - glue - {"landscape.__main__"})
    code = (f"import importlib, sys\nfor m in {engine!r}:\n    importlib.import_module(m)\n"
            "    if 'streamlit' in sys.modules:\n        sys.exit(f'{m} imports streamlit')\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert len(engine) > 40


MAX_LINES = 600  # any file of landscape/
MAX_APP_LINES = 350  # a file of the app glue, landscape/app/


def test_no_file_of_landscape_is_over_the_line_cap():
    sizes = {str(path.relative_to(ROOT.parent)): len(path.read_text().splitlines()) for path in ROOT.rglob("*.py")}
    assert sizes["landscape/config.py"] > 100  # the count reads real files
    over = {}
    for path, lines in sizes.items():
        cap = MAX_APP_LINES if path.startswith("landscape/app/") else MAX_LINES
        if lines > cap:
            over[path] = f"{lines} lines > {cap}"
    assert not over, f"files over the line cap: {over}"


def test_the_module_walk_sees_every_module():
    found = {m.name for m in pkgutil.walk_packages(landscape.__path__, "landscape.")}
    assert found | {"landscape"} == set(MODULES)


def test_cli_train_json_and_bad_input(tmp_path):
    run = [sys.executable, "-m", "landscape", "train", "--epochs", "1", "--store", str(tmp_path), "--json",
           "--n-train", "100"]
    done = subprocess.run(run, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr

    summary = json.loads(done.stdout)
    assert summary["epochs_done"] == 1 and 0.0 <= summary["final"]["test_acc"] <= 1.0
    bad = subprocess.run([sys.executable, "-m", "landscape", "train", "--model", "vgg"], capture_output=True, text=True)
    assert bad.returncode == 2 and "valid choices" in bad.stderr and "Traceback" not in bad.stderr
    neg = subprocess.run([sys.executable, "-m", "landscape", "train", "--epochs", "-3"], capture_output=True, text=True)
    assert neg.returncode == 2 and "TrainSpec.epochs = -3" in neg.stderr


def test_every_output_option_says_where_it_writes_by_default():
    """Each flag naming where a command writes (a file, prefix, folder or store) either must be given or says
    its default location in --help (a relative default is said to be in the current folder)."""
    import argparse

    from landscape.cli import build_parser

    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    checked = []
    for name, parser in sub.choices.items():
        given = {a for g in parser._mutually_exclusive_groups if g.required for a in g._group_actions}
        for action in parser._actions:
            if not {"--out", "--export", "--root", "--store"} & set(action.option_strings) or action.required or \
                    action in given:  # a flag that must be given (alone or as one of a required group)
                continue
            checked.append(f"{name} {action.option_strings[0]}")
            text = action.help or ""
            assert "default" in text, f"{name} {action.option_strings[0]}: {text!r} does not say its default"
            relative = isinstance(action.default, str) and not Path(action.default).is_absolute()
            if relative or f"{name} {action.option_strings[0]}" == "bench --out":  # bench's default is built later
                assert "current folder" in text, f"{name} {action.option_strings[0]}: {text!r} (relative default)"
    assert {"surface --out", "bench --out", "curvature --out", "demo --out", "train --store"} <= set(checked)


def test_every_training_command_takes_the_same_training_options():
    """--crop-padding is a TrainSpec field: every command with the training flags takes it (not only bench), with
    TrainSpec's default, so a run trained by `train --augment crop --crop-padding 4` can be loaded by `surface`,
    and the defaults still build TrainSpec() itself (the cache keys of stored runs do not change)."""
    import argparse

    from landscape.cli import build_parser
    from landscape.commands.common import train_spec
    from landscape.config import TrainSpec

    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    # the commands with the training recipe's flags (cross-task takes only --epochs of a fixed recipe)
    training = {name: p for name, p in sub.choices.items()
                if any("--optimizer" in a.option_strings for a in p._actions)}
    assert {"train", "run", "bench", "surface", "curvature", "evaluate-ue", "weights"} <= set(training), training
    options = {name: {a.option_strings[0]: (a.default, a.help) for a in p._actions if a.option_strings}
               for name, p in training.items()}
    for name, flags in options.items():
        assert flags["--crop-padding"] == options["train"]["--crop-padding"], name
        assert flags["--crop-padding"][0] == TrainSpec().crop_padding, name
    for name in training:
        defaults = train_spec(parser.parse_args([name] + (["--export", "w.safetensors"] if name == "weights" else [])))
        assert defaults == TrainSpec() and defaults.key() == TrainSpec().key(), name
    given = train_spec(parser.parse_args(["surface", "--augment", "crop", "--crop-padding", "4"]))
    assert given == TrainSpec(augment="crop", crop_padding=4)


def test_counts_in_messages_agree_with_their_noun(tmp_path, capsys, monkeypatch):
    """'1 epoch', '1 cell (1 method x 1 defense x 1 seed)': no '1 epochs' where a count is printed."""
    from landscape.cli import main
    from landscape.spec import plural

    assert [plural(1, "epoch"), plural(0, "epoch"), plural(2, "class", "classes")] == ["1 epoch", "0 epochs",
                                                                                       "2 classes"]
    monkeypatch.setenv("UE_LANDSCAPE_STORE", str(tmp_path))
    assert main(["train", "--epochs", "1", "--n-train", "20", "--n-test", "10"]) == 0
    assert main(["bench", "--dry-run", "--methods", "em", "--seeds", "1"]) == 0
    out = capsys.readouterr().out
    assert "after 1 epoch (" in out and "1 cell (1 method x 1 defense x 1 seed)" in out, out
    assert not any(f"1 {noun}s" in out for noun in ("epoch", "cell", "method", "defense", "seed")), out
    from landscape.app.state import AppSpec

    assert AppSpec(epochs=1).label().endswith("/ 1 epoch")


def test_progress_on_a_redirected_stderr_is_plain_lines(tmp_path):
    """`--workers 2` runs stages side by side; with stderr a pipe (not a terminal) its progress is plain lines,
    no carriage returns or cursor escapes; on a terminal it stays tqdm bars."""
    run = [sys.executable, "-m", "landscape", "run", "--epochs", "2", "--n-train", "60", "--n-test", "30", "--method",
           "random", "--model", "mlp", "--workers", "2", "--store", str(tmp_path)]
    done = subprocess.run(run, capture_output=True, timeout=300)  # bytes: text mode would turn \r into \n
    err = done.stderr.decode()
    assert done.returncode == 0, err[-2000:]
    assert "\x1b" not in err and "\r" not in err, repr(err[:500])
    lines = err.splitlines()
    assert {"train-clean: 2/2", "train-random: 2/2", "ud: 1/1"} <= set(lines), lines
    import io

    from landscape import progress

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    old, sys.stderr = sys.stderr, terminal
    try:
        with progress.tqdm_progress() as report:
            report("stage", 1, 2)
    finally:
        sys.stderr = old
    assert "\r" in terminal.getvalue() and "1/2" in terminal.getvalue()


def test_output_into_a_reader_that_stopped_ends_quietly(tmp_path):
    """`... | head`: once the reader of stdout has gone, the command stops with 141 (128 + SIGPIPE) and no
    'error: ... Broken pipe' line, as other command-line tools do; the results stay in the store."""
    from landscape.store import Store

    store = Store(tmp_path / "store")
    store.save("train", "k", {"v": 1}, {"x": np.zeros(2)})
    read, write = os.pipe()
    os.close(read)  # the reader has gone before the command writes a byte
    try:
        done = subprocess.run([sys.executable, "-m", "landscape", "store", "--store", str(store.root), "--json"],
                              stdout=write, stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert done.returncode == 141, done.stderr
    assert "error" not in done.stderr and "Traceback" not in done.stderr and "Exception" not in done.stderr, \
        done.stderr


def test_usage_names_the_program_as_it_was_called(monkeypatch, capsys):
    """The installed console script is named by its own name in usage lines and errors (argparse's default, from
    sys.argv[0]), `python -m landscape` by that, and a call from Python with its own argv by `python -m landscape`."""
    from landscape import cli

    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/ue-landscape", "store", "--bogus"])
    with pytest.raises(SystemExit):
        cli.main()
    assert capsys.readouterr().err.startswith("ue-landscape store: error: unrecognized arguments: --bogus "
                                              "(see ue-landscape store --help)")
    monkeypatch.setattr(sys, "argv", ["/somewhere/bin/ue-landscape", "--help"])
    with pytest.raises(SystemExit):
        cli.main()
    assert capsys.readouterr().out.startswith("usage: ue-landscape ")
    with pytest.raises(SystemExit):
        cli.main(["store", "--bogus"])
    assert capsys.readouterr().err.startswith("python -m landscape store: error:")
    done = subprocess.run([sys.executable, "-m", "landscape", "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("usage: python -m landscape "), done.stdout[:200]
    script = Path(sys.executable).with_name("ue-landscape")
    if script.exists():  # installed (pip install -e .): the real console script
        done = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=120)
        assert done.returncode == 0 and done.stdout.startswith("usage: ue-landscape "), done.stdout[:200]
