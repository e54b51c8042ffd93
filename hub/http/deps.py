"""Typed lookups of the hub's parts for route handlers: the wiring place (hub/app.py) provides
each part to the app once, and a handler asks for it by class, or by `Slot` for a part that is
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

Key = type[Any] | Slot[Any]


def provide(app: FastAPI, key: type[T] | Slot[T], value: T) -> None:
    if not hasattr(app.state, "parts"):
        app.state.parts = {}
    app.state.parts[key] = value


@cache
def part(key: type[T] | Slot[T]) -> Callable[[Request], T]:
    """The dependency answering the part provided under `key` (the same one for every route)."""

    def lookup(request: Request) -> T:
        return cast(T, request.app.state.parts[key])

    lookup.__name__ = f"part_{key.name if isinstance(key, Slot) else key.__name__}"
    return lookup
