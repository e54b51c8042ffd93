"""Upgrades keep data: a database made by an earlier main opens in today's hub, migrated in
place by the numbered steps of hub/core/migrations.py, with every record it held.

tests/data/hub-0eb87ea.sql is a real database of main at 0eb87ea (the last main before server-side
sessions), dumped after that hub had seeded the small site, stored a reading and a fall, opened
and escalated an alert, and a nurse had signed in and acknowledged it. Its throwaway VAPID key
was left out (a hub makes one when there is none).

tests/data/hub-929223a.sql is a real database of main at 929223a (the last main before the hub's
modules moved into feature folders and the store's SQL went to the folders that own it), made by
scripts/make-upgrade-database: readings and events, a device health report, a fall acknowledged
and a call resolved with their audit, escalation steps and notifications, pending timers, a
nurse's web session and push subscription, an installer's walk test.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import httpx
import pytest

from hub.core.database import open_database
from hub.core.migrations import LATEST, MIGRATIONS, MigrationError, migrate, schema_version
from hub.core.store import Store
from tests.conftest import NURSE, HubFactory, small_site_users
from tests.support.clock import FakeClock
from tests.support.paths import DATA

OLD_MAIN = DATA / "hub-0eb87ea.sql"
BEFORE_FOLDERS = DATA / "hub-929223a.sql"
# Just after the nurse acknowledged the fall in that database (2026-12-04 09:42:20 UTC). The hub
# reads it on this clock: on the wall clock its silence and escalation timers would come due.
DUMPED_AT = 1796377340.0
BEFORE_FOLDERS_DUMPED_AT = 1796417222.0  # 2026-12-04 20:47:02 UTC


def old_database(path: Path, dump: Path = OLD_MAIN) -> dict[str, set[tuple[object, ...]]]:
    """Write an earlier main's database to `path`; its rows, by table."""
    with sqlite3.connect(path) as db:
        db.executescript(dump.read_text())
    return rows_by_table(path)


def table_columns(path: Path) -> dict[str, list[str]]:
    with sqlite3.connect(path) as db:
        # `readings` is a view since migration 6: it shows the readings as they were stored
        names = (
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
            "AND name NOT LIKE 'sqlite_%'"
        )
        tables = [name for (name,) in db.execute(names)]
        return {t: [row[1] for row in db.execute(f"PRAGMA table_info({t})")] for t in tables}


def rows_by_table(
    path: Path, columns: dict[str, list[str]] | None = None
) -> dict[str, set[tuple[object, ...]]]:
    """Every table's rows; with `columns`, only those columns of those tables."""
    wanted = columns or table_columns(path)
    with sqlite3.connect(path) as db:
        return {
            table: set(db.execute(f"SELECT {', '.join(cols)} FROM {table}"))
            for table, cols in wanted.items()
        }


@pytest.mark.sqlite_only  # the database of an earlier main is a SQLite file
async def test_the_previous_mains_database_upgrades_in_place_with_every_record(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    database = tmp_path / "hub.db"  # where hub_factory's hub keeps its database
    before = old_database(database)
    old_columns = table_columns(database)
    assert "web_sessions" not in old_columns and before["alerts"] and before["audit"]

    hub = await hub_factory(FakeClock(DUMPED_AT))

    after = rows_by_table(database, old_columns)
    changed = [table for table, rows in before.items() if not rows <= after[table]]
    # The configuration file owns its users: they are written again at every start (with the
    # password hashes the file holds now), never removed.
    assert changed == ["users"], f"rows lost or changed by the upgrade: {changed}"
    assert {row[0] for row in before["users"]} <= {row[0] for row in after["users"]}
    assert await schema_version(hub.store.db) == LATEST
    columns = table_columns(database)
    assert "nobody_reached_at" in columns["alerts"] and "phone" in columns["registry_site"]
    assert "confirmed_at" in columns["push_subscriptions"]
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as nurse:
        credentials = {"username": NURSE[0], "password": NURSE[1]}
        signed_in = await nurse.post("/api/login", json=credentials)
        assert signed_in.status_code == 200, signed_in.text  # web_sessions is there
        alerts = (await nurse.get("/api/alerts", params={"state": "all"})).json()["alerts"]
    assert [(a["rule"], a["state"], a["acknowledged_by"]) for a in alerts] == [
        ("fall", "acknowledged", NURSE[0])
    ]


@pytest.mark.sqlite_only  # the database of an earlier main is a SQLite file
async def test_the_database_of_the_main_before_the_feature_folders_opens_with_every_row(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    database = tmp_path / "hub.db"  # where hub_factory's hub keeps its database
    before = old_database(database, BEFORE_FOLDERS)
    kinds = ("alerts", "audit", "timers", "push_subscriptions", "readings", "events")
    assert all(before[table] for table in (*kinds, "registry_device", "walktests", "web_sessions"))

    # The same people with the password hashes that main wrote: an unchanged configuration file
    # (a new hash would count as a password change and sign them out, as it should).
    hashes = dict(sqlite3.connect(database).execute("SELECT username, password_hash FROM users"))
    people = [{**user, "password_hash": hashes[user["username"]]} for user in small_site_users()]
    hub = await hub_factory(FakeClock(BEFORE_FOLDERS_DUMPED_AT), users=people)

    after = rows_by_table(database, table_columns(database))
    assert set(after) >= set(before), "tables lost"
    changed = [table for table, rows in before.items() if not rows <= after[table]]
    # Starting, the hub writes the configuration file's users again (their `updated_at`), and
    # the timers of the alert still open move on as it runs (a step fires at its time).
    assert changed in (["users"], ["timers", "users"]), f"rows lost or changed: {changed}"
    assert {row[:-1] for row in before["users"]} == {row[:-1] for row in after["users"]}
    assert {row[:2] for row in before["timers"]} <= {row[:2] for row in after["timers"]}
    assert await schema_version(hub.store.db) == LATEST
    async with httpx.AsyncClient(base_url=hub.url, timeout=20) as nurse:
        credentials = {"username": NURSE[0], "password": NURSE[1]}
        signed_in = await nurse.post("/api/login", json=credentials)
        assert signed_in.status_code == 200, signed_in.text
        alerts = (await nurse.get("/api/alerts", params={"state": "all"})).json()["alerts"]
        devices = (await nurse.get("/api/devices")).json()["devices"]
    assert sorted((a["rule"], a["state"]) for a in alerts) == [
        ("call_button", "resolved"),
        ("fall", "acknowledged"),
    ]
    radar = next(device for device in devices if device["device"] == "radar-101")
    assert radar["health"]["battery"] == 88.0


async def test_a_database_from_before_push_gets_its_notification_column_back(
    tmp_path: Path,
) -> None:
    database = tmp_path / "hub.db"
    old_database(database)
    with sqlite3.connect(database) as db:  # as a hub from before push and Apprise left it
        db.execute("ALTER TABLE notifications DROP COLUMN recipient_user")
    dropped = {"notifications": table_columns(database)["notifications"]}
    before = rows_by_table(database, dropped)

    store = await Store.open(database)
    await store.close()

    assert "recipient_user" in table_columns(database)["notifications"]
    assert before["notifications"]
    assert before == rows_by_table(database, dropped)


async def test_each_step_runs_once_and_a_new_database_starts_at_the_latest(
    tmp_path: Path,
) -> None:
    store = await Store.open(tmp_path / "new.db")
    try:
        assert await schema_version(store.db) == LATEST
        assert await migrate(store.db) == []
    finally:
        await store.close()
    assert [m.number for m in MIGRATIONS] == list(range(1, LATEST + 1))


async def test_a_database_from_a_newer_carewatch_is_refused_untouched(tmp_path: Path) -> None:
    database = tmp_path / "newer.db"
    with sqlite3.connect(database) as made:
        made.execute(f"PRAGMA user_version = {LATEST + 1}")
        made.execute("CREATE TABLE kept (x)")
    with pytest.raises(MigrationError, match="newer carewatch"):
        await Store.open(database)
    db = await open_database(database)
    try:
        assert await schema_version(db) == LATEST + 1
    finally:
        await db.close()


async def test_an_alerts_record_is_read_through_its_index(tmp_path: Path) -> None:
    store = await Store.open(tmp_path / "hub.db")
    try:
        plan = await store.db.execute_fetchall(
            "EXPLAIN QUERY PLAN SELECT at, actor FROM audit WHERE alert_id = ? AND action = ?",
            (1, "family_seen"),
        )
    finally:
        await store.close()
    assert any("USING INDEX audit_alert" in str(row[3]) for row in plan), plan
