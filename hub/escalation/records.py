"""The escalation's tables and all their SQL: escalation_steps (each firing of a step) and
notifications (each attempt to reach someone, and its result), and the escalation's reads of an
alert's record (the alerts and the audit log, which the alerts folder and core write), and the
response-time figures' reads of alerts and their audit record (free functions over a connection:
`carewatch report` opens the database itself, read-only, perhaps from an older hub).

Only the escalation writes its tables; a step, its attempts and their audit entries are written
in one transaction, the caller's (`Store.transaction()`), so the writes here take its connection.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from hub.core.database import Database, Rows, table_columns
from hub.core.store import Store

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS escalation_steps (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    phase TEXT NOT NULL,
    n INTEGER NOT NULL,
    step INTEGER NOT NULL,
    policy TEXT NOT NULL,
    targets TEXT NOT NULL,
    due_at REAL NOT NULL,
    at REAL NOT NULL,
    UNIQUE (alert_id, phase, n)
);
CREATE TABLE IF NOT EXISTS notifications (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    step_id INTEGER NOT NULL,
    step INTEGER NOT NULL,
    phase TEXT NOT NULL,
    target TEXT NOT NULL,
    channel TEXT,
    recipient_kind TEXT,
    recipient TEXT,
    recipient_name TEXT,
    phone TEXT,
    email TEXT,
    recipient_user TEXT,
    at REAL NOT NULL,
    result TEXT NOT NULL,
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS notifications_alert ON notifications (alert_id, id);
CREATE INDEX IF NOT EXISTS notifications_pending ON notifications (result) WHERE result = 'pending';
"""
ATTEMPT_COLUMNS: Final = (
    "id, alert_id, step_id, step, phase, target, channel, recipient_kind, recipient, "
    "recipient_name, phone, email, recipient_user, at, result, detail"
)
# What the figures read of an alert opened in their period (`opened_alerts`).
OPENED_COLUMNS: Final = (
    "id, rule, priority, state, site, zone, zone_name, room_name, bed, resident_code, "
    "resident_name, subject, opened_at, resolved_at"
)


class EscalationRecords:
    def __init__(self, store: Store) -> None:
        self._store = store

    async def create(self) -> None:
        await self._store.add_schema(SCHEMA)

    # --- steps ------------------------------------------------------------------------------

    async def count_steps(self, alert_id: int, phase: str) -> int:
        async with self._store.db.execute(
            "SELECT count(*) FROM escalation_steps WHERE alert_id = ? AND phase = ?",
            (alert_id, phase),
        ) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    async def has_steps(self, alert_id: int) -> bool:
        """Whether the alert's escalation has fired a step yet."""
        async with self._store.db.execute(
            "SELECT 1 FROM escalation_steps WHERE alert_id = ? AND phase = 'escalate' LIMIT 1",
            (alert_id,),
        ) as cur:
            return await cur.fetchone() is not None

    async def step_id(self, alert_id: int, phase: str, n: int) -> int:
        async with self._store.db.execute(
            "SELECT id FROM escalation_steps WHERE alert_id = ? AND phase = ? AND n = ?",
            (alert_id, phase, n),
        ) as cur:
            row = await cur.fetchone()
        return int(row["id"]) if row else 0

    async def last_step(self, alert_id: int) -> int | None:
        """The highest step (0-based) the alert's escalation reached, or None."""
        async with self._store.db.execute(
            "SELECT max(step) AS step FROM escalation_steps WHERE alert_id = ? AND phase = ?",
            (alert_id, "escalate"),
        ) as cur:
            row = await cur.fetchone()
        return None if row is None or row["step"] is None else int(row["step"])

    async def steps(self, alert_id: int) -> list[dict[str, Any]]:
        """Every step fired for the alert, oldest first (targets as JSON)."""
        async with self._store.db.execute(
            "SELECT id, phase, n, step, policy, targets, due_at, at FROM escalation_steps "
            "WHERE alert_id = ? ORDER BY id",
            (alert_id,),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def missed_steps(self) -> list[tuple[int, int]]:
        """(step id, alert id) of the steps of active alerts (not fallbacks) that had attempts
        and reached nobody, none pending."""
        rows = await self._store.db.execute_fetchall(
            "SELECT s.id, s.alert_id FROM escalation_steps s JOIN alerts a ON a.id = s.alert_id "
            "WHERE a.state != 'resolved' AND s.phase != 'fallback' "
            "AND EXISTS (SELECT 1 FROM notifications n "
            "WHERE n.alert_id = s.alert_id AND n.step_id = s.id) "
            "AND NOT EXISTS (SELECT 1 FROM notifications n "
            "WHERE n.alert_id = s.alert_id AND n.step_id = s.id "
            "AND n.result IN ('delivered', 'pending')) ORDER BY s.id"
        )
        return [(int(step_id), int(alert_id)) for step_id, alert_id in rows]

    @staticmethod
    async def insert_step(db: Database, values: tuple[Any, ...]) -> int | None:
        """In the caller's transaction: record a firing (alert_id, phase, n, step, policy,
        targets, due_at, at) once; its id, or None if it was recorded already."""
        cur = await db.execute(
            "INSERT INTO escalation_steps (alert_id, phase, n, step, policy, targets, due_at, "
            "at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (alert_id, phase, n) DO NOTHING "
            "RETURNING id",
            values,
        )
        row = await cur.fetchone()
        return int(row[0]) if row is not None else None

    # --- attempts ---------------------------------------------------------------------------

    async def attempts(
        self,
        alert_id: int | None = None,
        *,
        step_id: int | None = None,
        result: str | None = None,
    ) -> list[dict[str, Any]]:
        """The attempts of an alert (None: of every alert), of one step, with one result;
        oldest first."""
        # Only the filters given, literally, so that the indexes (by alert; pending) are used.
        filters = {"alert_id": alert_id, "step_id": step_id, "result": result}
        given = {column: value for column, value in filters.items() if value is not None}
        where = " AND ".join(f"{column} = ?" for column in given) or "1 = 1"
        async with self._store.db.execute(
            f"SELECT {ATTEMPT_COLUMNS} FROM notifications WHERE {where} ORDER BY id",
            tuple(given.values()),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    @staticmethod
    async def insert_attempt(db: Database, values: tuple[Any, ...]) -> int:
        """In the caller's transaction: record an attempt (the columns of ATTEMPT_COLUMNS but
        its id); its id."""
        cur = await db.execute(
            "INSERT INTO notifications (alert_id, step_id, step, phase, target, channel, "
            "recipient_kind, recipient, recipient_name, phone, email, recipient_user, at, "
            "result, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            values,
        )
        row = await cur.fetchone()
        return int(row[0])

    @staticmethod
    async def set_result(
        db: Database, attempt_id: int, result: str, detail: str, at: float
    ) -> None:
        """In the caller's transaction: an attempt's result."""
        await db.execute(
            "UPDATE notifications SET result = ?, detail = ?, at = ? WHERE id = ?",
            (result, detail, at, attempt_id),
        )

    async def skip(self, attempt_ids: list[int]) -> None:
        """Attempts left pending whose alert was closed before they were delivered."""
        async with self._store.transaction() as db:
            await db.executemany(
                "UPDATE notifications SET result = 'skipped', "
                "detail = 'alert closed before delivery' WHERE id = ?",
                [(attempt_id,) for attempt_id in attempt_ids],
            )

    # --- the alert's record (the audit log) -------------------------------------------------

    async def answers(self, alert_id: int, action: str) -> list[dict[str, Any]]:
        """Who recorded `action` on the alert, and when, oldest first."""
        async with self._store.db.execute(
            "SELECT at, actor FROM audit WHERE alert_id = ? AND action = ? ORDER BY id",
            (alert_id, action),
        ) as cur:
            return [dict(row) for row in await cur.fetchall()]

    async def told_nobody_reached(self, alert_id: int, step_id: int) -> bool:
        async with self._store.db.execute(
            "SELECT 1 FROM audit WHERE alert_id = ? AND action = 'nobody_reached' "
            "AND CAST(json_extract(detail, '$.step_id') AS INTEGER) = ? LIMIT 1",
            (alert_id, step_id),
        ) as cur:
            return await cur.fetchone() is not None

    async def nobody_reached(self, alert_id: int) -> list[dict[str, Any]]:
        """The alert's nobody-reached entries (at, detail as JSON), oldest first."""
        rows = await self._store.db.execute_fetchall(
            "SELECT at, detail FROM audit WHERE alert_id = ? AND action = 'nobody_reached' "
            "ORDER BY id",
            (alert_id,),
        )
        return [{"at": row["at"], "detail": row["detail"]} for row in rows]


# --- the figures: alerts opened in a period and their audit record ----------------------------


async def opened_alerts(
    db: Database,
    since: float,
    until: float,
    site: str | None,
    priorities: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """The alerts opened in [since, until) (of `site`, of `priorities`; None: all),
    test alerts left out, oldest first; with `nobody_reached_at` (None for a database from
    before that column)."""
    where, args = _opened_filter(since, until, site, priorities)
    nobody = await _nobody_column(db)
    async with db.execute(
        f"SELECT {OPENED_COLUMNS}, {nobody} AS nobody_reached_at FROM alerts "
        f"WHERE {where} ORDER BY opened_at, id",
        args,
    ) as cur:
        return await _dicts(cur)


async def opened_alerts_record(
    db: Database,
    actions: Sequence[str],
    since: float,
    until: float,
    site: str | None,
    priorities: Sequence[str] | None,
) -> list[dict[str, Any]]:
    """The audit entries (alert_id, action, actor, at, detail) with one of `actions` of the
    alerts `opened_alerts` selects, in the order they were made."""
    where, args = _opened_filter(since, until, site, priorities)
    marks = ", ".join("?" for _ in actions)
    async with db.execute(
        "SELECT alert_id, action, actor, at, detail FROM audit "
        f"WHERE action IN ({marks}) AND alert_id IN (SELECT id FROM alerts WHERE {where}) "
        "ORDER BY at, id",
        [*actions, *args],
    ) as cur:
        return await _dicts(cur)


async def _dicts(cur: Rows) -> list[dict[str, Any]]:
    return [dict(row) for row in await cur.fetchall()]


def _opened_filter(
    since: float, until: float, site: str | None, priorities: Sequence[str] | None
) -> tuple[str, list[Any]]:
    """The WHERE clause (on table `alerts`) for the alerts opened in [since, until)."""
    where = "alerts.test = 0 AND alerts.opened_at >= ? AND alerts.opened_at < ?"
    args: list[Any] = [since, until]
    if priorities is not None:
        where += f" AND alerts.priority IN ({', '.join('?' for _ in priorities)})"
        args += list(priorities)
    if site is not None:
        where += " AND alerts.site = ?"
        args.append(site)
    return where, args


async def _nobody_column(db: Database) -> str:
    """`alerts.nobody_reached_at`, or NULL for a database from before it (read-only reports)."""
    found = "nobody_reached_at" in (await table_columns(db, "alerts") or set())
    return "alerts.nobody_reached_at" if found else "NULL"
