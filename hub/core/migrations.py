"""Numbered schema migrations: a hub's database is carried forward in place, every record kept.

Each module creates its tables with `CREATE TABLE IF NOT EXISTS`, in the shape they had at the
first release. Every change to a table after that is a numbered step here, run once, in order,
each in its own transaction, and recorded: in SQLite's `user_version`, in PostgreSQL's
`schema_version` table (the steps run alike on both: hub/core/postgres.py translates them).
A step must work on a new database too, where a module's tables may not exist yet (the module
then creates them as they are now), so a step that alters a table checks that the table is there
and lacks the change.

A database that a newer carewatch has already migrated further is refused: this code does not
know its shape.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

from hub.core.database import Database, table_columns

log = logging.getLogger("carewatch.hub.migrations")

Step = Callable[[Database], Awaitable[None]]


class MigrationError(Exception):
    """The database cannot be used by this version of the hub."""


@dataclass(frozen=True, slots=True)
class Migration:
    number: int
    title: str
    step: Step


async def _add_column(db: Database, table: str, column: str, kind: str) -> None:
    columns = await table_columns(db, table)
    if columns is not None and column not in columns:
        await db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


async def _notification_recipient_user(db: Database) -> None:
    await _add_column(db, "notifications", "recipient_user", "TEXT")


async def _web_sessions(db: Database) -> None:
    await db.execute(
        """
        CREATE TABLE IF NOT EXISTS web_sessions (
            id_sha256 TEXT PRIMARY KEY,
            username TEXT NOT NULL,
            session_gen INTEGER NOT NULL,
            client TEXT NOT NULL DEFAULT '',
            created_at REAL NOT NULL,
            last_seen REAL NOT NULL
        )
        """
    )
    await db.execute("CREATE INDEX IF NOT EXISTS web_sessions_user ON web_sessions (username)")


async def _nobody_reached_and_care_service_phone(db: Database) -> None:
    await _add_column(db, "alerts", "nobody_reached_at", "REAL")
    await _add_column(db, "registry_site", "phone", "TEXT")


async def _push_confirmed_at(db: Database) -> None:
    await _add_column(db, "push_subscriptions", "confirmed_at", "REAL")


async def _audit_by_alert(db: Database) -> None:
    await db.execute("CREATE INDEX IF NOT EXISTS audit_alert ON audit (alert_id, action)")


async def _compact_readings(db: Database) -> None:
    # The rows move to the compact layout in the background (hub/telemetry/maintenance.py):
    # a large store would keep the hub from watching for hours if they moved here.
    if await db.has_table("readings"):  # a table: since this step, `readings` is a view
        await db.execute("DROP INDEX IF EXISTS readings_device_time")
        await db.execute("ALTER TABLE readings RENAME TO readings_legacy")


MIGRATIONS: Final = (
    Migration(
        1,
        "notifications.recipient_user: the user a push or Apprise attempt reached",
        _notification_recipient_user,
    ),
    Migration(2, "web_sessions: sessions kept on the hub (hub/access/sessions.py)", _web_sessions),
    Migration(
        3,
        "alerts.nobody_reached_at (an escalation step reached nobody), registry_site.phone "
        "(the care service's number)",
        _nobody_reached_and_care_service_phone,
    ),
    Migration(
        4,
        "push_subscriptions.confirmed_at: when a phone last confirmed receiving a push",
        _push_confirmed_at,
    ),
    Migration(
        5,
        "audit_alert index: an alert's record (escalation, family answers, figures) without "
        "reading the whole audit log",
        _audit_by_alert,
    ),
    Migration(
        6,
        "readings kept compactly (series numbers, REAL values: hub/telemetry/records.py); the "
        "first layout's table becomes readings_legacy, moved over in the background",
        _compact_readings,
    ),
)
LATEST: Final = MIGRATIONS[-1].number
POSTGRES_VERSION_TABLE: Final = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"
)


async def schema_version(db: Database) -> int:
    if db.dialect == "postgresql":
        if not await db.has_table("schema_version"):
            return 0
        rows = await db.execute_fetchall("SELECT version FROM schema_version")
    else:
        rows = await db.execute_fetchall("PRAGMA user_version")
    return int(rows[0][0]) if rows else 0


async def _set_version(db: Database, number: int) -> None:
    if db.dialect == "postgresql":
        await db.executescript(POSTGRES_VERSION_TABLE)
        await db.execute("DELETE FROM schema_version")
        await db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
    else:
        await db.execute(f"PRAGMA user_version = {number}")


async def migrate(db: Database) -> list[int]:
    """Run the steps the database has not had; the numbers run. Each step and its new
    version number are committed together, so an interrupted upgrade resumes where it stopped."""
    version = await schema_version(db)
    if version > LATEST:
        raise MigrationError(
            f"the database {db.target} is at schema version {version}, made by a newer carewatch; "
            f"this one knows versions up to {LATEST}. Run the newer version, or restore a backup."
        )
    ran: list[int] = []
    for migration in MIGRATIONS:
        if migration.number <= version:
            continue
        await db.execute("BEGIN IMMEDIATE")
        try:
            await migration.step(db)
            await _set_version(db, migration.number)
            await db.commit()
        except BaseException:
            await db.rollback()
            raise
        log.info(
            "database %s migrated to version %d: %s", db.target, migration.number, migration.title
        )
        ran.append(migration.number)
    return ran
