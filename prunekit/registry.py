"""A small named registry, one per extension point (criteria, schedules, layer rules...).

A duplicate name raises; an unknown name raises :class:`~prunekit.errors.UnknownNameError` that
lists the choices and suggests the closest one.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from prunekit.errors import ConfigError, UnknownNameError

__all__ = ["Registry"]

T = TypeVar("T")


class Registry(Generic[T]):
    """Maps names to objects of one kind.

    Args:
        kind: what the registry holds, used in messages ("criterion", "schedule"...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._help: dict[str, str] = {}

    def add(self, name: str, item: T, *, description: str = "") -> T:
        """Registers ``item`` under ``name``; raises if the name is taken."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{self.kind} name must be a non-empty string, but got {name!r}")
        if name in self._items:
            raise ConfigError(f"a {self.kind} named {name!r} is already registered", module=name)
        self._items[name] = item
        self._help[name] = description
        return item

    def remove(self, name: str) -> None:
        """Unregisters ``name`` (raises with the choices if it is not registered)."""
        self.get(name)
        del self._items[name]
        self._help.pop(name, None)

    def register(self, name: str, *, description: str = "") -> Callable[[T], T]:
        """Decorator form of :meth:`add`."""

        def wrap(item: T) -> T:
            return self.add(name, item, description=description)

        return wrap

    def get(self, name: str, *, argument: str | None = None) -> T:
        """Returns the item named ``name`` or raises with the list of choices."""
        try:
            return self._items[name]
        except (KeyError, TypeError):
            message = self.unknown_message(name, argument=argument)
            if argument is None:
                raise UnknownNameError(message, module=str(name)) from None
            raise UnknownNameError(message, module=argument, detail=self.unknown_message(name)) from None

    def unknown_message(self, name: object, *, argument: str | None = None) -> str:
        choices = sorted(self._items)
        close = difflib.get_close_matches(str(name), choices, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        where = f"{argument}: " if argument else ""
        return f"{where}unknown {self.kind} {name!r}{hint} Choices: {', '.join(choices)}"

    def describe(self, name: str) -> str:
        return self._help.get(name, "")

    def names(self) -> list[str]:
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
