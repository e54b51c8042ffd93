"""`carewatch db`, run in-process as a person runs it, on databases a real hub wrote: status,
migrate, copy into a real PostgreSQL (and a hub started on the copy), backup while a writer
inserts, and the mistakes a person makes.

A hub with its own Mosquitto runs once for the module (`written_by_hub`): it seeds the small
site's registry and its people, stores a fall and 6,000 readings from a gateway (more than one
copy chunk), opens and escalates the fall's alert, and the night nurse signs in and acknowledges
it. Each test works on its own copy of that SQLite file.

The copy's checks are not taken on trust: the tests read both databases themselves and compare
every table's rows, value by value and type by type.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import aiomqtt
import httpx
import psycopg
import pytest
import yaml

from carewatch.cli import main as carewatch
from contract.wire import data_topic
from hub.app import Hub
from hub.config import load_hub_config
from hub.core.migrations import LATEST, MIGRATIONS
from hub.core.store import Store
from tests.conftest import NURSE, SMALL_SITE, hub_config, small_site_users
from tests.support.hub import fall, login
from tests.support.mosquitto import MosquittoBroker, free_port, mosquitto
from tests.support.paths import DATA
from tests.support.postgres import PostgresServer
from tests.support.waiting import eventually

BATCHES = 12  # of 500 readings each
READINGS = BATCHES * 500
BEFORE_FOLDERS = DATA / "hub-929223a.sql"  # a database of an earlier main, at no version yet
Row = tuple[tuple[str, tuple[str, Any]], ...]  # (column, (type name, value)), by column name
Rows = dict[str, Counter[Row]]


# -- a database that a real hub wrote ---------------------------------------------------------


async def _publish(broker: MosquittoBroker, seq: int, items: list[dict[str, Any]]) -> None:
    body = {"epoch": "0123abcd", "seq": seq, "bdseq": 1, "sent": time.time(), "items": items}
    async with aiomqtt.Client(broker.host, broker.port) as client:
        await client.publish(data_topic("sunrise", "gw-east"), json.dumps(body), qos=1)


def _readings(batch: int) -> list[dict[str, Any]]:
    now = time.time()
    return [
        {
            "dev": "radar-102" if n % 2 else "radar-101",
            "at": now - 600 + (batch * 500 + n) * 0.01,
            "reading": "heart_rate" if n % 3 else "respiration_rate",
            "value": 60 + n % 20 if n % 3 else 14 + n % 4,
        }
        for n in range(500)
    ]


async def _run_hub(database: Path) -> None:
    with mosquitto() as broker:
        hub = await Hub.start(hub_config(broker, database))
        try:
            await asyncio.wait_for(hub.mqtt.connected.wait(), 10)
            await _publish(broker, 1, [fall("radar-101")])
            for batch in range(BATCHES):  # item i of a batch carries sequence number seq + i
                await _publish(broker, 2 + batch * 500, _readings(batch))

            def stored() -> bool:
                return hub.ingest.accepted == READINGS + 1

            await eventually(stored, within=60)
            (alert,) = await hub.alerts.records.page(("open",), 10)
            async with httpx.AsyncClient(base_url=hub.url, timeout=20) as client:
                csrf = await login(client, NURSE)
                acknowledged = await client.post(
                    f"/api/alerts/{alert['id']}/acknowledge", headers={"X-CSRF-Token": csrf}
                )
                assert acknowledged.status_code == 200, acknowledged.text
        finally:
            await hub.stop()


@pytest.fixture(scope="module")
def written_by_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The SQLite file of a hub that ran (see the module's docstring); the hub has stopped."""
    database = tmp_path_factory.mktemp("hub") / "hub.db"
    with ThreadPoolExecutor(1) as thread:  # an event loop of its own, apart from the tests'
        thread.submit(asyncio.run, _run_hub(database)).result(timeout=180)
    return database


@pytest.fixture
def hub_db(tmp_path: Path, written_by_hub: Path) -> Path:
    database = tmp_path / "hub.db"
    shutil.copyfile(written_by_hub, database)
    return database


def write_config(
    directory: Path, database: Path | str, broker_port: int = 1883, **more: Any
) -> Path:
    """A hub.yaml naming `database` (a file or a URL), as an administrator keeps it."""
    config = {
        "broker": {"host": "127.0.0.1", "port": broker_port, "client_id": "carewatch-hub-test"},
        "database": str(database),
        "web": {"host": "127.0.0.1", "port": 0, "secret_key": "test-secret-" + "k" * 32},
        "users": small_site_users(),
        "sites": [SMALL_SITE],
        **more,
    }
    path = directory / f"hub-{len(list(directory.glob('hub*.yaml')))}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture
def hub_yaml(tmp_path: Path, hub_db: Path) -> Path:
    return write_config(tmp_path, hub_db)


@pytest.fixture(autouse=True)
def logging_put_back() -> Iterator[None]:
    """`carewatch.cli.main` points the root logger at the stderr this test captures: put back
    what was there, so that no later test logs into a stream closed by then."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def db(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`carewatch db ARGS…` in this process: its exit status, stdout and stderr."""
    try:
        code = carewatch(["db", *args])
    except SystemExit as exc:  # argparse refusing an argument
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


# -- reading both databases independently of the command ----------------------------------------


def _typed(row: tuple[Any, ...]) -> tuple[tuple[str, Any], ...]:
    """A row whose values compare with their types: 1 and 1.0 differ."""
    return tuple((type(value).__name__, value) for value in row)


def _by_column(cursor: sqlite3.Cursor | psycopg.Cursor[Any]) -> Counter[Row]:
    """The rows, each as its (column, typed value) pairs in column-name order: the two
    databases may order a table's columns differently."""
    columns = [d[0] for d in cursor.description or ()]
    return Counter(
        tuple(sorted(zip(columns, _typed(tuple(row)), strict=True))) for row in cursor.fetchall()
    )


def _column(row: Row, name: str) -> Any:
    """The value of `name` in a row of `_by_column`."""
    return dict(row)[name][1]


def sqlite_rows(path: Path) -> Rows:
    with contextlib.closing(sqlite3.connect(path)) as connection:
        names = [
            name
            for (name,) in connection.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
            )
        ]
        return {name: _by_column(connection.execute(f'SELECT * FROM "{name}"')) for name in names}


def postgres_rows(url: str, tables: Iterator[str] | list[str]) -> Rows:
    with psycopg.connect(url) as connection:
        return {name: _by_column(connection.execute(f'SELECT * FROM "{name}"')) for name in tables}


def postgres_tables(url: str) -> set[str]:
    """The tables of the database (a partitioned table once, without its partitions)."""
    with psycopg.connect(url) as connection:
        rows = connection.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') "
            "AND NOT c.relispartition"
        ).fetchall()
    return {row[0] for row in rows}


def readings(connect: Any, where: str) -> int:
    """How many readings the database holds (`readings` is a table or a view, by version)."""
    with contextlib.closing(connect(where)) as connection:
        row = connection.execute("SELECT count(*) FROM readings").fetchone()
    return int(row[0])


def printed_checks(out: str) -> dict[str, tuple[int, int, str]]:
    """The copy's table of checks: table -> (source rows, target rows, sha256 column)."""
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("table "))
    checks = {}
    for line in lines[start + 1 :]:
        if line.startswith("copied "):
            break
        table, source, target, digest = line.split(None, 3)
        checks[table] = (int(source.replace(",", "")), int(target.replace(",", "")), digest)
    return checks


# -- status -------------------------------------------------------------------------------------


def test_status_prints_every_table_with_its_rows_and_bytes(
    hub_db: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    retention = {"raw_days": 7, "minute_days": 30, "hour_days": 365}
    hub_yaml = write_config(tmp_path, hub_db, retention=retention)
    counts = {table: sum(rows.values()) for table, rows in sqlite_rows(hub_db).items()}
    assert readings(sqlite3.connect, str(hub_db)) == READINGS
    assert counts["alerts"] == 1 and counts["audit"] > 0
    assert counts["registry_device"] == len(SMALL_SITE["devices"]) and counts["users"] > 0

    code, out, err = db(capsys, "status", "--config", str(hub_yaml), "--json")
    assert code == 0, err
    document = json.loads(out)
    assert document["database"] == {
        "kind": "sqlite",
        "target": str(hub_db),
        "bytes": hub_db.stat().st_size,
        "wal_bytes": 0,
    }
    assert (document["schema_version"], document["latest_version"]) == (LATEST, LATEST)
    assert {table["name"]: table["rows"] for table in document["tables"]} == counts
    assert all(table["bytes"] > 0 for table in document["tables"])
    assert sum(table["bytes"] for table in document["tables"]) < hub_db.stat().st_size
    assert document["retention"] == {**retention, "records_days": None}

    code, out, err = db(capsys, "status", "--config", str(hub_yaml))
    assert code == 0, err
    printed = {line.split()[0]: line.split()[1] for line in out.splitlines() if line.split()}
    assert {table: printed[table] for table in counts} == {
        table: f"{count:,}" for table, count in counts.items()
    }
    assert f"version {LATEST}" in out and "up to date" in out
    assert "raw readings 7 days, 1-minute rollups 30 days, 1-hour rollups 365 days" in out
    assert "records (events, alerts, audit log) kept for ever" in out


async def test_status_of_postgresql_sums_a_partitioned_table_over_its_partitions(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await Store.open(postgres_url)
    await store.close()
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        connection.execute(
            "CREATE TABLE measurements (at DOUBLE PRECISION NOT NULL, v BIGINT) "
            "PARTITION BY RANGE (at)"
        )
        connection.execute(
            "CREATE TABLE measurements_1 PARTITION OF measurements FOR VALUES FROM (0) TO (10)"
        )
        connection.execute(
            "CREATE TABLE measurements_2 PARTITION OF measurements FOR VALUES FROM (10) TO (20)"
        )
        connection.execute(
            "INSERT INTO measurements SELECT g % 20, g FROM generate_series(1, 3000) g"
        )
        row = connection.execute(
            "SELECT sum(pg_total_relation_size(inhrelid)) FROM pg_inherits "
            "WHERE inhparent = 'measurements'::regclass"
        ).fetchone()
    assert row is not None
    partitions_bytes = int(row[0])
    config = write_config(tmp_path, postgres_url)

    code, out, err = await asyncio.to_thread(
        db, capsys, "status", "--config", str(config), "--json"
    )

    assert code == 0, err
    document = json.loads(out)
    assert document["database"]["kind"] == "postgresql"
    assert document["schema_version"] == LATEST
    tables = {table["name"]: (table["rows"], table["bytes"]) for table in document["tables"]}
    assert set(tables) == postgres_tables(postgres_url)  # the partitions within their table
    assert {"audit", "schema_version", "measurements"} <= set(tables)
    assert tables["measurements"] == (3000, partitions_bytes)
    assert tables["schema_version"][0] == 1


# -- migrate ------------------------------------------------------------------------------------


async def test_migrate_on_a_fresh_database_says_it_is_already_at_the_latest_version(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await Store.open(tmp_path / "hub.db")
    await store.close()
    config = write_config(tmp_path, tmp_path / "hub.db")

    code, out, err = await asyncio.to_thread(db, capsys, "migrate", "--config", str(config))

    assert code == 0, err
    already = f"is already at version {LATEST}, the newest this carewatch knows"
    assert out == f"{tmp_path / 'hub.db'} {already}\n"


def test_migrate_runs_the_pending_steps_on_an_earlier_mains_database_and_keeps_its_rows(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    database = tmp_path / "hub.db"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.executescript(BEFORE_FOLDERS.read_text())
    before = sqlite_rows(database)
    config = write_config(tmp_path, database)

    code, out, err = db(capsys, "migrate", "--config", str(config))

    assert code == 0, err
    ran = [line for line in out.splitlines() if line.startswith("migrated to version")]
    assert ran == [f"migrated to version {step.number}: {step.title}" for step in MIGRATIONS]
    assert out.splitlines()[-1] == f"{database} is now at version {LATEST}"
    with contextlib.closing(sqlite3.connect(database)) as connection:
        assert connection.execute("PRAGMA user_version").fetchone() == (LATEST,)
    after = sqlite_rows(database)
    # A step may rename a table, never lose a row.
    assert sum(map(Counter.total, after.values())) == sum(map(Counter.total, before.values()))
    for table in ("alerts", "audit", "users", "registry_device", "timers", "web_sessions"):
        assert after[table] == before[table], table
    code, out, err = db(capsys, "migrate", "--config", str(config))
    assert (code, "already at version" in out) == (0, True), err


def test_migrate_refuses_a_database_of_a_newer_carewatch(
    hub_db: Path, hub_yaml: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.closing(sqlite3.connect(hub_db)) as connection:
        connection.execute(f"PRAGMA user_version = {LATEST + 1}")

    code, out, err = db(capsys, "migrate", "--config", str(hub_yaml))

    assert code == 1
    assert f"at schema version {LATEST + 1}, made by a newer carewatch" in err
    assert "Traceback" not in err and out == ""


# -- copy ---------------------------------------------------------------------------------------


async def test_copy_into_postgresql_gives_every_row_and_a_hub_runs_on_the_copy(
    hub_db: Path,
    hub_yaml: Path,
    postgres_url: str,
    broker: MosquittoBroker,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = sqlite_rows(hub_db)

    code, out, err = await asyncio.to_thread(
        db, capsys, "copy", "--config", str(hub_yaml), "--to", postgres_url
    )

    assert code == 0, err
    audit = sum(source["audit"].values())
    assert f"copy audit: {audit:,} of {audit:,}" in err  # progress, on stderr
    target = postgres_rows(postgres_url, list(source))
    assert target == source  # every row of every table, each value of the same type
    assert readings(psycopg.connect, postgres_url) == READINGS
    checks = printed_checks(out)
    assert set(checks) == set(source)
    for table, rows in source.items():
        count = sum(rows.values())
        assert checks[table][:2] == (count, count), table
        assert len(checks[table][2]) == 64, (table, checks[table])  # no MISMATCH
    assert postgres_tables(postgres_url) == {*source, "schema_version"}
    with psycopg.connect(postgres_url) as connection:
        indexes = {row[0] for row in connection.execute("SELECT indexname FROM pg_indexes")}
    assert {"alerts_one_active", "audit_alert", "notifications_pending"} <= indexes

    # The hub configuration's one line `database:` changes; the hub starts on the copy.
    copied_alerts = max(_column(row, "id") for row in source["alerts"])
    config = write_config(tmp_path, postgres_url, broker.port)
    hub = await Hub.start(load_hub_config(config))
    try:
        assert hub.store.db.dialect == "postgresql"
        (acknowledged,) = await hub.alerts.records.page(("acknowledged",), 10)
        assert (acknowledged["id"], acknowledged["acknowledged_by"]) == (copied_alerts, NURSE[0])
        await asyncio.wait_for(hub.mqtt.connected.wait(), 10)
        body = {"epoch": "fedc4321", "seq": 1, "bdseq": 2, "sent": time.time()}
        async with aiomqtt.Client(broker.host, broker.port) as client:
            payload = json.dumps({**body, "items": [fall("radar-201")]})
            await client.publish(data_topic("sunrise", "gw-west"), payload, qos=1)

        async def opened() -> bool:
            return bool(await hub.alerts.records.page(("open",), 10))

        await eventually(opened)
        (new,) = await hub.alerts.records.page(("open",), 10)
        assert new["id"] > copied_alerts  # the sequence went on past the copied ids
        versions = await hub.store.db.execute_fetchall("SELECT version FROM schema_version")
        assert [row[0] for row in versions] == [LATEST]
    finally:
        await hub.stop()


async def test_copy_into_a_target_with_rows_is_refused_and_changes_nothing(
    hub_db: Path, hub_yaml: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    store = await Store.open(postgres_url)  # a hub began on it: its audit log has a row
    await store.db.execute(
        "INSERT INTO audit (at, actor, action, detail) VALUES (?, ?, ?, ?)",
        (1.0, "system", "start", "{}"),
    )
    await store.db.commit()
    await store.close()
    before = postgres_rows(postgres_url, sorted(postgres_tables(postgres_url)))

    code, out, err = await asyncio.to_thread(
        db, capsys, "copy", "--config", str(hub_yaml), "--to", postgres_url
    )

    assert code == 1
    assert "already holds rows in audit;" in err and "nothing was written" in err
    assert "Traceback" not in err and out == ""
    assert postgres_tables(postgres_url) == set(before)
    assert postgres_rows(postgres_url, sorted(before)) == before


def test_a_value_postgresql_refuses_is_named_by_table_and_row_and_nothing_is_written(
    hub_db: Path, hub_yaml: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    # SQLite keeps text in an INTEGER column; PostgreSQL's BIGINT does not take it.
    with contextlib.closing(sqlite3.connect(hub_db)) as connection:
        (last,) = connection.execute("SELECT max(id) FROM audit").fetchone()
        connection.execute("UPDATE audit SET alert_id = 'maybe' WHERE id = ?", (last,))
        connection.commit()

    code, out, err = db(capsys, "copy", "--config", str(hub_yaml), "--to", postgres_url)

    assert code == 1
    assert f"refused the row with rowid {last} of table audit" in err
    assert "maybe" in err and "no row was written to the target" in err
    assert "Traceback" not in err and out == ""
    tables = postgres_tables(postgres_url) - {"schema_version"}
    assert not any(postgres_rows(postgres_url, sorted(tables)).values())


def test_copy_takes_a_source_at_the_latest_version_only(
    hub_db: Path, hub_yaml: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with contextlib.closing(sqlite3.connect(hub_db)) as connection:
        connection.execute(f"PRAGMA user_version = {LATEST - 1}")
    code, out, err = db(capsys, "copy", "--config", str(hub_yaml), "--to", postgres_url)
    assert (code, out) == (1, "")
    assert f"at schema version {LATEST - 1}" in err and "run carewatch db migrate first" in err
    assert postgres_tables(postgres_url) == set()


def test_copy_from_postgresql_is_refused(
    tmp_path: Path, postgres_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, postgres_url)
    code, _, err = db(capsys, "copy", "--config", str(config), "--to", postgres_url)
    assert (code, "copy goes from SQLite to PostgreSQL" in err) == (2, True), err


# -- backup -------------------------------------------------------------------------------------


class Writer:
    """Writes the audit log one commit at a time into the SQLite database, as the hub does."""

    def __init__(self, database: Path) -> None:
        self._database = database
        self._stop = threading.Event()
        self.committed = 0  # the last id committed
        self._thread = threading.Thread(target=self._run)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        with contextlib.closing(
            sqlite3.connect(self._database, isolation_level=None)
        ) as connection:
            while not self._stop.is_set():
                connection.execute("BEGIN IMMEDIATE")
                (row,) = connection.execute(
                    "INSERT INTO audit (at, actor, action, detail) "
                    "VALUES (?, 'system', 'writer', '{}') RETURNING id",
                    (time.time(),),
                ).fetchall()
                connection.execute("COMMIT")
                self.committed = int(row[0])


def grow(database: Path, rows: int) -> None:
    """More of the audit log, so that the backup takes several steps."""
    with contextlib.closing(sqlite3.connect(database)) as connection:
        connection.executemany(
            "INSERT INTO audit (at, actor, action, alert_id, channel, detail) "
            "VALUES (?, 'nurse', 'acknowledge', ?, 'console', ?)",
            (
                (n * 0.1, n, json.dumps({"note": "checked, resident comfortable", "n": n}))
                for n in range(rows)
            ),
        )
        connection.commit()


def test_backup_while_a_writer_inserts_is_whole_and_holds_every_row_committed_before(
    hub_db: Path, hub_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    grow(hub_db, 200_000)
    backup = tmp_path / "backup.db"
    with Writer(hub_db) as writer:
        while writer.committed == 0:
            time.sleep(0.01)
        committed_before = writer.committed
        code, out, err = db(capsys, "backup", str(backup), "--config", str(hub_yaml))
        committed_after = writer.committed
    assert code == 0, err
    assert committed_after > committed_before  # the writer went on while the backup ran
    assert out.startswith(f"backup {backup}: ") and out.endswith("integrity_check ok\n")
    pages = [line for line in err.splitlines() if "backup pages:" in line]
    assert pages and pages[-1].split(": ")[1].split(" of ")[0] == pages[-1].split(" of ")[1]
    assert not Path(f"{backup}-wal").exists()
    with contextlib.closing(sqlite3.connect(backup)) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        assert copy.execute("PRAGMA journal_mode").fetchone() == ("delete",)
        held = copy.execute("SELECT id FROM audit WHERE id <= ?", (committed_before,))
        backed_up = {row[0] for row in held}
        alerts = copy.execute("SELECT count(*) FROM alerts").fetchone()
    with contextlib.closing(sqlite3.connect(hub_db)) as connection:
        source = connection.execute("SELECT id FROM audit WHERE id <= ?", (committed_before,))
        assert backed_up == {row[0] for row in source}
        assert alerts == connection.execute("SELECT count(*) FROM alerts").fetchone()


async def test_a_backup_put_in_place_of_the_database_opens_in_a_hub_with_its_alerts(
    hub_db: Path, tmp_path: Path, broker: MosquittoBroker, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write_config(tmp_path, hub_db, broker.port)
    backup = tmp_path / "backup.db"
    code, _, err = await asyncio.to_thread(
        db, capsys, "backup", str(backup), "--config", str(config)
    )
    assert code == 0, err
    with contextlib.closing(sqlite3.connect(hub_db)) as connection:
        connection.execute("DELETE FROM alerts")  # what the backup is there for
        connection.commit()

    # The restore of docs/database.md: the hub stopped, the file replaced, the hub started.
    for leftover in (hub_db, Path(f"{hub_db}-wal"), Path(f"{hub_db}-shm")):
        leftover.unlink(missing_ok=True)
    shutil.copyfile(backup, hub_db)
    hub = await Hub.start(load_hub_config(config))
    try:
        (alert,) = await hub.alerts.records.page(("acknowledged",), 10)
        assert (alert["rule"], alert["acknowledged_by"]) == ("fall", NURSE[0])
    finally:
        await hub.stop()


def test_backup_of_postgresql_runs_pg_dump_without_showing_the_password(
    hub_db: Path,
    hub_yaml: Path,
    postgres_server: PostgresServer,
    postgres_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, _, err = db(capsys, "copy", "--config", str(hub_yaml), "--to", postgres_url)
    assert code == 0, err
    # The test server trusts every connection: a password is sent and ignored.
    with_password = postgres_url.replace("carewatch@", "carewatch:s3cret-pw@")
    config = write_config(tmp_path, with_password)
    backup = tmp_path / "hub.dump"

    code, out, err = db(capsys, "backup", str(backup), "--config", str(config))

    assert code == 0, err
    assert "s3cret-pw" not in out + err
    assert f"pg_dump --format=custom --file {backup} {postgres_url}" in err
    assert "PGPASSWORD" in err and out.startswith(f"backup {backup}: ")
    restored = postgres_server.create_database(f"restored_{tmp_path.name}"[:60])
    subprocess.run(["pg_restore", "--dbname", restored, str(backup)], check=True, timeout=120)
    tables = sorted(postgres_tables(postgres_url))
    assert postgres_rows(restored, tables) == postgres_rows(postgres_url, tables)


# -- mistakes -----------------------------------------------------------------------------------


def test_a_backup_never_overwrites_a_file(
    hub_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "backup.db"
    existing.write_text("yesterday's backup")
    code, out, err = db(capsys, "backup", str(existing), "--config", str(hub_yaml))
    assert (code, out) == (2, "")
    assert f"{existing} exists; a backup never overwrites a file" in err
    assert existing.read_text() == "yesterday's backup"


@pytest.mark.parametrize("action", ["status", "migrate", "copy", "backup"])
def test_a_missing_configuration_or_database_is_named(
    action: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    extra = {
        "copy": ["--to", "postgresql://carewatch@127.0.0.1/x"],
        "backup": [str(tmp_path / "b")],
    }
    code, out, err = db(
        capsys, action, *extra.get(action, []), "--config", str(tmp_path / "no.yaml")
    )
    assert (code, out) == (2, "")
    assert str(tmp_path / "no.yaml") in err and "Traceback" not in err

    config = write_config(tmp_path, tmp_path / "never-started.db")
    code, out, err = db(capsys, action, *extra.get(action, []), "--config", str(config))
    assert (code, out) == (2, "")
    assert f"no database at {tmp_path / 'never-started.db'}" in err
    assert not (tmp_path / "never-started.db").exists()


def test_an_unreachable_postgresql_is_a_clear_failure_without_the_password(
    hub_yaml: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nowhere = f"postgresql://carewatch:s3cret-pw@127.0.0.1:{free_port()}/carewatch"

    code, out, err = db(capsys, "copy", "--config", str(hub_yaml), "--to", nowhere)
    assert (code, out) == (1, "")
    assert "Connection refused" in err and "Traceback" not in err and "s3cret-pw" not in err

    config = write_config(tmp_path, nowhere)
    for action in ("status", "migrate"):
        code, out, err = db(capsys, action, "--config", str(config))
        assert (code, out) == (1, ""), action
        assert "cannot" in err and "Connection refused" in err, err
        assert "Traceback" not in err and "s3cret-pw" not in err
