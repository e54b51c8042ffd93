"""Small helpers shared by the edge tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


async def eventually(predicate: Callable[[], object], within: float = 10.0) -> None:
    """Poll `predicate` until it is true; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - polling state that has no event to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not true within {within} s: {predicate}") from None


class FakeClock:
    """An injectable wall clock that starts at the real time and moves only when told."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
