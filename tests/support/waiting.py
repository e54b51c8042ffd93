"""Waiting in tests for what happens on its own time (a message through a real broker, a
page's update): poll a condition until it holds, and fail saying which did not."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Callable


async def eventually(check: Callable[..., object], within: float = 10.0) -> None:
    """Poll `check` (plain or async) until it is true; fail after `within` seconds."""
    try:
        async with asyncio.timeout(within):
            while True:
                result = check()
                if inspect.isawaitable(result):
                    result = await result
                if result:
                    return
                await asyncio.sleep(0.02)
    except TimeoutError:
        raise AssertionError(f"not true within {within} s: {check.__doc__ or check}") from None
