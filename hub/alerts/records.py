"""The alerts table: its schema and every query that writes it or reads an alert by itself.

Only the alerts folder writes this table, each change with its audit entry (hub/core/audit.py)
and the durable timer it consumes (hub/core/timers.py) in one transaction. Folders that join
alerts with their own tables (escalation, console, family, supervisor, commissioning) read it in
their own records modules, with `ALERT_COLUMNS`.
"""

from __future__ import annotations

from typing import Any, Final

from hub.core import audit
from hub.core.audit import AuditEntry
from hub.core.database import SyncConnection
from hub.core.store import Store
from hub.core.timers import TimerKey, consume, consume_on_db_thread

NO_LIMIT: Final = 2**62  # SQLite's LIMIT -1 is an error in PostgreSQL

SCHEMA: Final = """
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
-- a resident's alerts, for the family app and the resident page
CREATE INDEX IF NOT EXISTS alerts_resident ON alerts (resident_code, opened_at);
"""

ALERT_COLUMNS: Final = (
    "id, rule, priority, state, subject, site, zone, zone_name, room, room_name, bed, "
    "resident_code, resident_name, device, gateway, test, sensed_at, opened_at, late_s, count, "
    "last_triggered_at, cleared_at, acknowledged_by, acknowledged_at, acknowledged_via, "
    "resolved_by, resolved_at, outcome, note, nobody_reached_at"
)


class AlertRecords:
    """Alerts as stored: each a dict of `ALERT_COLUMNS`."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self) -> None:
        await self._store.add_schema(SCHEMA)

    async def get(self, alert_id: int) -> dict[str, Any] | None:
        async with self._store.db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
        ) as cur:
            row = await cur.fetchone()
        return dict(row) if row else None

    async def active(self, rule: str, subject: str) -> dict[str, Any] | None:
        """The alert of this rule and subject not yet resolved, if any."""
        async with self._store.db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE rule = ? AND subject = ? "
            "AND state != 'resolved'",
            (rule, subject),
        ) as cur:
            row = await cur.fetchone()
        return dict(row) if row else None

    async def page(
        self, states: tuple[str, ...], limit: int | None, offset: int = 0
    ) -> list[dict[str, Any]]:
        """Alerts in these states, emergency first, newest first; `offset` pages through them."""
        marks = ", ".join("?" for _ in states)
        async with self._store.db.execute(
            f"SELECT {ALERT_COLUMNS} FROM alerts WHERE state IN ({marks}) "
            "ORDER BY CASE priority WHEN 'emergency' THEN 0 WHEN 'routine' THEN 1 ELSE 2 END, "
            "opened_at DESC, id DESC LIMIT ? OFFSET ?",
            (*states, NO_LIMIT if limit is None else limit, offset),
        ) as cur:
            rows = await cur.fetchall()
        return [dict(row) for row in rows]

    async def count(self) -> int:
        async with self._store.db.execute("SELECT count(*) FROM alerts") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def insert(
        self, fields: dict[str, Any], entry: AuditEntry, consumes: TimerKey | None = None
    ) -> dict[str, Any]:
        """Open an alert and record who or what opened it, in one transaction; the alert as
        stored. One call to the database thread, so that an alarm waits at most for the
        transaction being written, not behind a queue of the hub's other queries."""
        return await self._store.run(
            lambda connection: _insert(connection, fields, entry, consumes)
        )

    async def update(
        self,
        alert_id: int,
        fields: dict[str, Any],
        expect_states: tuple[str, ...],
        entry: AuditEntry,
        consumes: TimerKey | None = None,
    ) -> bool:
        """Change an alert still in one of `expect_states`, with its audit record; else False."""
        assignments = ", ".join(f"{name} = ?" for name in fields)
        marks = ", ".join("?" for _ in expect_states)
        async with self._store.transaction() as db:
            cur = await db.execute(
                f"UPDATE alerts SET {assignments} WHERE id = ? AND state IN ({marks})",
                (*fields.values(), alert_id, *expect_states),
            )
            changed = cur.rowcount == 1
            if changed:
                await self._store.audit.record([entry], alert_id)
            await consume(db, consumes)
        return changed


def _insert(
    connection: SyncConnection,
    fields: dict[str, Any],
    entry: AuditEntry,
    consumes: TimerKey | None,
) -> dict[str, Any]:
    """On the database thread: insert the alert, its audit record and the consumed timer's
    deletion, and read the alert back (the store commits them together)."""
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    alert_id = int(
        connection.execute(
            f"INSERT INTO alerts ({names}) VALUES ({marks}) RETURNING id", tuple(fields.values())
        ).fetchone()[0]
    )
    audit.write(connection, alert_id, entry)
    consume_on_db_thread(connection, consumes)
    row = connection.execute(
        f"SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?", (alert_id,)
    ).fetchone()
    return dict(row)
