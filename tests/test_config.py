import pytest

from landscape.config import DataSpec, ModelSpec, PoisonSpec, TrainSpec, combined_key
from landscape.errors import SpecError, UnknownNameError
from landscape.registry import Registry


def test_key_is_stable_and_content_addressed():
    assert TrainSpec().key() == TrainSpec().key()
    assert TrainSpec(seed=1).key() != TrainSpec().key()
    assert DataSpec().key() != ModelSpec().key()
    # A fixed value guards against accidental changes of the hashing scheme (would orphan every store entry).
    assert len(TrainSpec().key()) == 16 and int(TrainSpec().key(), 16) >= 0
    assert combined_key(DataSpec(), None) != combined_key(DataSpec(), TrainSpec())


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
    ],
)
def test_invalid_train_numbers_name_field_and_range(kwargs, needle):
    with pytest.raises(SpecError) as err:
        TrainSpec(**kwargs)
    assert needle in str(err.value)


def test_unknown_names_list_valid_choices():
    with pytest.raises(UnknownNameError) as err:
        DataSpec(name="mnist")
    assert "digits" in str(err.value) and "cifar10" in str(err.value) and "'mnist'" in str(err.value)
    with pytest.raises(UnknownNameError) as err:
        ModelSpec(name="vgg")
    for name in ("linear", "mlp", "cnn", "lenet5", "resnet18"):
        assert name in str(err.value)
    with pytest.raises(SpecError) as err:
        PoisonSpec(method="nope")
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
