"""Typed lookups of the hub's parts for route handlers: the wiring place (hub/app.py) gives the
app its `Parts` once, and a handler asks for it by class, or by `Slot` for a part that is
a protocol or a function: `Alerts = Annotated[AlertService, Depends(part(AlertService))]`."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, Generic, TypeVar, cast

from fastapi import FastAPI, Request

from hub.core.clock import Clock

T = TypeVar("T")


class Slot(Generic[T]):
    """A part known by name rather than by its class."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Slot({self.name!r})"


CLOCK: Slot[Clock] = Slot("clock")
# Alerts kept off the staff's lists, streams and answers (walk-test alerts).
HIDE_ALERT: Slot[Callable[[dict[str, Any]], bool]] = Slot("hide_alert")
# A user's name for people to read (hub/access/users.py `UserStore.name_of`).
NAME_OF: Slot[Callable[[str], str]] = Slot("name_of")


class Parts:
    """The parts the routes may ask for: each under its own class (`add`), or under a slot its
    type is checked against (`fill`), so a route gets what its annotation says."""

    def __init__(self) -> None:
        self._by_key: dict[type[Any] | Slot[Any], object] = {}

    def add(self, *parts: object) -> None:
        for found in parts:
            self._by_key[type(found)] = found

    def fill(self, slot: Slot[T], value: T) -> None:
        self._by_key[slot] = value

    def provide(self, app: FastAPI) -> None:
        app.state.parts = dict(self._by_key)


@cache
def part(key: type[T] | Slot[T]) -> Callable[[Request], T]:
    """The dependency answering the part provided under `key` (the same one for every route)."""

    def lookup(request: Request) -> T:
        return cast(T, request.app.state.parts[key])

    lookup.__name__ = f"part_{key.name if isinstance(key, Slot) else key.__name__}"
    return lookup
