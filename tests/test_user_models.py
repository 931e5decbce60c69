"""User models `package.module:factory`: built through `build_model`, checked, fingerprinted into every key."""

from __future__ import annotations

import importlib
import json
import sys
import textwrap

import numpy as np
import pytest
import torch

from landscape.cli import main
from landscape.config import DataSpec, ExperimentSpec, ModelSpec, PoisonSpec, SALSpec, TrainSpec
from landscape.errors import ModelError, UnknownNameError
from landscape.experiment import run_experiment
from landscape.models import build_model, weight_layers
from landscape.models.user import fingerprint
from landscape.stages.base import resolve_model
from landscape.stages.train import TrainStage
from landscape.stages.ud import UDStage

pytestmark = pytest.mark.usefixtures("one_thread")

USER = "tests.fixtures:factory"
DATA = DataSpec(n_train=200, n_test=100)
TRAIN = TrainSpec(epochs=2, batch_size=32)


def test_user_model_builds_like_a_registered_one():
    state = torch.random.get_rng_state()
    a = build_model(USER, (1, 8, 8), 10, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    b, c = build_model(USER, (1, 8, 8), 10, seed=3), build_model(USER, (1, 8, 8), 10, seed=4)
    assert type(a).__module__ == "tests.fixtures" and not isinstance(a, torch.nn.Sequential)
    assert all(torch.equal(va, vb) for va, vb in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.head.weight, c.head.weight)
    assert weight_layers(a) == ["stem.0.weight", "block.branch_a.0.weight", "block.branch_a.3.weight",
                                "block.branch_b.0.weight", "head.weight"]
    assert a.training  # the check's eval-mode forward leaves the module in train mode, its BatchNorm untouched
    assert all(float(bn.num_batches_tracked) == 0 for bn in a.modules() if isinstance(bn, torch.nn.BatchNorm2d))
    assert a(torch.rand(3, 1, 8, 8)).shape == (3, 10)


def test_resolve_fills_the_fingerprint_and_leaves_registered_models_alone():
    user = resolve_model(ModelSpec(USER), DATA)
    assert user.code is not None and len(user.code) == 16
    assert resolve_model(ModelSpec(USER, code="stale"), DATA) == user  # a hand-set value is replaced
    assert user.code == fingerprint(USER, (1, 8, 8), 10)
    # global pooling: the same network for 28x28 images; three input channels or 7 classes build another one
    assert fingerprint(USER, (1, 28, 28), 10) == user.code
    assert len({user.code, fingerprint(USER, (3, 8, 8), 10), fingerprint(USER, (1, 8, 8), 7)}) == 3
    plain = resolve_model(ModelSpec("cnn"), DATA)
    assert plain == ModelSpec("cnn") and "code" not in plain.to_dict()
    assert ModelSpec("cnn").key() == ModelSpec("cnn", code=None).key()


@pytest.mark.parametrize(("factory", "match"), [
    ("wrong_width", r"shape \(2, 11\).*expected floating logits of shape \(2, 10\).*10 classes"),
    ("rgb_only", r"failed on a batch .* shape \(2, 1, 8, 8\).*must take 1 input channel"),
    ("raises", r"factory 'tests.fixtures:raises' raised RuntimeError: this factory is broken"),
    ("not_a_module", r"returned a function; expected a torch.nn.Module"),
    ("unseeded", r"different initial weights \('head.weight'\).*torch's global RNG"),
    ("nope", r"has no 'nope'.*callables it defines: .*factory"),
    ("NOT_CALLABLE", r"is not callable \(an object of type int\)"),
])
def test_bad_factories_are_refused_before_anything_runs(store, factory, match):
    with pytest.raises(ModelError, match=match):
        TrainStage.of(DATA, ModelSpec(f"tests.fixtures:{factory}"), TRAIN)
    assert not store.root.exists()  # nothing was computed or written


@pytest.mark.parametrize(("name", "error", "match"), [
    ("tests.missing_module:factory", ModelError, r"cannot import module 'tests.missing_module'.*Python environment"),
    ("models/net.py:factory", ModelError, r"must be named package.module:factory.*files and paths are not"),
    ("resnet", UnknownNameError, r"valid choices: .*cnn.*; or a user model package.module:factory"),
])
def test_bad_model_names_say_what_was_tried(name, error, match):
    with pytest.raises(error, match=match):
        resolve_model(ModelSpec(name), DATA)


def test_width_is_for_registered_models_only():
    with pytest.raises(ModelError, match="width = 2 applies to registered models only"):
        resolve_model(ModelSpec(USER, width=2), DATA)


def _write(path, width: int, extra: str = "") -> None:
    path.write_text(textwrap.dedent(f"""
        from torch import nn

        WIDTH = {width}
        {extra}

        class Net(nn.Module):
            def __init__(self, c, k):
                super().__init__()
                self.conv = nn.Conv2d(c, WIDTH, 3, padding=1)
                self.fc = nn.Linear(WIDTH, k)

            def forward(self, x):
                return self.fc(self.conv(x).relu().mean(dim=(2, 3)))

        def factory(shape, k):
            return Net(shape[0], k)
    """))


def test_a_changed_model_changes_every_key(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    source = tmp_path / "byo_user_net.py"
    _write(source, 4)
    module = importlib.import_module("byo_user_net")
    try:
        spec = ExperimentSpec(data=DATA, model=ModelSpec("byo_user_net:factory"), train=TRAIN)

        def keys() -> tuple[str, str]:
            return TrainStage.of(DATA, spec.model, TRAIN).key(), UDStage.of(spec).key()

        first = keys()
        assert keys() == first  # stable
        _write(source, 4, extra="SCALE = 2.0")  # a new module constant, nothing else
        assert keys() == first  # the file changed but the loaded code did not: the key follows what runs
        importlib.reload(module)
        second = keys()
        assert second[0] != first[0] and second[1] != first[1]
        _write(source, 4, extra="SCALE = 2.0")
        importlib.reload(module)
        assert keys() == second  # the same code gives the same key
        source.write_text(source.read_text().replace("relu()", "tanh()"))  # forward only: same shapes
        importlib.reload(module)
        third = keys()
        assert len({first, second, third}) == 3
        _write(source, 6, extra="SCALE = 2.0")  # the architecture
        importlib.reload(module)
        assert keys() not in (first, second, third)
    finally:
        sys.modules.pop("byo_user_net", None)


def test_experiment_on_a_user_model_end_to_end(store):
    spec = ExperimentSpec(data=DATA, model=ModelSpec(USER), train=TRAIN, poison=PoisonSpec(method="random"),
                          sal=SALSpec(rounds=1))
    result = run_experiment(spec, store=store)
    assert result.sal_clean.sal.shape == (2, 5) and np.isfinite(result.sal_poisoned.sal).all()
    assert list(result.sal_clean.layers) == weight_layers(build_model(USER, (1, 8, 8), 10))
    assert np.isfinite(result.ud.ud)
    assert set(result.clean.final_state) == set(build_model(USER, (1, 8, 8), 10).state_dict())
    record = json.loads(next((store.root / "ud").glob("*/meta.json")).read_text())
    assert record["spec"]["model"] == {"name": USER, "width": 1, "code": resolve_model(ModelSpec(USER), DATA).code}


def test_cli_run_with_a_user_model(capsys):
    code = main(["run", "--model", USER, "--n-train", "200", "--n-test", "100", "--epochs", "2", "--method",
                 "random", "--sal-rounds", "1", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["model"] == USER and out["layers"][0] == "stem.0.weight" and out["ud"] is not None


@pytest.mark.parametrize("command", [["train"], ["train", "--json"], ["evaluate-ue", "--method", "random"],
                                     ["evaluate-ue", "--method", "random", "--json"], ["run", "--method", "random"],
                                     ["run", "--method", "random", "--json", "--workers", "1"]])
def test_a_run_that_diverges_in_its_first_epoch_is_reported_not_a_traceback(command, capsys):
    """No finished epoch: train and evaluate-ue warn and exit 1 (with --json too), run names why SAL cannot be
    measured; none of them fails on the empty history."""
    code = main([*command, "--model", "tests.fixtures:nan_logits", "--n-train", "100", "--n-test", "50",
                 "--epochs", "2"])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    if command[0] == "run":
        assert code == 2 and "no finished epoch" in captured.err and "diverged at epoch 1" in captured.err
        return
    assert code == 1
    if "--json" in command:
        out = json.loads(captured.out)
        assert "diverged at epoch 1" in out["diverged"]
    else:
        assert "warning:" in captured.out and "diverged at epoch 1" in captured.out
