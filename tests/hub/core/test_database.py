"""The one database connection, on SQLite and PostgreSQL: the records' SQL translated for
PostgreSQL, rows read by name and position, and a PostgreSQL restart survived."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest

from hub.core.database import DATABASE_ERRORS, open_database
from hub.core.postgres import to_postgres
from hub.core.store import Store
from tests.support.paths import REPO
from tests.support.postgres import postgres
from tests.support.waiting import eventually


def test_placeholders_and_percent_signs_are_translated_outside_literals_and_comments() -> None:
    sql = "-- a resident's note\nSELECT '?', a FROM t WHERE a = ? AND b LIKE '5%' AND c = ?"
    assert to_postgres(sql) == (
        "-- a resident's note\nSELECT '?', a FROM t WHERE a = %s AND b LIKE '5%%' AND c = %s"
    )


def test_column_types_are_translated_in_a_table_definition_only() -> None:
    made = to_postgres(
        "CREATE TABLE x (id INTEGER PRIMARY KEY, n INTEGER, at REAL, b BLOB) WITHOUT ROWID"
    )
    assert made == (
        "CREATE TABLE x (id BIGSERIAL PRIMARY KEY, n BIGINT, at DOUBLE PRECISION, b BYTEA)"
    )
    assert to_postgres("SELECT CAST(v AS REAL) FROM x") == (
        "SELECT CAST(v AS DOUBLE PRECISION) FROM x"
    )
    assert to_postgres("SELECT 1 FROM u WHERE json_extract(g, '$.role') = 'family'") == (
        "SELECT 1 FROM u WHERE (g::jsonb ->> 'role') = 'family'"
    )


async def test_an_empty_list_is_in_nothing_on_both_databases(hub_database: Path | str) -> None:
    db = await open_database(hub_database)
    try:
        rows = await db.execute_fetchall(
            "SELECT (SELECT count(*) FROM (SELECT 1 AS x) t WHERE x IN ()), "
            "(SELECT count(*) FROM (SELECT 1 AS x) t WHERE x NOT IN ())"
        )
        assert tuple(rows[0]) == (0, 1)
    finally:
        await db.close()


async def test_rows_read_alike_on_both_databases(hub_database: Path | str) -> None:
    store = await Store.open(hub_database)
    try:
        async with store.transaction() as db:
            await db.execute("CREATE TABLE kinds (id INTEGER PRIMARY KEY, n INTEGER, x REAL)")
            made = await db.execute(
                "INSERT INTO kinds (n, x) VALUES (?, ?) RETURNING id", (True, 2.5)
            )
            assert (await made.fetchone())[0] == 1
        (row,) = await store.db.execute_fetchall(
            "SELECT id, n, x, (SELECT sum(n) FROM kinds) AS s FROM kinds"
        )
        assert (row["n"], row[2], dict(row)) == (1, 2.5, {"id": 1, "n": 1, "x": 2.5, "s": 1})
        assert isinstance(row["s"], int | float)  # PostgreSQL's numeric sum read as a number
        async with store.transaction() as db:
            await db.execute("INSERT INTO kinds (n, x) VALUES (?, ?)", (2, 1.0))
        with pytest.raises(DATABASE_ERRORS):
            async with store.transaction() as db:
                await db.execute("INSERT INTO kinds (n, x) VALUES (?, ?)", (3, 1.0))
                await db.execute("INSERT INTO kinds (id, n, x) VALUES (1, 0, 0)")  # taken
        count = await store.db.execute_fetchall("SELECT count(*) FROM kinds")
        assert count[0][0] == 2  # the failed transaction left nothing
    finally:
        await store.close()


MANY_ROWS = [
    (1, "tab\there", None, True),
    (2, "back\\slash and\nnewline", 1.5, False),
    (3, 'quote \' and "double"', -0.25, True),
]


async def test_many_rows_are_written_alike_on_both_databases(hub_database: Path | str) -> None:
    # On PostgreSQL a plain insert goes by COPY and an upsert of distinct keys in one statement:
    # the values must come back as a statement per row would have left them.
    db = await open_database(hub_database)
    try:
        await db.execute("CREATE TABLE many (k INTEGER PRIMARY KEY, t TEXT, x REAL, b INTEGER)")
        await db.executemany("INSERT INTO many (k, t, x, b) VALUES (?, ?, ?, ?)", MANY_ROWS)
        await db.commit()
        rows = await db.execute_fetchall("SELECT k, t, x, b FROM many ORDER BY k")
        assert [tuple(row) for row in rows] == [(k, t, x, int(b)) for k, t, x, b in MANY_ROWS]

        upsert = (
            "INSERT INTO many (k, t, x, b) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (k) DO UPDATE SET t = excluded.t WHERE excluded.x >= many.x"
        )
        await db.executemany(upsert, [(1, "one", 0.0, 0), (2, "kept", 1.0, 0), (4, "new", 9.0, 1)])
        # the same key twice: each row in turn, the later one last
        await db.executemany(upsert, [(4, "first", 10.0, 1), (4, "second", 11.0, 1)])
        await db.commit()
        rows = await db.execute_fetchall("SELECT k, t FROM many ORDER BY k")
        assert [tuple(row) for row in rows] == [
            (1, MANY_ROWS[0][1]),  # x NULL: the WHERE is not true, nothing changes
            (2, MANY_ROWS[1][1]),
            (3, MANY_ROWS[2][1]),
            (4, "second"),
        ]
    finally:
        await db.close()


async def test_the_hub_carries_on_after_postgresql_restarts(tmp_path: Path) -> None:
    with postgres() as server:
        store = await Store.open(server.create_database("restarts"))
        try:
            await store.db.executescript("CREATE TABLE kept (n INTEGER)")
            server.stop()
            server.start()

            async def written() -> bool:
                try:
                    async with store.transaction() as db:
                        await db.execute("INSERT INTO kept (n) VALUES (?)", (7,))
                except DATABASE_ERRORS:
                    return False  # the statement that finds the connection broken fails
                return True

            await eventually(written, within=20)
            rows = await store.db.execute_fetchall("SELECT n FROM kept")
            assert [row[0] for row in rows] == [7]
        finally:
            await store.close()


async def test_a_database_that_cannot_be_reached_is_said_plainly(tmp_path: Path) -> None:
    with pytest.raises(DATABASE_ERRORS):
        await open_database("postgresql://carewatch@127.0.0.1:1/carewatch")
    config = tmp_path / "hub.yaml"
    config.write_text(
        "database: postgresql://carewatch:secret-pw@127.0.0.1:1/carewatch\n"
        f"web: {{secret_key: {'k' * 40}}}\n"
    )
    hub = await asyncio.create_subprocess_exec(
        str(REPO / ".venv/bin/carewatch"),
        "hub",
        "--config",
        str(config),
        stdin=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    _, stderr = await asyncio.wait_for(hub.communicate(), 60)
    said = stderr.decode()
    assert hub.returncode == 2
    assert "carewatch hub: cannot open the database" in said
    assert "Traceback" not in said and "secret-pw" not in said
