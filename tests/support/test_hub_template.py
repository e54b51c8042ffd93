"""The session's hub template on PostgreSQL (tests/support/hub_template.py) and its copies
(`hub_postgres_url`, which `hub_database` gives a PostgreSQL-backed hub): what a hub started on
an empty database makes, at the newest schema version, with no rows, a copy per test."""

from __future__ import annotations

import logging
import re

import psycopg
import pytest
from psycopg import sql

from hub.app import Hub
from hub.core.migrations import LATEST, migrate, schema_version
from hub.core.store import Store
from tests.conftest import hub_config
from tests.support.mosquitto import MosquittoBroker
from tests.support.postgres import PostgresServer

# The samples' day partitions, which a hub makes for the days around its clock's today.
DAY_PARTITION = re.compile(r"^samples_d\d{8}")

SCHEMA_QUERIES = {
    "tables": "SELECT c.relname, c.relkind::text, c.relispartition::text FROM pg_class c "
    "JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'S')",
    "columns": "SELECT table_name, column_name, data_type, is_nullable, "
    "coalesce(column_default, '') FROM information_schema.columns "
    "WHERE table_schema = 'public'",
    "indexes": "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'",
    "constraints": "SELECT c.relname, k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
    "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
    "WHERE n.nspname = 'public'",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public'",
}


def schema(url: str) -> dict[str, set[tuple[str, ...]]]:
    """The database's tables, columns, indexes, constraints and views, day partitions left out."""
    with psycopg.connect(url) as connection:
        return {
            part: {
                tuple(str(value) for value in row)
                for row in connection.execute(query).fetchall()
                if not DAY_PARTITION.match(str(row[0]))
            }
            for part, query in SCHEMA_QUERIES.items()
        }


def row_counts(url: str) -> dict[str, int]:
    """Every table's number of rows (a partitioned table's are its partitions')."""
    counts: dict[str, int] = {}
    with psycopg.connect(url) as connection:
        for name in hub_tables(url):
            (count,) = connection.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
            ).fetchall()
            counts[name] = int(count[0])
    return counts


async def test_a_copy_has_every_table_a_hub_makes_as_it_starts_on_an_empty_database(
    broker: MosquittoBroker, postgres_url: str, hub_postgres_url: str
) -> None:
    hub = await Hub.start(hub_config(broker, postgres_url))
    await hub.stop()
    started = schema(postgres_url)
    assert started["tables"], "the hub made no table"
    # A table the hub makes and make_hub_tables misses would be made by each test's hub again.
    assert schema(hub_postgres_url) == started


async def test_a_copy_is_at_the_newest_version_and_no_migration_runs_on_it(
    hub_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="carewatch.hub.migrations"):
        store = await Store.open(hub_postgres_url)
    try:
        assert await schema_version(store.db) == LATEST
        assert not [r for r in caplog.records if r.name == "carewatch.hub.migrations"]
        assert await migrate(store.db) == []
    finally:
        await store.close()


@pytest.mark.parametrize("run", [1, 2])
def test_each_test_gets_a_copy_of_its_own_with_no_rows(hub_postgres_url: str, run: int) -> None:
    # Run twice: were the copy shared, or the template written, the second run would find a row.
    counts = row_counts(hub_postgres_url)
    assert counts.pop("schema_version") == 1
    assert counts and not any(counts.values()), counts
    with psycopg.connect(hub_postgres_url) as connection:
        connection.execute(
            "INSERT INTO audit (at, actor, action, detail) VALUES (%s, 'tester', 'ran', '{}')",
            (run,),
        )
    assert row_counts(hub_postgres_url)["audit"] == 1


def test_the_template_takes_no_connection(
    postgres_server: PostgresServer, hub_postgres_template: str
) -> None:
    with pytest.raises(psycopg.OperationalError, match="not currently accepting connections"):
        psycopg.connect(postgres_server.url(hub_postgres_template)).close()


def hub_tables(url: str) -> set[str]:
    with psycopg.connect(url) as connection:
        rows = connection.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return {str(name) for (name,) in rows.fetchall()}


@pytest.mark.parametrize("hub_database", ["postgresql"], indirect=True)
def test_hub_database_on_postgresql_is_a_copy_of_the_template(hub_database: str) -> None:
    assert {"audit", "schema_version", "alerts", "samples", "users"} <= hub_tables(hub_database)


@pytest.mark.empty_database
@pytest.mark.parametrize("hub_database", ["postgresql"], indirect=True)
def test_hub_database_marked_empty_database_is_empty(hub_database: str) -> None:
    assert hub_tables(hub_database) == set()
