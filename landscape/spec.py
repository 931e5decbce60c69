"""The spec machinery: a frozen dataclass mixin with validated fields, a stable content key, and its helpers.

`landscape.config` defines the specs themselves on top of this; this module imports nothing of the engine but
`landscape.errors`, so constructing a spec never imports torch or a registry.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
import types
import typing
from dataclasses import field
from typing import Any, Literal

from landscape.errors import SpecError

# 2: training and crafting pinned to `landscape.device.CPU_THREADS` on the CPU; entries made before were
# computed with the machine's thread count and are not reused.
SCHEMA_VERSION = 2


# Field metadata flag: a field added after keys were in use is left out of `to_dict()` (so of `key()`) while it
# holds its default, so every spec that does not use it keeps the key it had before the field existed.
OMIT_DEFAULT = "omit_default"


def bounded(default: Any, lo: float, hi: float | None = None, *, lo_open: bool = False,
            omit_default: bool = False) -> Any:
    """A spec field with a range, checked on construction: lo <= value <= hi (lo < value with `lo_open`).

    `hi=None` means no upper bound; a None value (for an optional field) is not range-checked. With
    `omit_default` the field is left out of `to_dict()` and `key()` at its default (see `added_field`).
    """
    return field(default=default, metadata={"range": (lo, hi, lo_open), OMIT_DEFAULT: omit_default})


def added_field(default: Any = dataclasses.MISSING, *, default_factory: Any = dataclasses.MISSING) -> Any:
    """A field added after keys were in use: left out of `to_dict()` and `key()` while it holds its default.

    Old specs keep their keys (and stored entries); a spec that sets the field gets a new key.
    """
    return field(default=default, default_factory=default_factory, metadata={OMIT_DEFAULT: True})


def _at_default(f: dataclasses.Field, value: Any) -> bool:
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    return bool(value == default)


def _plain(value: Any) -> Any:
    """A field value as plain data: nested specs as their `to_dict()`, tuples and lists element by element."""
    if isinstance(value, Spec):
        return value.to_dict()
    if isinstance(value, (tuple, list)):
        return type(value)(_plain(v) for v in value)
    return value


def check_choice(owner: str, name: str, value: Any, choices: tuple[Any, ...]) -> None:
    """Raise `SpecError` naming the field and the valid choices unless `value` is one of `choices` (same type)."""
    if not any(value == c and type(value) is type(c) for c in choices):
        raise SpecError(f"{owner}.{name} = {value!r} is not valid; choose one of {', '.join(map(str, choices))}")


def _check_range(owner: str, name: str, value: float, lo: float, hi: float | None, lo_open: bool) -> None:
    finite = not isinstance(value, float) or math.isfinite(value)  # an int may be too large to convert to float
    ok = finite and (value > lo if lo_open else value >= lo) and (hi is None or value <= hi)
    if not ok:
        bracket = "(" if lo_open else "["
        expected = f"a value {'>' if lo_open else '>='} {lo}" if hi is None else f"a value in {bracket}{lo}, {hi}]"
        raise SpecError(f"{owner}.{name} = {value!r} is out of range; expected {expected}")


def _optional(hint: Any) -> tuple[Any, bool]:
    """(X, True) for an `X | None` hint, else (hint, False); other unions are not checked (Any)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return (args[0] if len(args) == 1 else Any), len(args) < len(typing.get_args(hint))
    return hint, False


def _check_type(owner: str, name: str, value: Any, hint: Any) -> None:
    """Raise `SpecError` unless `value` fits the field's annotation (Literal, int, float, bool, str, a Spec)."""
    hint, nullable = _optional(hint)
    if value is None and nullable:
        return
    if typing.get_origin(hint) is Literal:
        check_choice(owner, name, value, typing.get_args(hint))
        return
    problems = {
        bool: ("true or false", isinstance(value, bool)),
        int: ("an integer", isinstance(value, int) and not isinstance(value, bool)),
        float: ("a number", isinstance(value, (int, float)) and not isinstance(value, bool)),
        str: ("a string", isinstance(value, str)),
        tuple: ("a tuple", isinstance(value, (tuple, list))),
    }
    base = typing.get_origin(hint) or hint
    if base in problems and not problems[base][1]:
        what = problems[base][0] + (" or None" if nullable else "")
        raise SpecError(f"{owner}.{name} = {value!r} must be {what}")
    if isinstance(base, type) and issubclass(base, Spec) and not isinstance(value, base):
        raise SpecError(f"{owner}.{name} must be a {base.__name__}, got {type(value).__name__}")
    if base is tuple and typing.get_args(hint):  # tuple[X, ...] or tuple[X, Y]: every element too
        args = typing.get_args(hint)
        each = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(each) != len(value):
            raise SpecError(f"{owner}.{name} = {value!r} must hold {len(each)} values, not {len(value)}")
        for i, (item, item_hint) in enumerate(zip(value, each, strict=True)):
            if item_hint is not Any:
                _check_type(owner, f"{name}[{i}]", item, item_hint)


@functools.cache
def field_hints(cls: type) -> dict[str, Any]:
    """The resolved annotations of a dataclass's fields (cached per class)."""
    return typing.get_type_hints(cls)


def choices(cls: type, name: str) -> tuple[Any, ...]:
    """The valid values of a spec field annotated `Literal[...]` (the one place a choice list is written)."""
    hint, _ = _optional(field_hints(cls)[name])
    if typing.get_origin(hint) is not Literal:
        raise TypeError(f"{cls.__name__}.{name} is not a Literal field")
    return typing.get_args(hint)


class Spec:
    """Mixin for frozen dataclass specs: validated fields, a stable `key()`, `to_dict()` and `from_dict()`.

    On construction every field is checked against its annotation (`Literal` choices, int, float, bool,
    str, nested specs) and its `bounded` range, then `check()` runs the rules that involve several fields.
    A spec checks types and ranges only: whether a name is registered is checked where the spec is
    resolved (the `resolve_*` functions of `landscape.stages.base`), so constructing a spec never imports the engine.
    """

    def __post_init__(self) -> None:
        owner = type(self).__name__
        hints = field_hints(type(self))
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if isinstance(value, list):  # specs hold tuples (hashable); JSON gives lists back
                value = tuple(value)
                object.__setattr__(self, f.name, value)
            _check_type(owner, f.name, value, hints[f.name])
            if "range" in f.metadata and value is not None:
                _check_range(owner, f.name, value, *f.metadata["range"])
        self.check()

    def check(self) -> None:
        """Rules between fields, or normalisation (a subclass overrides; each field is checked before)."""

    def to_dict(self) -> dict[str, Any]:
        """Plain nested dict of the fields (JSON-serialisable); `added_field`s at their default are left out."""
        return {f.name: _plain(getattr(self, f.name)) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if not (f.metadata.get(OMIT_DEFAULT) and _at_default(f, getattr(self, f.name)))}

    def key(self) -> str:
        """Stable 16-hex-digit content hash of the class name, schema version and fields."""
        payload = json.dumps(
            {"spec": type(self).__name__, "schema": SCHEMA_VERSION, "fields": self.to_dict()},
            sort_keys=True,
            separators=(",", ":"),
            default=str,
        )
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def replace(self, **changes: Any) -> Any:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Inverse of `to_dict` (JSON's lists included): nested specs and tuples of specs are rebuilt from dicts."""
        if not isinstance(data, dict):
            raise SpecError(f"{cls.__name__} must be given as a mapping of its fields, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = set(data) - names
        if unknown:
            raise SpecError(f"{cls.__name__} has no field(s) {sorted(map(str, unknown))}; valid fields: "
                            f"{sorted(names)}")
        hints = field_hints(cls)
        return cls(**{name: _from_plain(value, hints[name]) for name, value in data.items()})


def _from_plain(value: Any, hint: Any) -> Any:
    """A field value from plain data: a dict for a nested spec becomes that spec, lists become tuples."""
    hint, _ = _optional(hint)
    base = typing.get_origin(hint) or hint
    if isinstance(base, type) and issubclass(base, Spec) and isinstance(value, dict):
        return base.from_dict(value)
    if base is tuple and isinstance(value, (list, tuple)):
        args = typing.get_args(hint)
        each = args[:1] * len(value) if len(args) == 2 and args[1] is Ellipsis else args
        if len(each) != len(value):
            return tuple(value)  # the type check names the length
        return tuple(v if h is Any else _from_plain(v, h) for v, h in zip(value, each, strict=True))
    return value


def options_dict(options: tuple[tuple[str, Any], ...]) -> dict[str, Any]:
    """The method-specific options of a spec as a dict (specs store them as sorted pairs to stay hashable)."""
    return dict(options)


def checked_options(owner: str, options: tuple[tuple[str, Any], ...]) -> tuple[tuple[str, Any], ...]:
    """`options` as sorted (name, value) pairs; refused unless the names are distinct and every value is plain.

    The pairs themselves (two items, a string name) are checked by the field's annotation before.
    """
    names = [name for name, _ in options]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise SpecError(f"{owner}.options names {repeated} more than once; give each option once")
    for name, value in options:
        if not isinstance(value, (bool, int, float, str, type(None))) or (isinstance(value, float)
                                                                         and not math.isfinite(value)):
            raise SpecError(f"{owner}.options {name} = {value!r} must be a finite number, true/false, a string "
                            f"or None")
    return tuple(sorted((name, value) for name, value in options))


def freeze_options(options: dict[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    """Sorted key/value pairs of `options`, the hashable form kept inside a spec."""
    return tuple(sorted((options or {}).items()))


def format_value(value: Any) -> str:
    """A spec value for display: budgets on the 8-bit scale as "8/255", other floats with `:g`."""
    if isinstance(value, float):
        levels = value * 255
        if abs(levels - round(levels)) < 1e-9 and value < 1:  # a budget on the 8-bit scale: "8/255"
            return f"{round(levels)}/255"
        return f"{value:g}"
    return str(value)


def plural(n: int, noun: str, nouns: str | None = None) -> str:
    """A count with its noun for messages: ``1 epoch``, ``3 epochs``; `nouns` where "s" is wrong (``2 classes``)."""
    return f"{n} {noun if n == 1 else nouns or noun + 's'}"


def parse_value(text: str) -> Any:
    """An option value written as text: true/false, none, an int, a float or a fraction ("8/255")."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        if "/" in text:  # "8/255"
            num, den = text.split("/", 1)
            return float(num) / float(den)
        return float(text)
    except (ValueError, ZeroDivisionError):
        raise SpecError(f"defense option value {text!r} is not a number, a fraction like 8/255, true/false or "
                        f"none") from None
