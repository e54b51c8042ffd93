"""SQLite storage (WAL) for readings, events, live device state, alerts and the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import math
import sqlite3
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiosqlite

from hub.core.migrations import migrate

SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS readings_device_time ON readings (device, name, sensed_at);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    received_at REAL NOT NULL,
    historical INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS events_device_time ON events (device, sensed_at);
CREATE TABLE IF NOT EXISTS device_state (
    device TEXT NOT NULL,
    name TEXT NOT NULL,
    value TEXT NOT NULL,
    sensed_at REAL NOT NULL,
    PRIMARY KEY (device, name)
);
CREATE TABLE IF NOT EXISTS gateway_sequence (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    epoch TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE IF NOT EXISTS gateway_status (
    site TEXT NOT NULL,
    gateway TEXT NOT NULL,
    state TEXT NOT NULL,
    bdseq INTEGER NOT NULL,
    changed_at REAL NOT NULL,
    PRIMARY KEY (site, gateway)
);
CREATE TABLE IF NOT EXISTS device_health (
    device TEXT PRIMARY KEY,
    online INTEGER NOT NULL,
    last_seen REAL,
    battery REAL,
    rssi INTEGER,
    reported_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    id INTEGER PRIMARY KEY,
    rule TEXT NOT NULL,
    priority TEXT NOT NULL,
    state TEXT NOT NULL,
    subject TEXT NOT NULL,
    site TEXT NOT NULL,
    zone TEXT,
    zone_name TEXT,
    room TEXT,
    room_name TEXT,
    bed TEXT,
    resident_code TEXT,
    resident_name TEXT,
    device TEXT,
    gateway TEXT,
    test INTEGER NOT NULL DEFAULT 0,
    sensed_at REAL NOT NULL,
    opened_at REAL NOT NULL,
    late_s REAL,
    count INTEGER NOT NULL DEFAULT 1,
    last_triggered_at REAL NOT NULL,
    cleared_at REAL,
    acknowledged_by TEXT,
    acknowledged_at REAL,
    acknowledged_via TEXT,
    resolved_by TEXT,
    resolved_at REAL,
    outcome TEXT,
    note TEXT,
    nobody_reached_at REAL
);
CREATE UNIQUE INDEX IF NOT EXISTS alerts_one_active
    ON alerts (rule, subject) WHERE state != 'resolved';
CREATE TABLE IF NOT EXISTS timers (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    due_at REAL NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY,
    at REAL NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    alert_id INTEGER,
    channel TEXT,
    detail TEXT NOT NULL
);
"""

INSERT_READING = (
    "INSERT INTO readings (device, name, value, sensed_at, received_at, historical) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
INSERT_EVENT = (
    "INSERT INTO events (device, name, value, sensed_at, received_at, historical) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
UPSERT_DEVICE_STATE = (
    "INSERT INTO device_state (device, name, value, sensed_at) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (device, name) DO UPDATE SET value = excluded.value, "
    "sensed_at = excluded.sensed_at WHERE excluded.sensed_at >= device_state.sensed_at"
)

UPSERT_SEQUENCE = (
    "INSERT INTO gateway_sequence (site, gateway, epoch, last_seq) VALUES (?, ?, ?, ?) "
    "ON CONFLICT (site, gateway) DO UPDATE SET epoch = excluded.epoch, "
    "last_seq = excluded.last_seq"
)

ALERT_COLUMNS = (
    "id, rule, priority, state, subject, site, zone, zone_name, room, room_name, bed, "
    "resident_code, resident_name, device, gateway, test, sensed_at, opened_at, late_s, count, "
    "last_triggered_at, cleared_at, acknowledged_by, acknowledged_at, acknowledged_via, "
    "resolved_by, resolved_at, outcome, note, nobody_reached_at"
)


CACHE_KIB = 64 * 1024
CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL at the default 4 KiB page

TimerKey = tuple[str, str]
# site, gateway, outbox epoch, last sequence number, items
BatchToSave = tuple[str, str, str, int, Iterable["StoredItem"]]
# One statement and the parameter rows it is run with (executemany).
Statement = tuple[str, Sequence[tuple[Any, ...]]]


class BatchCompanion(Protocol):
    """Another module's changes, written in the same transaction as the next stored batch."""

    def take_writes(self) -> list[Statement]:
        """The statements to commit with the batch; they count as written from now on."""
        ...

    def writes_lost(self) -> None:
        """The batch was rolled back: what `take_writes` handed over must be written again."""
        ...


@dataclass(slots=True)
class _Joining:
    store: Store
    open: bool = True


# Set by `Store.joining_batch()` for the code that runs before a batch is saved.
_JOINING: contextvars.ContextVar[_Joining | None] = contextvars.ContextVar(
    "carewatch_store_joining", default=None
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    channel: str | None
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class DeviceHealth:
    device: str
    online: bool
    last_seen: float | None
    battery: float | None
    rssi: int | None
    reported_at: float


@dataclass(frozen=True, slots=True)
class StoredItem:
    device: str
    kind: str
    name: str
    value: object
    sensed_at: float
    received_at: float
    historical: bool


class Store:
    """One connection, one writer: every statement runs on aiosqlite's own thread.

    The hot write paths (`save_batches`, `write_now`) hand a whole transaction to that thread in
    one call, not one round trip per statement.
    """

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Coroutines share the connection; the lock keeps each write transaction whole.
        self._write = asyncio.Lock()
        self._companions: list[BatchCompanion] = []

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        db = await aiosqlite.connect(str(path))
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode keeps the database consistent across a crash; the last
        # transactions may be lost only on a power cut, and QoS 1 redelivery covers those.
        await db.execute("PRAGMA synchronous=NORMAL")
        # Readings arrive in device order, not time order, so each insert lands on another leaf
        # of the (device, name, time) index: a commit dirties hundreds of pages. More cache
        # (default 2 MiB) keeps those leaves in memory between commits, and a checkpoint every
        # CHECKPOINT_PAGES (default 1,000) copies a page rewritten by many commits only once.
        await db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        await db.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")
        await db.executescript(SCHEMA)
        await db.commit()
        try:
            await migrate(db, str(path))
        except BaseException:
            await db.close()
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    @property
    def db(self) -> aiosqlite.Connection:
        """The shared connection, for reads by modules that keep their own tables."""
        return self._db

    async def add_schema(self, schema: str) -> None:
        """Create a module's own tables (idempotent `CREATE ... IF NOT EXISTS` statements)."""
        async with self._write:
            await self._db.executescript(schema)
            await self._db.commit()

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One whole write transaction: committed at the end, rolled back on an error."""
        async with self._write:
            try:
                yield self._db
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def write_now(self, companion: BatchCompanion) -> None:
        """Commit `companion`'s pending changes in a transaction of their own, in one call to
        the database thread (taken under the write lock, so no batch can slip in between)."""
        async with self._write:
            await self._commit_with(companion.take_writes(), [companion])

    def join_batches(self, companion: BatchCompanion) -> None:
        """Have `companion`'s pending changes committed with every batch `save_batches` stores."""
        self._companions.append(companion)

    @contextlib.contextmanager
    def joining_batch(self) -> Iterator[None]:
        """Mark the code run inside as preparing the next batch: a companion that would write
        at once (see `joins_batch`) may leave its change to the batch's own transaction."""
        joining = _Joining(self)
        token = _JOINING.set(joining)
        try:
            yield
        finally:
            joining.open = False  # also for tasks started inside, which hold a copy
            _JOINING.reset(token)

    def joins_batch(self) -> bool:
        """True inside `joining_batch()`: a change made now is committed with that batch."""
        joining = _JOINING.get()
        return joining is not None and joining.open and joining.store is self

    async def sequence_mark(self, site: str, gateway: str) -> tuple[str, int] | None:
        async with self._db.execute(
            "SELECT epoch, last_seq FROM gateway_sequence WHERE site = ? AND gateway = ?",
            (site, gateway),
        ) as cur:
            row = await cur.fetchone()
        return (str(row["epoch"]), int(row["last_seq"])) if row else None

    async def save_batch(
        self, site: str, gateway: str, epoch: str, last_seq: int, items: Iterable[StoredItem]
    ) -> None:
        """Store accepted items and the new de-duplication mark in one transaction."""
        await self.save_batches([(site, gateway, epoch, last_seq, items)])

    async def save_batches(self, batches: list[BatchToSave]) -> None:
        """Store several gateways' batches, their marks and the companions' pending changes in
        one transaction."""
        readings: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        live: list[tuple[Any, ...]] = []
        marks: list[tuple[str, str, str, int]] = []
        for site, gateway, epoch, last_seq, items in batches:
            marks.append((site, gateway, epoch, last_seq))
            for item in items:
                value = _json_value(item.value)
                row = (
                    item.device,
                    item.name,
                    value,
                    item.sensed_at,
                    item.received_at,
                    int(item.historical),
                )
                (readings if item.kind == "reading" else events).append(row)
                if item.kind == "reading":  # a replay too, unless something newer is known
                    live.append((item.device, item.name, value, item.sensed_at))
        statements: list[Statement] = [
            (INSERT_READING, readings),
            (INSERT_EVENT, events),
            (UPSERT_DEVICE_STATE, live),
            (UPSERT_SEQUENCE, marks),
        ]
        async with self._write:
            for companion in self._companions:
                statements.extend(companion.take_writes())
            await self._commit_with(statements, self._companions)

    async def _commit_with(
        self, statements: list[Statement], companions: list[BatchCompanion]
    ) -> None:
        """One transaction in one call to the database thread; the write lock must be held."""
        try:
            await _commit_on_db_thread(self._db, statements)
        except BaseException:
            for companion in companions:
                companion.writes_lost()
            raise

    async def device_state(self, device: str, name: str) -> object | None:
        async with self._db.execute(
            "SELECT value FROM device_state WHERE device = ? AND name = ?", (device, name)
        ) as cur:
            row = await cur.fetchone()
        return json.loads(row["value"]) if row else None

    async def count_rows(self, table: str) -> int:
        if table not in {"readings", "events", "alerts", "audit"}:
            raise ValueError(f"no table {table!r}")
        async with self._db.execute(f"SELECT count(*) FROM {table}") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def gateway_status(self, site: str, gateway: str) -> tuple[str, int] | None:
        async with self._db.execute(
            "SELECT state, bdseq FROM gateway_status WHERE site = ? AND gateway = ?",
            (site, gateway),
        ) as cur:
            row = await cur.fetchone()
        return (str(row["state"]), int(row["bdseq"])) if row else None

    async def set_gateway_status(
        self, site: str, gateway: str, state: str, bdseq: int, at: float
    ) -> None:
        async with self.transaction() as db:
            await db.execute(
                "INSERT INTO gateway_status (site, gateway, state, bdseq, changed_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (site, gateway) DO UPDATE SET "
                "state = excluded.state, bdseq = excluded.bdseq, changed_at = excluded.changed_at",
                (site, gateway, state, bdseq, at),
            )

    async def save_device_health(self, reports: Iterable[DeviceHealth]) -> None:
        async with self.transaction() as db:
            await db.executemany(
                "INSERT INTO device_health (device, online, last_seen, battery, rssi, "
                "reported_at) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (device) DO UPDATE SET "
                "online = excluded.online, last_seen = excluded.last_seen, "
                "battery = excluded.battery, rssi = excluded.rssi, "
                "reported_at = excluded.reported_at "
                "WHERE excluded.reported_at >= device_health.reported_at",
                [
                    (h.device, int(h.online), h.last_seen, h.battery, h.rssi, h.reported_at)
                    for h in reports
                ],
            )

    async def device_health(self) -> dict[str, dict[str, Any]]:
        async with self._db.execute(
            "SELECT device, online, last_seen, battery, rssi, reported_at FROM device_health"
        ) as cur:
            rows = await cur.fetchall()
        return {str(row["device"]): {**dict(row), "online": bool(row["online"])} for row in rows}

    async def active_alert(self, rule: str, subject: str) -> dict[str, Any] | None:
        async with self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = ? AND subject = ? "
            "AND state != 'resolved'",
            (rule, subject),
        ) as cur:
            row = await cur.fetchone()
        return dict(row) if row else None

    async def alert(self, alert_id: int) -> dict[str, Any] | None:
        async with self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
        ) as cur:
            row = await cur.fetchone()
        return dict(row) if row else None

    async def alerts(
        self, states: tuple[str, ...], limit: int | None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Alerts in these states, emergency first, newest first; `offset` pages through them."""
        marks = ", ".join("?" for _ in states)
        async with self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state IN ({marks}) "
            "ORDER BY CASE priority WHEN 'emergency' THEN 0 WHEN 'routine' THEN 1 ELSE 2 END, "
            "opened_at DESC, id DESC LIMIT ? OFFSET ?",
            (*states, -1 if limit is None else limit, offset),
        ) as cur:
            rows = await cur.fetchall()
        return [dict(row) for row in rows]

    async def insert_alert(
        self, fields: dict[str, Any], audit: AuditEntry, consumes: TimerKey | None = None
    ) -> dict[str, Any]:
        """Open an alert and record who or what opened it, in one transaction; the alert as
        stored. One call to the database thread, so that an alarm waits at most for the
        transaction being written, not behind a queue of the hub's other queries."""
        async with self._write:
            connection = self._db._conn
            row: dict[str, Any] = await self._db._execute(  # type: ignore[no-untyped-call]
                _insert_alert_transaction, connection, fields, audit, consumes
            )
        return row

    async def update_alert(
        self,
        alert_id: int,
        fields: dict[str, Any],
        expect_states: tuple[str, ...],
        audit: AuditEntry,
        consumes: TimerKey | None = None,
    ) -> bool:
        """Change an alert still in one of `expect_states`, with its audit record; else False."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        marks = ", ".join("?" for _ in expect_states)
        async with self.transaction() as db:
            cur = await db.execute(
                f"UPDATE alerts SET {assignments} WHERE id = ? AND state IN ({marks})",
                (*fields.values(), alert_id, *expect_states),
            )
            changed = cur.rowcount == 1
            if changed:
                await self._insert_audit(alert_id, audit)
            await self._consume(db, consumes)
        return changed

    async def _consume(self, db: aiosqlite.Connection, timer: TimerKey | None) -> None:
        """Delete the durable timer whose firing caused this change, in the same transaction."""
        if timer is not None:
            await db.execute("DELETE FROM timers WHERE kind = ? AND key = ?", timer)

    async def _insert_audit(self, alert_id: int | None, entry: AuditEntry) -> None:
        await self._db.execute(AUDIT_INSERT, _audit_row(alert_id, entry))

    async def insert_audit(self, entries: Iterable[AuditEntry]) -> None:
        """Record actions that concern no alert (alert_id NULL); call it inside `transaction()`."""
        await self._db.executemany(AUDIT_INSERT, [_audit_row(None, entry) for entry in entries])

    async def audit_for_alert(self, alert_id: int) -> list[dict[str, Any]]:
        async with self._db.execute(
            "SELECT at, actor, action, channel, detail FROM audit WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]


AUDIT_INSERT = (
    "INSERT INTO audit (at, actor, action, alert_id, channel, detail) VALUES (?, ?, ?, ?, ?, ?)"
)


def _audit_row(alert_id: int | None, entry: AuditEntry) -> tuple[Any, ...]:
    detail = json.dumps(entry.detail)
    return (entry.at, entry.actor, entry.action, alert_id, entry.channel, detail)


def _write_transaction(connection: sqlite3.Connection, statements: Sequence[Statement]) -> None:
    """On the database thread: all the statements, then commit; nothing of them on an error."""
    try:
        for sql, rows in statements:
            if rows:
                connection.executemany(sql, rows)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _insert_alert_transaction(
    connection: sqlite3.Connection,
    fields: dict[str, Any],
    audit: AuditEntry,
    consumes: TimerKey | None,
) -> dict[str, Any]:
    """On the database thread: insert the alert, its audit record and the consumed timer's
    deletion, commit, and read the alert back."""
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    try:
        cur = connection.execute(
            f"INSERT INTO alerts ({names}) VALUES ({marks})", tuple(fields.values())
        )
        alert_id = cur.lastrowid
        if alert_id is None:
            raise RuntimeError("alert insert returned no id")
        connection.execute(AUDIT_INSERT, _audit_row(alert_id, audit))
        if consumes is not None:
            connection.execute("DELETE FROM timers WHERE kind = ? AND key = ?", consumes)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    row = connection.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
    ).fetchone()
    return dict(row)


async def _commit_on_db_thread(db: aiosqlite.Connection, statements: Sequence[Statement]) -> None:
    """Queue `_write_transaction` on the connection's own thread and wait for it.

    aiosqlite runs every call on one thread, in order, but offers no public way to queue a
    function of our own; `_execute`, the queue behind all its public methods (checked against
    aiosqlite 0.22.1), is used here and in `Store.insert_alert` only.
    """
    connection = db._conn
    await db._execute(_write_transaction, connection, statements)  # type: ignore[no-untyped-call]


def _json_value(value: object) -> str:
    """`json.dumps(value)`, without its general machinery for the scalars readings carry."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float) and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)
