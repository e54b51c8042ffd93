"""The durable outbox: every observation is written here before it is published.

One SQLite file, three facts:

- `items`: the pending wire items. `seq INTEGER PRIMARY KEY AUTOINCREMENT` is the gateway's
  sequence number; AUTOINCREMENT guarantees a number is never reused, even after the newest
  rows were deleted, so the hub's de-duplication (`seq` within `epoch`) stays sound.
- `meta.epoch`: a random hex id made once with the database. A new database (a replaced SD card,
  a wiped gateway) restarts `seq` at 1 under a new epoch, and the hub resets its high-water mark.
- `meta.bdseq`: the connection counter of the birth/death messages, incremented on every
  connect and persisted so that it never goes backwards across restarts.

Journal mode is WAL with `synchronous=NORMAL`: a committed row survives the agent being killed
or crashing (the WAL is in the OS page cache and SQLite replays it), and the database is never
corrupted. What NORMAL gives up is durability of the last few commits on *power loss*, in
exchange for one fsync per checkpoint instead of one per append: on a Raspberry Pi's SD card
that is the difference between ~1 ms and 10-50 ms per observation, and much less flash wear.
Pass `synchronous="FULL"` to trade that latency for power-loss durability.

All SQLite work runs on aiosqlite's dedicated thread; nothing blocks the event loop.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import aiosqlite

from edge.wire import Observation

WireDict = dict[str, object]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value NOT NULL);
CREATE TABLE IF NOT EXISTS items (seq INTEGER PRIMARY KEY AUTOINCREMENT, item TEXT NOT NULL);
"""


class OutboxClosedError(RuntimeError):
    pass


class Outbox:
    """A durable FIFO of wire items. Use `await Outbox.open(path)`, then `await close()`."""

    def __init__(self, db: aiosqlite.Connection, epoch: str) -> None:
        self._db = db
        self.epoch = epoch

    @classmethod
    async def open(
        cls, path: str | Path, synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    ) -> Outbox:
        path = Path(path)
        if str(path) != ":memory:":
            await _make_parent(path)
        db = await aiosqlite.connect(path)
        try:
            epoch = await _initialise(db, synchronous)
        except BaseException:
            await db.close()
            raise
        return cls(db, epoch)

    async def close(self) -> None:
        await self._db.close()

    async def append(self, observations: Sequence[Observation], historical: bool) -> None:
        """Store observations (in one transaction); they get consecutive sequence numbers."""
        if not observations:
            return
        rows = [(_encode(obs.to_wire(historical)),) for obs in observations]
        await self._db.executemany("INSERT INTO items (item) VALUES (?)", rows)
        await self._db.commit()

    async def next_batch(self, max_items: int) -> tuple[int, list[WireDict]]:
        """The oldest pending items with contiguous sequence numbers: (first_seq, items).

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
                break  # a gap (should not happen): the hub will see it as one
            items.append(json.loads(item))
        return first, items

    async def acknowledge(self, up_to_seq: int) -> None:
        """Forget every item with a sequence number up to and including `up_to_seq`."""
        await self._db.execute("DELETE FROM items WHERE seq <= ?", (up_to_seq,))
        await self._db.commit()

    async def pending(self) -> int:
        async with self._db.execute("SELECT count(*) FROM items") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0

    async def next_bdseq(self) -> int:
        """Increment and return the persisted birth/death connection counter."""
        await self._db.execute("UPDATE meta SET value = value + 1 WHERE key = 'bdseq'")
        await self._db.commit()
        return await self.bdseq()

    async def bdseq(self) -> int:
        async with self._db.execute("SELECT value FROM meta WHERE key = 'bdseq'") as cursor:
            row = await cursor.fetchone()
        return int(row[0]) if row is not None else 0


async def _initialise(db: aiosqlite.Connection, synchronous: str) -> str:
    await db.execute("PRAGMA journal_mode=WAL")
    await db.execute(f"PRAGMA synchronous={synchronous}")
    await db.executescript(_SCHEMA)
    await db.execute(
        "INSERT OR IGNORE INTO meta (key, value) VALUES ('epoch', ?)", (secrets.token_hex(8),)
    )
    await db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('bdseq', 0)")
    await db.commit()
    async with db.execute("SELECT value FROM meta WHERE key = 'epoch'") as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return str(row[0])


async def _make_parent(path: Path) -> None:
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)


def _encode(item: WireDict) -> str:
    return json.dumps(item, separators=(",", ":"))
