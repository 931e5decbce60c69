"""One generic registry: register by decorator, fail loudly on unknown or duplicate names.

Every pluggable family (data sets, models, poisons, defenses, tasks) is a `Registry`, so a new member
is picked up by the CLI, the app and the contract tests without touching them. An entry carries its own
metadata (`register(name, **meta)`, read back with `meta(name)`), e.g. a data set's poison-defaults family,
its channels and whether it reads files, so nothing else lists the members by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import Any, Generic, TypeVar

from landscape.errors import UnknownNameError

T = TypeVar("T")


class Registry(Generic[T]):
    """A name -> object mapping filled by the `register` decorator.

    Args:
        kind: what the members are ("model", "poison method", ...), used in error messages.
        also_valid: values that are valid where a member name is expected but are no member (e.g. the
            poison method "clean"); error messages list them first.
    """

    def __init__(self, kind: str, *, also_valid: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.also_valid = also_valid
        self._items: dict[str, T] = {}
        self._meta: dict[str, Mapping[str, Any]] = {}

    def register(self, name: str, **meta: Any) -> Callable[[T], T]:
        """Decorator that registers its target under `name` with its metadata; a second registration fails."""

        def decorate(obj: T) -> T:
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = obj
            self._meta[name] = MappingProxyType(dict(meta))
            return obj

        return decorate

    def get(self, name: str) -> T:
        """The member registered as `name`; an unknown name raises `UnknownNameError` listing valid names."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid choices: {', '.join([*self.also_valid, *self.names()])}"
            ) from None

    def meta(self, name: str) -> Mapping[str, Any]:
        """The metadata `name` was registered with (read-only); an unknown name raises like `get`."""
        self.get(name)
        return self._meta[name]

    def check(self, name: str) -> str:
        """Return `name` if registered, else raise like `get`."""
        self.get(name)
        return name

    def names(self) -> list[str]:
        """Registered names in registration order."""
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)
