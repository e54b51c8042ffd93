"""Small helpers shared by the edge tests."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


async def eventually(predicate: Callable[[], object], within: float = 10.0) -> None:
    """Poll `predicate` until it is true; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while not predicate():  # noqa: ASYNC110 - polling state that has no event to await
                await asyncio.sleep(0.01)
    except TimeoutError:
        raise AssertionError(f"not true within {within} s: {predicate}") from None
