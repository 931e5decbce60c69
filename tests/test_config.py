import pytest

from landscape.config import (
    DataSpec,
    ExperimentSpec,
    ModelSpec,
    PoisonSpec,
    SALSpec,
    SurfaceSpec,
    TrainSpec,
    choices,
    combined_key,
)
from landscape.errors import SpecError, UnknownNameError
from landscape.registry import Registry


def test_key_is_stable_and_content_addressed():
    assert TrainSpec().key() == TrainSpec().key()
    assert TrainSpec(seed=1).key() != TrainSpec().key()
    assert DataSpec().key() != ModelSpec().key()
    # A fixed value guards against accidental changes of the hashing scheme (would orphan every store entry).
    assert TrainSpec().key() == "0c820fb26110e5d7" and ExperimentSpec().key() == "b68623badaa62652"
    assert combined_key(DataSpec(), None) != combined_key(DataSpec(), TrainSpec())


def test_nesterov_keeps_every_train_key_at_its_default():
    """TrainSpec.nesterov was added later: at False it is left out of keys (hex taken before the field existed)."""
    assert TrainSpec(nesterov=False).key() == TrainSpec().key() == "0c820fb26110e5d7"
    assert TrainSpec(optimizer="adam", momentum=0.0, lr=3e-3, weight_decay=0.0).key() == "4be53a2702a302de"
    cifar = TrainSpec(epochs=40, lr=0.1, batch_size=128, augment="crop_flip", crop_padding=4, schedule="multistep")
    assert cifar.key() == "3e8f4095094b9925" and "nesterov" not in cifar.to_dict()
    assert cifar.replace(nesterov=True).key() != cifar.key()
    assert TrainSpec.from_dict(cifar.replace(nesterov=True).to_dict()) == cifar.replace(nesterov=True)
    assert TrainSpec(optimizer="adam").nesterov is False and TrainSpec(momentum=0.0).nesterov is False  # allowed


def test_specs_are_frozen():
    spec = TrainSpec()
    with pytest.raises(AttributeError):
        spec.epochs = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        ({"epochs": -1}, "TrainSpec.epochs = -1"),
        ({"epochs": 0}, "TrainSpec.epochs"),
        ({"lr": 0.0}, "TrainSpec.lr = 0.0"),
        ({"lr": -0.1}, "(0.0, 10.0]"),
        ({"lr": float("nan")}, "TrainSpec.lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "rmsprop"}, "sgd, adam"),
        ({"augment": "rotate"}, "none, crop, crop_flip"),
        ({"epochs": 2.5}, "must be an integer"),
        ({"nesterov": True, "optimizer": "adam"}, "TrainSpec.nesterov = True needs optimizer 'sgd' with momentum > 0, "
                                                  "got optimizer = 'adam', momentum = 0.9"),
        ({"nesterov": True, "momentum": 0.0}, "got optimizer = 'sgd', momentum = 0.0"),
        ({"nesterov": True, "momentum": 0}, "momentum = 0"),
        ({"nesterov": 1}, "TrainSpec.nesterov = 1 must be true or false"),
    ],
)
def test_invalid_train_numbers_name_field_and_range(kwargs, needle):
    with pytest.raises(SpecError) as err:
        TrainSpec(**kwargs)
    assert needle in str(err.value)


def test_unknown_names_list_valid_choices():
    """A spec checks types and ranges only; names are checked where the stage layer resolves it."""
    from landscape.stages.base import resolve_data, resolve_model, resolve_poison

    spec = DataSpec(name="no-such-set")  # constructing never looks the name up (nor imports the engine)
    with pytest.raises(UnknownNameError) as err:
        resolve_data(spec)
    assert "digits" in str(err.value) and "cifar10" in str(err.value) and "'no-such-set'" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        resolve_model(ModelSpec(name="vgg"))
    for name in ("linear", "mlp", "cnn", "lenet5", "resnet18"):
        assert name in str(err.value)
    with pytest.raises(SpecError) as err:
        resolve_poison(PoisonSpec(method="nope"), DataSpec())
    assert "clean" in str(err.value)


def test_data_subset_sizes_validated():
    with pytest.raises(SpecError, match="n_train"):
        DataSpec(n_train=0)


def test_registry_rejects_duplicates_and_lists_names():
    reg: Registry[int] = Registry("thing")
    reg.register("a")(1)
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(2)
    assert reg.names() == ["a"] and "a" in reg and reg.get("a") == 1
    with pytest.raises(UnknownNameError, match="valid choices: a"):
        reg.get("b")


def test_from_dict_round_trip_and_unknown_field():
    spec = TrainSpec(epochs=3, lr=0.2)
    assert TrainSpec.from_dict(spec.to_dict()) == spec
    with pytest.raises(SpecError, match="no field"):
        TrainSpec.from_dict({"epoch": 3})


def test_fields_are_checked_against_their_annotations():
    with pytest.raises(SpecError, match=r"SurfaceSpec.dims = 3 is not valid; choose one of 1, 2"):
        SurfaceSpec(dims=3)
    with pytest.raises(SpecError, match="SALSpec.rounds = True must be an integer"):
        SALSpec(rounds=True)
    with pytest.raises(SpecError, match="SALSpec.augment = 1 must be true or false"):
        SALSpec(augment=1)
    with pytest.raises(SpecError, match="ExperimentSpec.data must be a DataSpec, got int"):
        ExperimentSpec(data=3)
    with pytest.raises(SpecError, match=r"SALSpec.eval_size = 0 is out of range; expected a value in \[1, "):
        SALSpec(eval_size=0)
    assert SALSpec(eval_size=None).eval_size is None  # an optional field may be None
    assert SurfaceSpec(alpha_range=[0, 1]).alpha_range == (0.0, 1.0)  # lists from JSON become tuples
    # the choices of a field are written once, in its Literal annotation, and read from there (CLI, app)
    assert choices(TrainSpec, "optimizer") == ("sgd", "adam") and choices(SurfaceSpec, "dims") == (1, 2)
    with pytest.raises(TypeError, match="not a Literal"):
        choices(TrainSpec, "lr")


def test_kept_epochs_are_known_from_the_training_spec():
    """The epochs a run keeps (checked before it trains): 0, every checkpoint_every-th, the last."""
    assert TrainSpec(epochs=5, checkpoint_every=2).kept_epochs == (0, 2, 4, 5)
    assert TrainSpec(epochs=4, checkpoint_every=10).kept_epochs == (0, 4)
    assert TrainSpec(epochs=3).kept_epochs == (0, 1, 2, 3)
    assert TrainSpec(epochs=3).check_kept(0, "epoch") == 0
    with pytest.raises(SpecError, match=r"^--epoch -1 is not a stored epoch: training for 3 epochs keeps epochs 0, 1"):
        TrainSpec(epochs=3).check_kept(-1, "--epoch")
    with pytest.raises(SpecError, match=r"^x = 101 is not a stored epoch: .* keeps epochs 0, 1, \.\.\., 100$"):
        TrainSpec(epochs=100).check_kept(101, "x")  # a long list is shortened
