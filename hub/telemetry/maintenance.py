"""The time series' upkeep, in the background: move readings of the first layout, roll up, and
keep the disk flat (docs/database.md).

Every `every_s` (default a minute) one pass runs, and steps 1 and 2 every `rollup_every_s`
(default 5 s), as a row of small steps, each a transaction of its own of at most `step_rows`
rows: the alarm path and ingest wait for one step at most (a few milliseconds), never for a
pass. A hub killed in the middle of a step loses that step only (it
is rolled back, and done again by the next pass); nothing is deleted before it is rolled up.

A pass, in order:
1. readings of the first layout (`readings_legacy`, migration 6) move into `samples`, a chunk a
   step, keeping their ids (below every new sample's, and above the roll-up mark, which moves
   only once they have all moved);
2. samples not rolled up yet are (hub/telemetry/rollups.py), until none is left;
3. on PostgreSQL, the samples' day partitions are made for today and the next two days;
4. raw samples received more than `raw_days` ago go: on PostgreSQL their whole day partitions are
   dropped, on SQLite they are deleted a range of ids at a time;
5. once an hour, minute and hour rollups older than `minute_days` and `hour_days` go.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TypeVar

from hub.core.clock import Clock
from hub.core.database import SyncConnection
from hub.core.store import Store
from hub.telemetry import records, rollups
from hub.telemetry.records import TelemetryRecords
from hub.telemetry.settings import DAY_S, RetentionSettings

log = logging.getLogger("carewatch.hub.telemetry")
ROLLUP_PRUNE_EVERY_S = 3_600.0
# A step holds the database about this long: a fall's query waits behind one step at most.
STEP_TARGET_S = 0.005
MAX_PAUSE_S = 0.05
STARTING_ROWS = 500
# A step's statements cost a few milliseconds on PostgreSQL whatever its rows: fewer rows would
# not make it shorter, only make the upkeep fall behind.
MIN_ROWS = 200
AHEAD_DAYS = 3  # today's partition and the next two
Result = TypeVar("Result")


@dataclass(slots=True)
class Pass:
    """What one pass did."""

    moved: int = 0
    rolled_up: int = 0
    pruned: int = 0
    partitions_made: int = 0
    partitions_dropped: int = 0
    rollups_pruned: bool = False
    steps: int = 0
    longest_step_s: float = 0.0


class Maintenance:
    def __init__(self, store: Store, settings: RetentionSettings, clock: Clock) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._telemetry = TelemetryRecords(store)
        self._rollups_pruned_at = float("-inf")
        self._rows: dict[str, int] = {}
        self._took = 0.0
        self.last: Pass | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Roll up every `rollup_every_s`, and make the whole pass every `every_s`."""
        last_pass = float("-inf")
        while not stop.is_set():
            whole = time.monotonic() - last_pass >= self._settings.every_s
            try:
                if whole:
                    last_pass = time.monotonic()
                    self.last = await self.run_once()
                else:
                    await self.roll_up()
            except Exception:
                log.exception("telemetry upkeep failed; it is tried again")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._settings.rollup_every_s)

    async def prepare(self) -> None:
        """What must be there before the first reading is stored: on PostgreSQL, the partitions
        of today and the next days (else today's readings would go to the default partition)."""
        if self._store.db.dialect == "postgresql":
            await self._make_partitions(Pass())

    async def roll_up(self) -> Pass:
        """Steps 1 and 2 of a pass: every sample in the rollups."""
        done = Pass()
        await self._move_legacy(done)
        await self._roll_up(done)
        return done

    async def run_once(self) -> Pass:
        done = await self.roll_up()
        if self._store.db.dialect == "postgresql":
            await self._make_partitions(done)
            await self._drop_partitions(done)
        else:
            await self._prune_samples(done)
        now = self._clock.now()
        if now - self._rollups_pruned_at >= ROLLUP_PRUNE_EVERY_S:
            await self._prune_rollups(done)
            self._rollups_pruned_at = now
        if done.moved or done.pruned or done.partitions_dropped:
            log.info(
                "telemetry upkeep: %d moved, %d rolled up, %d pruned, %d partitions dropped",
                done.moved,
                done.rolled_up,
                done.pruned,
                done.partitions_dropped,
            )
        return done

    async def _step(self, done: Pass, work: Callable[[SyncConnection], Result]) -> Result:
        """One small transaction; then the database is left to the others (a fall's queries,
        ingest) for as long as the step held it, 50 ms at most."""
        started = time.monotonic()
        result = await self._store.run(work)
        took = time.monotonic() - started
        done.steps += 1
        done.longest_step_s = max(done.longest_step_s, took)
        self._took = took
        await asyncio.sleep(min(took, MAX_PAUSE_S))
        return result

    async def _rows_step(
        self, done: Pass, kind: str, work: Callable[[SyncConnection, int], int]
    ) -> int:
        """A step of `work` over as many rows as keep it near STEP_TARGET_S: the number is
        halved after a longer step and doubled after a shorter one, up to `step_rows`."""
        ceiling = self._settings.step_rows
        rows = min(ceiling, self._rows.get(kind, STARTING_ROWS))
        done_rows = await self._step(done, lambda connection: work(connection, rows))
        if self._took > 2 * STEP_TARGET_S:
            self._rows[kind] = max(min(MIN_ROWS, ceiling), rows // 2)
        elif self._took < STEP_TARGET_S / 2:
            self._rows[kind] = min(ceiling, rows * 2)
        return done_rows

    async def _move_legacy(self, done: Pass) -> None:
        if not await self._telemetry.has_legacy():
            return
        while moved := await self._rows_step(done, "move", _move):
            done.moved += moved
        await self._step(done, records.drop_legacy)
        log.info("telemetry: every reading of the first layout is in the compact layout now")

    async def _roll_up(self, done: Pass) -> None:
        now = self._clock.now()
        while rolled := await self._rows_step(done, "roll up", partial(_roll_up_next, now=now)):
            done.rolled_up += rolled

    async def _prune_samples(self, done: Pass) -> None:
        before = self._raw_cutoff()
        while pruned := await self._rows_step(done, "prune", partial(_prune, before=before)):
            done.pruned += pruned

    async def _make_partitions(self, done: Pass) -> None:
        today = rollups.start_of(self._clock.now(), int(DAY_S))
        have = await self._step(done, records.day_partitions)
        for day in range(today, today + AHEAD_DAYS * int(DAY_S), int(DAY_S)):
            if day not in have:
                made = await self._step(done, partial(records.make_day_partition, day=day))
                done.partitions_made += int(made)

    async def _drop_partitions(self, done: Pass) -> None:
        before = self._raw_cutoff()
        for day, name in sorted((await self._step(done, records.day_partitions)).items()):
            if day + DAY_S <= before:
                dropped = await self._step(done, partial(records.drop_day_partition, name=name))
                done.partitions_dropped += int(dropped)
        prune = partial(_prune_default, before=before)
        while pruned := await self._rows_step(done, "prune default", prune):
            done.pruned += pruned

    async def _prune_rollups(self, done: Pass) -> None:
        now, limit = self._clock.now(), max(1, self._settings.step_rows // 100)
        for resolution, days in (
            (rollups.MINUTE, self._settings.minute_days),
            (rollups.HOUR, self._settings.hour_days),
        ):
            before: float = now - days * DAY_S
            after: int | None = 0
            while after is not None:
                after = await self._step(
                    done,
                    partial(
                        records.prune_rollups,
                        resolution=resolution,
                        before=before,
                        after_series=after,
                        limit=limit,
                    ),
                )
        done.rollups_pruned = True

    def _raw_cutoff(self) -> float:
        return self._clock.now() - self._settings.raw_days * DAY_S


def _move(connection: SyncConnection, rows: int) -> int:
    return len(records.move_legacy(connection, 0, rows))


def _roll_up_next(connection: SyncConnection, rows: int, now: float) -> int:
    return records.roll_up_next(connection, rows, now)


def _prune(connection: SyncConnection, rows: int, before: float) -> int:
    return records.prune_samples(connection, before, rows)


def _prune_default(connection: SyncConnection, rows: int, before: float) -> int:
    return records.prune_default(connection, before, rows)
