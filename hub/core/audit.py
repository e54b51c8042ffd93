"""The audit log: who did what, when and through which channel, for an alert or for none.

Every folder writes it (the registry, access, notify, alerts, escalation), so it sits in `core`,
below them all, and the store opens it with the database (`Store.audit`). A write joins the
transaction it is made in. Folders that answer questions about an alert's record (escalation,
family, figures) read this table in their own records modules.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Final

from hub.core.database import Database, SyncConnection

# The index on (alert_id, action) is migration 5 (hub/core/migrations.py).
SCHEMA: Final = """
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
INSERT: Final = (
    "INSERT INTO audit (at, actor, action, alert_id, channel, detail) VALUES (?, ?, ?, ?, ?, ?)"
)


@dataclass(frozen=True, slots=True)
class AuditEntry:
    at: float
    actor: str
    action: str
    channel: str | None
    detail: dict[str, Any]


class AuditLog:
    """The audit table on the hub's one connection."""

    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self) -> None:
        await self._db.executescript(SCHEMA)

    async def record(self, entries: Iterable[AuditEntry], alert_id: int | None = None) -> None:
        """Record entries about `alert_id` (None: about no alert); call it inside the store's
        `transaction()`, whose commit writes them."""
        await self._db.executemany(INSERT, [row(alert_id, entry) for entry in entries])

    async def for_alert(self, alert_id: int) -> list[dict[str, Any]]:
        """An alert's record, oldest first, each entry's detail decoded."""
        async with self._db.execute(
            "SELECT at, actor, action, channel, detail FROM audit WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        ) as cur:
            rows = await cur.fetchall()
        return [{**dict(row), "detail": json.loads(row["detail"])} for row in rows]


def row(alert_id: int | None, entry: AuditEntry) -> tuple[Any, ...]:
    """The entry as the audit table's row."""
    return (entry.at, entry.actor, entry.action, alert_id, entry.channel, json.dumps(entry.detail))


def write(connection: SyncConnection, alert_id: int | None, entry: AuditEntry) -> None:
    """Record an entry from a transaction run on the database thread (see `Store.run`)."""
    connection.execute(INSERT, row(alert_id, entry))
