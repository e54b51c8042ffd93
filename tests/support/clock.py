"""The tests' one fake clock: time moves only when a test moves it.

It is the hub's `Clock` (`now()`, `await sleep(s)`) and the edge's clock callable (`clock()`).
A test moves it by `advance(seconds)`, which wakes every sleeper whose time has come, or lets
`drive(task)` jump from one sleeper's wake-up to the next until the task is done (a whole night
of a scenario in no wall-clock time).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time


class FakeClock:
    def __init__(self, start: float | None = None) -> None:
        """`start`: Unix seconds; the real time now if not given."""
        self._now = time.time() if start is None else start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()

    def now(self) -> float:
        return self._now

    def __call__(self) -> float:
        return self._now

    async def sleep(self, seconds: float) -> None:
        woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (self._now + max(0.0, seconds), next(self._order), woken))
        if seconds <= 0:
            self._wake_due()
        await woken

    def advance(self, seconds: float) -> None:
        self._now += seconds
        self._wake_due()

    async def drive(self, until_done: asyncio.Task[None]) -> None:
        """Run `until_done`, jumping the time to each next sleeper's wake-up whenever every
        woken task has gone back to sleep."""
        while not until_done.done():
            for _ in range(5):  # let every woken task run up to its next sleep
                await asyncio.sleep(0)
            if self._sleepers:
                self._now = max(self._now, self._sleepers[0][0])
                self._wake_due()

    def _wake_due(self) -> None:
        while self._sleepers and self._sleepers[0][0] <= self._now:
            _, _, woken = heapq.heappop(self._sleepers)
            if not woken.done():  # not a sleeper cancelled meanwhile
                woken.set_result(None)
