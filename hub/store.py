"""SQLite storage (WAL) for readings, events, live device state, alerts and the audit log."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosqlite

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
    note TEXT
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
    "resolved_by, resolved_at, outcome, note"
)


TimerKey = tuple[str, str]
# site, gateway, outbox epoch, last sequence number, items
BatchToSave = tuple[str, str, str, int, Iterable["StoredItem"]]


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
    """One connection, one writer: every statement runs on aiosqlite's own thread."""

    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        # Coroutines share the connection; the lock keeps each write transaction whole.
        self._write = asyncio.Lock()

    @classmethod
    async def open(cls, path: Path | str) -> Store:
        db = await aiosqlite.connect(str(path))
        db.row_factory = aiosqlite.Row
        await db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode keeps the database consistent across a crash; the last
        # transactions may be lost only on a power cut, and QoS 1 redelivery covers those.
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.executescript(SCHEMA)
        await db.commit()
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
        """Store several gateways' batches and their marks in one transaction."""
        readings: list[tuple[Any, ...]] = []
        events: list[tuple[Any, ...]] = []
        live: list[tuple[Any, ...]] = []
        marks: list[tuple[str, str, str, int]] = []
        for site, gateway, epoch, last_seq, items in batches:
            marks.append((site, gateway, epoch, last_seq))
            for item in items:
                value = json.dumps(item.value)
                row = (
                    item.device,
                    item.name,
                    value,
                    item.sensed_at,
                    item.received_at,
                    int(item.historical),
                )
                (readings if item.kind == "reading" else events).append(row)
                if item.kind == "reading" and not item.historical:
                    live.append((item.device, item.name, value, item.sensed_at))
        async with self.transaction() as db:
            # Each statement is a round trip to the database thread: skip the empty ones.
            for sql, rows in (
                (INSERT_READING, readings),
                (INSERT_EVENT, events),
                (UPSERT_DEVICE_STATE, live),
                (UPSERT_SEQUENCE, marks),
            ):
                if rows:
                    await db.executemany(sql, rows)

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

    async def alerts(self, states: tuple[str, ...], limit: int | None) -> list[dict[str, Any]]:
        marks = ", ".join("?" for _ in states)
        async with self._db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state IN ({marks}) "
            "ORDER BY CASE priority WHEN 'emergency' THEN 0 WHEN 'routine' THEN 1 ELSE 2 END, "
            "opened_at DESC, id DESC LIMIT ?",
            (*states, -1 if limit is None else limit),
        ) as cur:
            rows = await cur.fetchall()
        return [dict(row) for row in rows]

    async def insert_alert(
        self, fields: dict[str, Any], audit: AuditEntry, consumes: TimerKey | None = None
    ) -> int:
        """Open an alert and record who or what opened it, in one transaction."""
        names = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        async with self.transaction() as db:
            cur = await db.execute(
                f"INSERT INTO alerts ({names}) VALUES ({marks})", tuple(fields.values())
            )
            if cur.lastrowid is None:
                raise RuntimeError("alert insert returned no id")
            await self._insert_audit(cur.lastrowid, audit)
            await self._consume(db, consumes)
        return cur.lastrowid

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
