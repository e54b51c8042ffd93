"""The hub's notion of now, injectable so tests and scenarios can run a night in seconds."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the Unix epoch."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` of this clock's time."""
        ...


class SystemClock:
    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class ScaledClock:
    """Time that starts at `start` and runs `speed` times faster than the wall clock.

    A night of 8 hours at speed 3600 passes in 8 seconds. Give the same clock to the hub and to
    the simulated edge agents so that sensed times and timers agree.

    A clock made `held` stands still at `start` (and its sleepers wait) until `release()`, so a
    simulated world can boot without its first minutes of simulated time slipping away.
    """

    def __init__(self, start: float, speed: float, *, held: bool = False) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self._origin: float | None = None
        self._running = asyncio.Event()
        if not held:
            self.release()

    def release(self) -> None:
        """Let time run from `start` on (a clock not made `held` runs from its creation)."""
        if self._origin is None:
            self._origin = time.monotonic()
            self._running.set()

    def now(self) -> float:
        if self._origin is None:
            return self.start
        return self.start + (time.monotonic() - self._origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await self._running.wait()
        await asyncio.sleep(max(0.0, seconds) / self.speed)
