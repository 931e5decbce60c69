"""#18 acceptance 1 (property part): over the whole spec space, a spec validates or raises `SpecError`, nothing else.

Every spec class (every subclass of `landscape.spec.Spec` the engine defines) is built from field values drawn
by Hypothesis: the field's own kind of value (choices of a `Literal`, numbers near and far beyond its range,
huge integers, NaN and infinities), and anything else (strings, booleans, None, lists, dicts, nested junk),
both through the constructor and through `from_dict` (with unknown keys too). A spec that validates must give a
key, and come back equal, with the same key, from its own `to_dict()`.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
import typing

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from landscape.errors import SpecError
from landscape.spec import Spec

# the modules that define specs (importing them registers their classes as subclasses of Spec)
SPEC_MODULES = ("landscape.config", "landscape.multitask", "landscape.stages.base", "landscape.stages.weights",
                "landscape.poisons")  # the last: every UE method's typed options (`MethodOptions`)


def _spec_classes() -> list[type[Spec]]:
    for name in SPEC_MODULES:
        importlib.import_module(name)
    found, todo = [], list(Spec.__subclasses__())
    while todo:
        cls = todo.pop()
        todo.extend(cls.__subclasses__())
        if dataclasses.is_dataclass(cls):
            found.append(cls)
    return sorted(set(found), key=lambda c: c.__name__)


CLASSES = _spec_classes()

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, 1, -1, 2**63 - 1, 2**63, 2**64, 10**400]),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["", " ", "none", "clean", "digits", "cnn", "em", "8/255", "\x00", "~nosuchuser/x"]),
)
junk = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.tuples(inner, inner),
                                                     st.dictionaries(st.text(max_size=5), inner, max_size=3)),
                    max_leaves=6)
pairs = st.lists(st.tuples(st.sampled_from(["steps", "mode", "eps", "", "x"]) | st.text(max_size=8), junk),
                max_size=3).map(tuple)


def _value_for(hint: typing.Any, default: typing.Any) -> st.SearchStrategy:
    """Values for a field: its default, values of its own kind, and junk."""
    own: list[st.SearchStrategy] = [st.just(default)] if default is not dataclasses.MISSING else []
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    base = typing.get_origin(hint)
    if base is typing.Literal:
        own.append(st.sampled_from(typing.get_args(hint)))
    elif isinstance(hint, type) and issubclass(hint, Spec):
        own.append(st.builds(hint))
    elif base in (typing.Union, __import__("types").UnionType) and args:
        own.append(_value_for(args[0], dataclasses.MISSING))
    elif hint is int:
        own.append(st.integers(min_value=-5, max_value=20_000))
    elif hint is float:
        own.append(st.floats(min_value=-2.0, max_value=20.0))
    elif base is tuple:
        own.append(pairs)
        own.append(st.lists(st.text(max_size=6), max_size=3).map(tuple))
    return st.one_of(*own, junk)


@st.composite
def field_values(draw, cls: type[Spec]) -> dict[str, typing.Any]:
    hints = typing.get_type_hints(cls)
    out = {}
    for f in dataclasses.fields(cls):
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if default is not dataclasses.MISSING and draw(st.booleans()):
            continue  # leave it at its default
        out[f.name] = draw(_value_for(hints[f.name], default))
    return out


def _check_valid(spec: Spec) -> None:
    key = spec.key()
    assert isinstance(key, str) and len(key) == 16
    again = type(spec).from_dict(spec.to_dict())
    assert again == spec and again.key() == key


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_a_spec_validates_or_raises_spec_error(cls, data):
    values = data.draw(field_values(cls))
    try:
        spec = cls(**values)
    except SpecError:
        return
    _check_valid(spec)


@pytest.mark.parametrize("cls", CLASSES, ids=[c.__name__ for c in CLASSES])
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_from_dict_validates_or_raises_spec_error(cls, data):
    values = data.draw(field_values(cls))
    values.update(data.draw(st.dictionaries(st.sampled_from(["nosuch", "Name", ""]), junk, max_size=1)))
    plain = {k: (v.to_dict() if isinstance(v, Spec) else v) for k, v in values.items()}
    try:
        spec = cls.from_dict(plain)
    except SpecError:
        return
    _check_valid(spec)


def _defaults_only(cls: type) -> bool:
    return all(f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
               for f in dataclasses.fields(cls))


WITH_FLOATS = [c for c in CLASSES if _defaults_only(c) and float in typing.get_type_hints(c).values()]


@pytest.mark.parametrize("cls", WITH_FLOATS, ids=lambda c: c.__name__)
def test_an_integer_beyond_the_float_range_is_a_spec_error(cls):
    """Found by Hypothesis (seed 19): an int given for a float option overflowed in the int -> float conversion."""
    name = next(n for n, h in typing.get_type_hints(cls).items() if h is float)
    with pytest.raises(SpecError, match=name):
        cls(**{name: 10**400})


def test_every_spec_class_is_covered():
    names = {c.__name__ for c in CLASSES}
    assert {"DataSpec", "ModelSpec", "TrainSpec", "PoisonSpec", "DefenseSpec", "SALSpec", "SurfaceSpec",
            "CurvatureSpec", "ExperimentSpec", "CrossTaskSpec", "EMOptions"} <= names, names
    assert math.isfinite(len(names))
