"""The durable outbox: every observation is written here before it is published.

One SQLite file, four facts:

- `items`: the pending wire items. `seq INTEGER PRIMARY KEY AUTOINCREMENT` is the gateway's
  sequence number; AUTOINCREMENT guarantees a number is never reused, even after the newest
  rows were deleted, so the hub's de-duplication (`seq` within `epoch`) stays sound.
  `protected` marks the items the disk budget may never drop (see below).
- `meta.epoch`: a random hex id made once with the database. A new database (a replaced SD card,
  a wiped gateway) restarts `seq` at 1 under a new epoch, and the hub resets its high-water mark.
- `meta.bdseq`: the connection counter of the birth/death messages, incremented on every
  connect and persisted so that it never goes backwards across restarts.
- `meta.dropped`: what the disk budget has dropped so far (count, sensed-at range, last seq).

Journal mode is WAL with `synchronous=NORMAL`: a committed row survives the agent being killed
or crashing (the WAL is in the OS page cache and SQLite replays it), and the database is never
corrupted. What NORMAL gives up is durability of the last few commits on *power loss*, in
exchange for one fsync per checkpoint instead of one per append: on a Raspberry Pi's SD card
that is the difference between ~1 ms and 10-50 ms per observation, and much less flash wear.
Pass `synchronous="FULL"` to trade that latency for power-loss durability.

Disk budget (`max_bytes`, default 50 MB). The size counted is the database's pages in use,
`(page_count - freelist_count) * page_size`, read from SQLite's own counters (no file I/O).
It is measured only when a running estimate (bytes appended since the last measurement) says
the budget may have been crossed; that is checked after every `APPEND_CHUNK` items, so the
outbox exceeds its budget by at most one chunk (about 10 kB) and a page. Once over, the oldest
*routine* items are deleted until the outbox is back under 90 % of the budget, so drops come in
a few large deletes rather than a row per append. Events and the emergency readings in
`PROTECTED_READINGS` are never dropped: if only they remain, they are kept, over budget, and an
error is logged. Deleted sequence numbers are never reused, so the hub sees the hole as a
sequence gap. Freed pages are reused by later appends; the file is never VACUUMed (that would
rewrite the whole file on the SD card for no lasting gain), so it keeps its high-water size,
which the budget bounds. The WAL file is extra: SQLite checkpoints it at 1000 pages (4 MB) and
`journal_size_limit` truncates it back to at most `WAL_LIMIT_BYTES` afterwards.

All SQLite work runs on aiosqlite's dedicated thread; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import secrets
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Final, Literal

import aiosqlite

from contract.wire import SAFETY_READINGS, Observation
from edge.logs import ContextLogger, context_logger

WireDict = dict[str, object]
Logger = ContextLogger | logging.Logger

DEFAULT_MAX_BYTES: Final = 50_000_000
MIN_MAX_BYTES: Final = 64 * 1024
WAL_LIMIT_BYTES: Final = 4 * 1024 * 1024
LOW_WATER: Final = 0.9  # after a drop, the outbox is back under this share of the budget
ROW_OVERHEAD_BYTES: Final = 16  # rowid, record header, cell pointer (~12 B measured), rounded up
APPEND_CHUNK: Final = 100  # rows per transaction, and so the most the budget can be overshot
PROTECTED_LOG_INTERVAL_S: Final = 60.0

# Readings that are themselves emergencies (or clear one), kept like events: a smoke alarm and
# a door opening at night must reach the hub however long the outage.
PROTECTED_READINGS: Final = SAFETY_READINGS

_PROTECTED_SQL: Final = (
    "json_extract(item, '$.event') IS NOT NULL OR json_extract(item, '$.reading') IN ("
    + ", ".join(f"'{name}'" for name in sorted(PROTECTED_READINGS))
    + ")"
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE IF NOT EXISTS items (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    item TEXT NOT NULL,
    protected INTEGER NOT NULL DEFAULT 0
);
"""


def is_protected(observation: Observation) -> bool:
    """True for what the disk budget may never drop: every event, and emergency readings."""
    return observation.kind == "event" or observation.name in PROTECTED_READINGS


@dataclass(frozen=True, slots=True)
class DropRecord:
    """What the disk budget has dropped over the outbox's life (sensed-at times, seconds)."""

    count: int = 0
    first_at: float | None = None
    last_at: float | None = None
    last_seq: int = 0

    def plus(self, count: int, first_at: float, last_at: float, last_seq: int) -> DropRecord:
        return DropRecord(
            self.count + count,
            first_at if self.first_at is None else min(self.first_at, first_at),
            last_at if self.last_at is None else max(self.last_at, last_at),
            max(self.last_seq, last_seq),
        )


class OutboxClosedError(RuntimeError):
    pass


class Outbox:
    """A durable FIFO of wire items. Use `await Outbox.open(path)`, then `await close()`."""

    def __init__(self, db: aiosqlite.Connection, epoch: str, max_bytes: int, log: Logger) -> None:
        self._db = db
        self.epoch = epoch
        self.max_bytes = max_bytes
        self._log = log
        self._estimate = max_bytes + 1  # unknown until measured: measure on the first check
        self._write = asyncio.Lock()  # keeps each multi-statement transaction whole
        self._protected_logged_at: float | None = None

    @classmethod
    async def open(
        cls,
        path: str | Path,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        log: Logger | None = None,
    ) -> Outbox:
        if max_bytes < MIN_MAX_BYTES:
            raise ValueError(f"max_bytes must be at least {MIN_MAX_BYTES}")
        path = Path(path)
        if str(path) != ":memory:":
            await _make_parent(path)
        db = await aiosqlite.connect(path)
        try:
            epoch = await _initialise(db, synchronous)
        except BaseException:
            await db.close()
            raise
        outbox = cls(db, epoch, max_bytes, log or context_logger(__name__))
        async with outbox._write:
            await outbox._keep_within_budget()  # the budget may have been lowered
        return outbox

    async def close(self) -> None:
        await self._db.close()

    async def append(self, observations: Sequence[Observation], historical: bool) -> None:
        """Store observations; they get consecutive sequence numbers.

        One transaction per `APPEND_CHUNK` items, each followed by the budget check, so a big
        burst cannot take the outbox more than one chunk over its budget.
        """
        rows = [(_encode(obs.to_wire(historical)), int(is_protected(obs))) for obs in observations]
        async with self._write:
            for start in range(0, len(rows), APPEND_CHUNK):
                await self._insert(rows[start : start + APPEND_CHUNK])

    async def _insert(self, rows: list[tuple[str, int]]) -> None:
        await self._db.executemany("INSERT INTO items (item, protected) VALUES (?, ?)", rows)
        await self._db.commit()
        self._estimate += sum(len(item) + ROW_OVERHEAD_BYTES for item, _ in rows)
        if self._estimate > self.max_bytes:
            await self._keep_within_budget()

    async def next_batch(self, max_items: int) -> tuple[int, list[WireDict]]:
        """The oldest pending items with contiguous sequence numbers: (first_seq, items).

        A batch never spans a hole left by the disk budget (the hub reads item i of a batch as
        `seq + i`); the next call starts after the hole, which the hub counts as a gap.
        Returns (0, []) when nothing is pending.
        """
        async with self._db.execute(
            "SELECT seq, item FROM items ORDER BY seq LIMIT ?", (max_items,)
        ) as cursor:
            rows = list(await cursor.fetchall())
        if not rows:
            return 0, []
        first = int(rows[0][0])
        items: list[WireDict] = []
        for offset, (seq, item) in enumerate(rows):
            if int(seq) != first + offset:
                break
            items.append(json.loads(item))
        return first, items

    async def acknowledge(self, up_to_seq: int) -> None:
        """Forget every item with a sequence number up to and including `up_to_seq`."""
        async with self._write:
            await self._db.execute("DELETE FROM items WHERE seq <= ?", (up_to_seq,))
            await self._db.commit()

    async def pending(self) -> int:
        async with self._db.execute("SELECT count(*) FROM items") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    async def used_bytes(self) -> int:
        """Bytes of the database in use (pages not on the free list); the budget's measure."""
        async with self._db.execute(
            "SELECT (page_count - freelist_count) * page_size "
            "FROM pragma_page_count(), pragma_freelist_count(), pragma_page_size()"
        ) as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    async def dropped(self) -> DropRecord:
        """What the disk budget has dropped so far (kept across restarts)."""
        async with self._db.execute("SELECT value FROM meta WHERE key = 'dropped'") as cursor:
            row = await cursor.fetchone()
        return DropRecord(**json.loads(row[0])) if row is not None else DropRecord()

    async def next_bdseq(self) -> int:
        """Increment and return the persisted birth/death connection counter."""
        async with self._write:
            await self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'bdseq'")
            await self._db.commit()
        return await self.bdseq()

    async def bdseq(self) -> int:
        async with self._db.execute("SELECT value FROM meta WHERE key = 'bdseq'") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    # --- the disk budget (called holding self._write) ---------------------------------------

    async def _keep_within_budget(self) -> None:
        used = await self.used_bytes()
        if used > self.max_bytes:
            low_water = int(self.max_bytes * LOW_WATER)
            while used > low_water:
                if not await self._drop_routine(await self._rows_to_free(used - low_water)):
                    self._report_protected_only(used)
                    break
                used = await self.used_bytes()
        self._estimate = used

    async def _rows_to_free(self, excess_bytes: int) -> int:
        """How many rows of average size make up `excess_bytes`."""
        async with self._db.execute("SELECT count(*) FROM items") as cursor:
            row = await cursor.fetchone()
        rows = int(row[0]) if row is not None else 0
        average = await self.used_bytes() / max(rows, 1)
        return max(1, math.ceil(excess_bytes / average))

    async def _drop_routine(self, count: int) -> int:
        """Delete the oldest `count` unprotected items and record it; how many were deleted."""
        async with self._db.execute(
            "DELETE FROM items WHERE seq IN "
            "(SELECT seq FROM items WHERE protected = 0 ORDER BY seq LIMIT ?) "
            "RETURNING seq, json_extract(item, '$.at')",
            (count,),
        ) as cursor:
            deleted = [(int(seq), float(at)) for seq, at in await cursor.fetchall()]
        if not deleted:
            await self._db.commit()
            return 0
        seqs = [seq for seq, _ in deleted]
        times = [at for _, at in deleted]
        record = (await self.dropped()).plus(len(deleted), min(times), max(times), max(seqs))
        await self._db.execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('dropped', ?)",
            (json.dumps(asdict(record)),),
        )
        await self._db.commit()
        self._log.warning(
            "outbox over its %d-byte budget: dropped the %d oldest routine readings "
            "(seq %d..%d, sensed %s..%s); %d dropped since the outbox was created",
            self.max_bytes,
            len(deleted),
            min(seqs),
            max(seqs),
            _iso(min(times)),
            _iso(max(times)),
            record.count,
        )
        return len(deleted)

    def _report_protected_only(self, used: int) -> None:
        now = time.monotonic()
        last = self._protected_logged_at
        if last is not None and now - last < PROTECTED_LOG_INTERVAL_S:
            return
        self._protected_logged_at = now
        self._log.error(
            "outbox over its disk budget (%d of %d bytes) holding only events and emergency "
            "readings: keeping them all (disk is the lesser evil); check the broker link",
            used,
            self.max_bytes,
        )


async def _initialise(db: aiosqlite.Connection, synchronous: str) -> str:
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute(f"PRAGMA synchronous={synchronous}")
    await db.execute(f"PRAGMA journal_size_limit={WAL_LIMIT_BYTES}")
    await db.executescript(_SCHEMA)
    await _add_protected_column(db)
    await db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (secrets.token_hex(8),)
    )
    await db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('bdseq', 0)")
    await db.commit()
    async with db.execute("SELECT value FROM meta WHERE key = 'epoch'") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def _add_protected_column(db: aiosqlite.Connection) -> None:
    """Outboxes made before the disk budget lack `items.protected`: add and fill it."""
    async with db.execute("SELECT name FROM pragma_table_info('items')") as cursor:
        columns = {str(row[0]) for row in await cursor.fetchall()}
    if "protected" in columns:
        return
    await db.execute("ALTER TABLE items ADD COLUMN protected INTEGER NOT NULL DEFAULT 0")
    await db.execute(f"UPDATE items SET protected = 1 WHERE {_PROTECTED_SQL}")


async def _make_parent(path: Path) -> None:
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)


def _encode(item: WireDict) -> str:
    return json.dumps(item, separators=(",", ":"))


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
