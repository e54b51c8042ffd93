"""Durable timers: "if she is not back in bed by 03:40", "escalate at step 2 in 3 minutes".

Timers live in SQLite, so a hub restart neither loses nor repeats them. A handler that opens or
changes an alert consumes its timer in the same transaction (`Trigger.consumes`), so
a crash between the two cannot fire it twice. Times come from the injectable clock.

A timer started or stopped while ingest evaluates a batch is written in that batch's own
transaction (the store's batch companion): stored with the reading that caused it, or not at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final

from hub.core.clock import Clock
from hub.core.database import Database, SyncConnection
from hub.core.store import Statement, Store

log = logging.getLogger("carewatch.hub.timers")

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS timers (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    due_at REAL NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
"""
UPSERT = (
    "INSERT INTO timers (kind, key, due_at, payload) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (kind, key) DO UPDATE SET due_at = excluded.due_at, payload = excluded.payload"
)
DELETE = "DELETE FROM timers WHERE kind = ? AND key = ?"
FLUSH_EVERY_S = 1.0
# How long the loop sleeps at most before looking again; bounds the cost of a clock jump.
MAX_NAP_S = 60.0

# A timer's kind and key.
TimerKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Timer:
    kind: str
    key: str
    due_at: float
    payload: dict[str, Any]


Handler = Callable[[Timer], Awaitable[None]]


class Timers:
    def __init__(self, store: Store, clock: Clock) -> None:
        self._store = store
        self._clock = clock
        self._handlers: dict[str, Handler] = {}
        self._due: dict[tuple[str, str], Timer] = {}
        self._heap: list[tuple[float, str, str]] = []
        self._wake = asyncio.Event()
        # Changed in memory, not yet in SQLite; and what the last write took of them.
        self._dirty: set[TimerKey] = set()
        self._taken: set[TimerKey] = set()
        self.fired = 0
        store.join_batches(self)

    async def load(self) -> None:
        await self._store.add_schema(SCHEMA)
        async with self._store.db.execute("SELECT kind, key, due_at, payload FROM timers") as cur:
            rows = list(await cur.fetchall())
        for kind, key, due_at, payload in rows:
            self._remember(Timer(str(kind), str(key), float(due_at), json.loads(payload)))
        log.info("loaded %d pending timers", len(rows))

    def on(self, kind: str, handler: Handler) -> None:
        self._handlers[kind] = handler

    def pending(self, kind: str, key: str) -> Timer | None:
        return self._due.get((kind, key))

    async def set(
        self,
        kind: str,
        key: str,
        due_at: float,
        payload: dict[str, Any],
        *,
        deferred: bool = False,
    ) -> None:
        """Start or move a timer; one per kind and key.

        `deferred` timers are written with the next batch (within FLUSH_EVERY_S) instead of at
        once. They are for standing timers that every reading pushes back (silence,
        inactivity): a crash loses at most their last push, which only makes them fire early
        (silence timers then re-check; an inactivity alert may come up to a minute early).
        A timer that is an alarm in waiting (not back in bed) is written at once, or, when set
        while ingest evaluates a batch, in that batch's transaction.
        """
        self._remember(Timer(kind, key, due_at, payload))
        self._dirty.add((kind, key))
        if not deferred:
            await self._write_unless_joined()

    async def cancel(self, kind: str, key: str) -> bool:
        if (kind, key) not in self._due:
            return False
        del self._due[(kind, key)]
        self._dirty.add((kind, key))
        await self._write_unless_joined()
        return True

    async def flush(self) -> None:
        """Write the deferred timers, all in one transaction."""
        if self._dirty:
            await self._store.write_now(self)

    async def _write_unless_joined(self) -> None:
        if not self._store.joins_batch():
            await self._store.write_now(self)

    def take_writes(self) -> list[Statement]:
        """Every changed timer as it is now in memory: moved ones upserted, stopped ones
        deleted (called by the store under its write lock)."""
        self._taken, self._dirty = self._dirty, set()
        moved = [_row(self._due[key]) for key in self._taken if key in self._due]
        stopped = [key for key in self._taken if key not in self._due]
        return [(UPSERT, moved), (DELETE, stopped)]

    def writes_lost(self) -> None:
        self._dirty |= self._taken
        self._taken = set()

    async def run_flusher(self, stop: asyncio.Event) -> None:
        """Write deferred timers every FLUSH_EVERY_S of real time, and once more at the end."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), FLUSH_EVERY_S)
            await self.flush()

    def _remember(self, timer: Timer) -> None:
        self._due[(timer.kind, timer.key)] = timer
        heapq.heappush(self._heap, (timer.due_at, timer.kind, timer.key))
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            await self._fire_due()
            self._wake.clear()
            wake_at = min(self._clock.now() + MAX_NAP_S, self._next_due())
            sleeper = asyncio.create_task(self._sleep_until(wake_at))
            waker = asyncio.create_task(self._wake.wait())
            stopper = asyncio.create_task(stop.wait())
            try:
                await asyncio.wait({sleeper, waker, stopper}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (sleeper, waker, stopper):
                    task.cancel()

    async def _sleep_until(self, wake_at: float) -> None:
        # The nap is measured when the task starts, not when it was made: a clock that moved
        # in between (a test's, or a scaled one) must not push the wake-up back.
        await self._clock.sleep(max(0.0, wake_at - self._clock.now()))

    def _next_due(self) -> float:
        while self._heap:
            due_at, kind, key = self._heap[0]
            current = self._due.get((kind, key))
            if current is not None and current.due_at == due_at:
                return due_at
            heapq.heappop(self._heap)  # cancelled or moved
        return self._clock.now() + MAX_NAP_S

    async def _fire_due(self) -> None:
        while self._heap and self._next_due() <= self._clock.now():
            _, kind, key = heapq.heappop(self._heap)
            timer = self._due[(kind, key)]
            await self._fire(timer)

    async def _fire(self, timer: Timer) -> None:
        handler = self._handlers.get(timer.kind)
        try:
            if handler is None:
                log.error("no handler for timer kind %r; dropping %s", timer.kind, timer.key)
            else:
                await handler(timer)
            self.fired += 1
        except Exception:
            log.exception("timer %s/%s failed; it stays pending", timer.kind, timer.key)
            # Retry later rather than lose a "not back in bed" alarm to a transient error.
            await self.set(timer.kind, timer.key, self._clock.now() + 30, timer.payload)
            return
        if self._due.get((timer.kind, timer.key)) is timer:
            await self.cancel(timer.kind, timer.key)


def _row(timer: Timer) -> tuple[str, str, float, str]:
    return (timer.kind, timer.key, timer.due_at, json.dumps(timer.payload))


async def consume(db: Database, timer: TimerKey | None) -> None:
    """Delete the durable timer whose firing caused a change, in that change's transaction."""
    if timer is not None:
        await db.execute(DELETE, timer)


def consume_on_db_thread(connection: SyncConnection, timer: TimerKey | None) -> None:
    """`consume`, from a transaction run on the database thread (`Store.run`)."""
    if timer is not None:
        connection.execute(DELETE, timer)
