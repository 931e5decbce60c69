"""Weights in and out: safe import (safetensors, state dicts via weights_only), export as safetensors, analyses."""

from __future__ import annotations

import json
import pickle

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from landscape.cli import main
from landscape.config import CurvatureSpec, DataSpec, LayerSliceSpec, ModelSpec, SALSpec, SurfaceSpec, TrainSpec
from landscape.curvature import model_curvature
from landscape.errors import DataError, ModelError, SpecError
from landscape.experiment import get_training
from landscape.models import build_model, weight_layers
from landscape.sal import model_sal
from landscape.stages.base import Context, get_splits
from landscape.stages.weights import ImportedCurvatureStage, ImportedRun, ImportedSALStage, ImportedSurfaceStage
from landscape.store import Store
from landscape.surface import eval_subset
from landscape.train import evaluate
from landscape.weights import load_into, read_weights, save_weights, weights_metadata

pytestmark = pytest.mark.usefixtures("one_thread")

DATA = DataSpec(n_train=200, n_test=100)
USER = ModelSpec("tests.fixtures:factory")


class Payload:
    """Unpickling this object opens (creates) a file: proof that a loader executed code."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def trained(store):
    return get_training(DATA, USER, TrainSpec(epochs=2, batch_size=32), store=store)


def test_every_accepted_format_reads_the_same_tensors(tmp_path, trained):
    state = trained.final_state
    save_weights(state, tmp_path / "w.safetensors")
    torch.save(state, tmp_path / "w.pt")
    torch.save({"state_dict": state, "epoch": 2, "note": "lightning style"}, tmp_path / "w.ckpt")
    for name in ("w.safetensors", "w.pt", "w.ckpt"):
        read = read_weights(tmp_path / name)
        assert set(read) == set(state) and all(torch.equal(read[k], state[k]) for k in state), name


@pytest.mark.parametrize(("writer", "why"), [("torch.save", r"it names (builtins|io)\.open"),
                                             ("pickle.dump", r"not plain data \(Unsupported operand")])
def test_a_pickle_payload_is_refused_and_never_runs(tmp_path, store, writer, why):
    marker = tmp_path / "payload-ran"
    pickle.loads(pickle.dumps(Payload(str(tmp_path / "payload-is-live"))))  # the payload does write when unpickled
    assert (tmp_path / "payload-is-live").exists()
    evil = {"head.weight": torch.zeros(10, 8), "extra": Payload(str(marker))}
    path = tmp_path / "evil.pt"
    if writer == "torch.save":
        torch.save(evil, path)
    else:
        with open(path, "wb") as fh:
            pickle.dump(evil, fh)
    with pytest.raises(DataError, match=rf"refused by torch.load\(weights_only=True\): {why}.*nothing in it was run"):
        read_weights(path)
    with pytest.raises(DataError, match="refused"):
        ImportedRun.of(DATA, USER, path).get(Context(store))
    assert not marker.exists() and not list(store.root.rglob("meta.json"))


def test_files_that_are_not_state_dicts(tmp_path):
    (tmp_path / "junk.pt").write_text("hello")
    with pytest.raises(DataError, match="cannot be read as a PyTorch state dict"):
        read_weights(tmp_path / "junk.pt")
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(DataError, match="not a readable safetensors file"):
        read_weights(tmp_path / "junk.safetensors")
    torch.save([torch.zeros(2)], tmp_path / "list.pt")
    with pytest.raises(DataError, match="holds a list, not a state dict"):
        read_weights(tmp_path / "list.pt")
    torch.save({"a": 3}, tmp_path / "int.pt")
    with pytest.raises(DataError, match="entry 'a' is not a tensor"):
        read_weights(tmp_path / "int.pt")
    with pytest.raises(DataError, match="does not exist"):
        read_weights(tmp_path / "missing.pt")


def test_weights_that_do_not_fit_the_model_say_how(trained):
    net = build_model(USER.name, (1, 8, 8), 10)
    state = dict(trained.final_state)
    with pytest.raises(ModelError, match=r"missing: head.bias"):
        load_into(net, {k: v for k, v in state.items() if k != "head.bias"}, "w.pt")
    with pytest.raises(ModelError, match=r"other shape: head.weight \(10, 4\) \(model \(10, 8\)\)"):
        load_into(net, {**state, "head.weight": torch.zeros(10, 4)}, "w.pt")
    with pytest.raises(ModelError, match=r"unexpected: module\.stem.*saved from DataParallel"):
        load_into(net, {f"module.{k}": v for k, v in state.items()}, "w.pt")


def test_export_is_safetensors_with_its_spec(tmp_path, trained):
    path = save_weights(trained.final_state, tmp_path / "out" / "final.safetensors", metadata={"epoch": 2})
    assert set(load_file(str(path))) == set(trained.final_state)
    assert weights_metadata(path) == {"epoch": 2}
    assert [p.name for p in path.parent.iterdir()] == ["final.safetensors"]  # no temporary left behind
    with pytest.raises(DataError, match=r"must end in .safetensors"):
        save_weights(trained.final_state, tmp_path / "final.pt")


def test_imported_weights_are_the_run_and_sal_at_that_point_matches_a_direct_call(tmp_path, store, trained):
    path = save_weights(trained.final_state, tmp_path / "w.safetensors")
    ctx = Context(store)
    run = ImportedRun.of(DATA, USER, path)
    imported = run.get(ctx)
    assert imported.checkpoint_epochs == [0] and imported.epochs_done == 0
    assert all(torch.equal(imported.final_state[k], v) for k, v in trained.final_state.items())

    moved = tmp_path / "elsewhere.safetensors"
    path.rename(moved)
    assert ImportedRun.of(DATA, USER, moved).key() == run.key()  # the content, not the path, is the key

    sal = SALSpec(rounds=1)
    trace = ImportedSALStage.of(ImportedRun.of(DATA, USER, moved), sal).get(ctx)
    assert trace.spec.baseline == "fresh" and list(trace.epochs) == [0]
    net = build_model(USER.name, (1, 8, 8), 10)
    net.load_state_dict(trained.final_state)
    train = get_splits(DATA).train
    direct = model_sal(net, train.x, train.y, sal.replace(baseline="fresh"))
    np.testing.assert_array_equal(trace.sal[0], [r.sal for r in direct])

    other = tmp_path / "other.safetensors"
    save_weights({**trained.final_state, "head.bias": torch.ones(10)}, other)
    assert ImportedRun.of(DATA, USER, other).key() != run.key()


def test_curvature_at_imported_weights_matches_a_direct_call(tmp_path, store, trained):
    path = save_weights(trained.final_state, tmp_path / "w.safetensors")
    spec = CurvatureSpec(n_data=64, top_k=2, min_steps=6, max_steps=12, probes=2)
    stage = ImportedCurvatureStage(ImportedRun.of(DATA, USER, path), spec)
    trace = stage.get(Context(store))
    net = build_model(USER.name, (1, 8, 8), 10)
    net.load_state_dict(trained.final_state)
    train = get_splits(DATA).train
    direct = model_curvature(net, train.x, train.y, spec)
    assert list(trace.epochs) == [0] and trace.layers == list(direct.layers) and len(trace.layers) == 5
    np.testing.assert_array_equal(trace.lambda_max[0], [direct.layers[n].lambda_max for n in trace.layers])
    np.testing.assert_array_equal(trace.trace[0], [direct.layers[n].trace for n in trace.layers])
    assert trace.whole()[0] == direct.whole.lambda_max
    assert stage.get(Context(store)).lambda_max.tolist() == trace.lambda_max.tolist()  # from the store
    test_side = ImportedCurvatureStage(stage.run, spec.replace(split="test"))
    assert test_side.key() != stage.key()
    assert not np.array_equal(test_side.get(Context(store)).lambda_max, trace.lambda_max)


def test_surfaces_around_imported_weights(tmp_path, store, trained):
    clean = save_weights(trained.checkpoints[0], tmp_path / "init.safetensors")
    final = save_weights(trained.final_state, tmp_path / "final.safetensors")
    ctx = Context(store)
    surface = SurfaceSpec(kind="random", resolution=5, n_eval=50)
    result = ImportedSurfaceStage.of(DATA, USER, {"mine": final}, surface).get(ctx)
    grid = result.surfaces["mine"]
    net = build_model(USER.name, (1, 8, 8), 10)
    net.load_state_dict(trained.final_state)
    assert grid.loss.shape == (5, 5) and np.isfinite(grid.loss).all()
    ev = eval_subset(get_splits(DATA).test, 50, 0)  # the surface's evaluation subset
    assert grid.loss[2, 2] == pytest.approx(evaluate(net, ev.x, ev.y)[0], rel=1e-5)  # the origin: the model itself

    line = ImportedSurfaceStage.of(DATA, USER, {"clean": clean, "final": final},
                                   SurfaceSpec(kind="interp", dims=1, resolution=5, alpha_range=(0, 1),
                                               n_eval=50)).get(ctx)
    interp = line.surfaces["interp"]
    assert interp.loss.shape == (5, 1) and list(interp.alpha) == [0, 0.25, 0.5, 0.75, 1]
    init_net = build_model(USER.name, (1, 8, 8), 10)
    init_net.load_state_dict(trained.checkpoints[0])
    assert interp.loss[0, 0] == pytest.approx(evaluate(init_net, ev.x, ev.y)[0], rel=1e-5)  # "clean" at 0
    assert interp.loss[-1, 0] == pytest.approx(evaluate(net, ev.x, ev.y)[0], rel=1e-5)  # the other at 1
    with pytest.raises(SpecError, match="needs a training trajectory"):
        ImportedSurfaceStage.of(DATA, USER, {"mine": final}, SurfaceSpec(kind="pca"))
    with pytest.raises(SpecError, match="labelled 'clean'"):
        ImportedSurfaceStage.of(DATA, USER, {"a": clean, "b": final}, SurfaceSpec(kind="interp", dims=1))


def test_weights_with_nan_or_inf_are_refused_naming_the_tensors(tmp_path, store):
    net = build_model("cnn", (1, 8, 8), 10)  # digits' images and classes
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["2.weight"].view(-1)[:3] = float("nan")
    state["7.bias"][0] = -float("inf")
    path = save_weights(state, tmp_path / "bad.safetensors")
    stage = ImportedSALStage.of(ImportedRun.of(DataSpec(), ModelSpec("cnn"), path), SALSpec(rounds=1))
    why = r"not finite in 2 tensor\(s\): 2\.weight \(3 NaN of 2,304\), 7\.bias \(1 inf of 32\)"
    with pytest.raises(DataError, match=why):
        stage.get(Context(store))
    assert not store.root.exists() or not list(store.root.rglob("*"))  # nothing measured, nothing stored

    class Masked(torch.nn.Module):  # a buffer that is -inf by design (an attention mask, say) is not refused
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.register_buffer("mask", torch.tensor([0.0, -float("inf")]))

    model, own = Masked(), {k: v.clone() for k, v in Masked().state_dict().items()}
    load_into(model, own, label="ours")
    own["lin.weight"][0, 0] = float("nan")
    with pytest.raises(DataError, match=r"lin\.weight \(1 NaN of 4\)") as refused:
        load_into(model, own, label="ours")
    assert "mask" not in str(refused.value)


def test_a_layer_slice_imported_weights_cannot_give_is_refused_before_loading(tmp_path, store):
    net = build_model(USER.name, (1, 8, 8), 10)
    path = save_weights(net.state_dict(), tmp_path / "w.safetensors")
    layer = weight_layers(net)[0]
    with pytest.raises(SpecError, match="LayerSliceSpec.epoch = 2: imported weights are one point"):
        ImportedSurfaceStage.of(DATA, USER, {"w": path}, LayerSliceSpec(layers=(layer,), epoch=2))
    with pytest.raises(SpecError, match=f"nope.weight is not a tensor of {USER.name}; its weight layers: {layer}"):
        ImportedSurfaceStage.of(DATA, USER, {"w": path}, LayerSliceSpec(layers=("nope.weight",)))
    assert ImportedSurfaceStage.of(DATA, USER, {"w": path}, LayerSliceSpec(layers=(layer,), epoch=0))


def test_cli_exports_and_analyses_weights(tmp_path, capsys):
    out = tmp_path / "w.safetensors"
    common = ["--model", USER.name, "--n-train", "200", "--n-test", "100"]
    assert main(["weights", "--export", str(out), *common, "--epochs", "2", "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert exported["epoch"] == 2 and out.exists() and weights_metadata(out)["model"]["name"] == USER.name
    assert main(["weights", "--analyse", str(out), *common, "--sal-rounds", "1", "--json"]) == 0
    analysed = json.loads(capsys.readouterr().out)
    assert analysed["layers"][0] == "stem.0.weight" and len(analysed["sal"]) == 5
    assert main(["weights", "--analyse", str(tmp_path / "nope.pt"), *common]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_analyse_refuses_weights_recorded_for_another_data_set(tmp_path, capsys):
    """Exported weights record their data set; analysing them on another one names both instead of running."""
    out = tmp_path / "w.safetensors"
    small = ["--model", "mlp", "--n-train", "200", "--n-test", "100"]
    assert main(["weights", "--export", str(out), *small, "--epochs", "1", "--json"]) == 0
    capsys.readouterr()
    x, y = get_splits(DATA).train.x.numpy(), get_splits(DATA).train.y.numpy()
    np.savez(tmp_path / "other.npz", x=np.random.default_rng(0).permutation(x), y=y)
    other = f"npz:{tmp_path / 'other.npz'}"
    assert main(["weights", "--analyse", str(out), "--dataset", other, "--model", "mlp", "--n-train", "100",
                 "--n-test", "40", "--sal-rounds", "1"]) == 2
    err = capsys.readouterr().err
    assert "trained on data set 'digits'" in err and f"asks for {other!r}" in err, err
    assert main(["weights", "--analyse", str(out), "--model", "mlp", "--n-train", "100", "--sal-rounds", "1",
                 "--json"]) == 0  # the same data set (another subset): analysed
    assert json.loads(capsys.readouterr().out)["layers"]


@pytest.mark.parametrize(("flags", "named"), [
    (["--analyse", "{w}"], None),  # a baseline: what the mode takes is accepted (then the missing file is named)
    (["--analyse", "{w}", "--method", "em"], ["--method"]),
    (["--analyse", "{w}", "--method", "clean"], ["--method"]),  # given, even as the default, is not used
    (["--analyse", "{w}", "--epochs", "3", "--lr", "0.5", "--seed", "1"], ["--epochs", "--lr", "--seed"]),
    (["--analyse", "{w}", "--batch-size", "8", "--augment", "none", "--crop-padding", "2"],
     ["--batch-size", "--augment", "--crop-padding"]),
    (["--analyse", "{w}", "--epoch", "0"], ["--epoch"]),
    (["--analyse", "{w}", "--sal-every", "2"], ["--sal-every"]),
    (["--export", "{d}/w.safetensors", "--sal-eps", "0.1", "--sal", "paper"], ["--sal", "--sal-eps"]),
])
def test_cli_weights_refuses_options_its_mode_does_not_use(tmp_path, capsys, flags, named):
    """weights --analyse reads weights trained elsewhere and --export measures no SAL: an option the mode would
    ignore is refused naming it, before any work (no file read, no run trained, nothing stored)."""
    argv = [f.format(w=tmp_path / "missing.safetensors", d=tmp_path) for f in flags]
    code = main(["weights", *argv, "--n-train", "20", "--n-test", "10", "--store", str(tmp_path / "store")])
    assert code == 2
    err = capsys.readouterr().err
    if named is None:
        assert "missing.safetensors does not exist" in err, err
        return
    assert err.startswith(f"error: {', '.join(named)}: not used by --{flags[0][2:]}") and "; leave" in err, err
    assert not (tmp_path / "store").exists() and not (tmp_path / "w.safetensors").exists()


def _stored_as_before_the_check(run: ImportedRun, state: dict, store) -> None:
    """The entry `ImportedRun.compute` stored before NaN/inf weights were refused (5fe7949): the state as read."""
    from landscape.train import HISTORY_KEYS, TrainResult

    old = TrainResult({k: np.zeros(0) for k in HISTORY_KEYS}, [0], [state], None, {"weights": run.path})
    store.save(run.folder, run.key(), *old.to_store(), spec=run.record())


def test_a_stored_import_of_nan_weights_from_an_older_store_is_refused(tmp_path, store):
    """An older store served imported weights with NaN/inf unchecked; loading the entry now refuses them with the
    import's own error (the entry is dropped), so SAL is not measured at them."""
    from landscape.store import StoreWarning

    net = build_model("cnn", (1, 8, 8), 10)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state["2.weight"].view(-1)[:3] = float("nan")
    state["7.bias"][0] = -float("inf")
    path = save_weights(state, tmp_path / "bad.safetensors")
    run = ImportedRun.of(DataSpec(n_train=100), ModelSpec("cnn"), path)
    _stored_as_before_the_check(run, state, store)
    why = r"not finite in 2 tensor\(s\): 2\.weight \(3 NaN of 2,304\), 7\.bias \(1 inf of 32\)"
    with pytest.warns(StoreWarning, match=f"weights/{run.key()} .* is unusable .*{why}"), \
            pytest.raises(DataError, match=f"^the weights {path} are {why}"):
        ImportedSALStage.of(run, SALSpec(rounds=1)).get(Context(store))
    assert store.load(run.folder, run.key()) is None and not store.keys(ImportedSALStage.folder)


def test_imported_weights_are_checked_once_and_an_older_finite_entry_still_serves(tmp_path, store, monkeypatch):
    import landscape.stages.weights as stages
    import landscape.weights as weights

    calls = []

    def counted(*args, **kwargs):
        calls.append(args[2])
        return check(*args, **kwargs)

    check = weights.check_finite
    monkeypatch.setattr(weights, "check_finite", counted)
    monkeypatch.setattr(stages, "check_finite", counted)
    net = build_model("cnn", (1, 8, 8), 10)
    path = save_weights(net.state_dict(), tmp_path / "w.safetensors")
    run = ImportedRun.of(DataSpec(n_train=100), ModelSpec("cnn"), path)
    first = run.get(Context(store))  # imported: checked once, on reading the file (not again on decoding it)
    assert calls == [run.path]
    again = run.get(Context(store))  # served from the store: checked when it was stored
    assert calls == [run.path]
    assert all(torch.equal(first.final_state[k], again.final_state[k]) for k in net.state_dict())
    older = Store(tmp_path / "older")
    _stored_as_before_the_check(run, {k: v.clone() for k, v in net.state_dict().items()}, older)
    served = run.get(Context(older))  # an entry stored before the check: checked on loading, and served
    assert calls == [run.path, run.path] and older.load(run.folder, run.key()) is not None
    assert all(torch.equal(served.final_state[k], first.final_state[k]) for k in net.state_dict())
