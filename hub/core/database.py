"""One database connection on a thread of its own, the same for SQLite and PostgreSQL.

The hub has one writer: every statement runs, in order, on the connection's own thread
(`Database.call` hands that thread a whole transaction in one go). The records modules write one
SQL for both databases (SQLite's placeholders `?`, `ON CONFLICT`, `RETURNING`); the PostgreSQL
connection (hub/core/postgres.py) translates placeholders and column types, so a folder's SQL
stays in its `records.py`. Where the two databases differ in more than that, `Database.dialect`
tells the records module which statement to run.

    db = await open_database("hub.db")                   # or "postgresql://user@host/carewatch"
    async with db.execute("SELECT ...", (a, b)) as cur:  # or: cur = await db.execute(...)
        row = await cur.fetchone()                       # rows read by name or position
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sqlite3
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, TypeVar

import psycopg

Dialect = Literal["sqlite", "postgresql"]
Result = TypeVar("Result")
POSTGRES_SCHEMES = ("postgresql://", "postgres://")
# What either database raises when a statement or the connection fails.
DATABASE_ERRORS: Final = (sqlite3.Error, psycopg.Error)


class SyncCursor(Protocol):
    """What a transaction run on the database thread reads back from a statement."""

    @property
    def rowcount(self) -> int: ...

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class SyncConnection(Protocol):
    """The connection as `Database.call`'s work sees it, on the database thread: sqlite3's, or
    the PostgreSQL connection that speaks the same SQL (hub/core/postgres.py)."""

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> SyncCursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> SyncCursor: ...

    def executescript(self, script: str, /) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...

    def close(self) -> None: ...


def is_postgres(target: str | Path) -> bool:
    """Whether the hub's `database` setting names a PostgreSQL server (else: a SQLite file)."""
    return str(target).startswith(POSTGRES_SCHEMES)


@dataclass(slots=True)
class Rows:
    """A statement's rows, read on the database thread; `rowcount` for a write."""

    rows: list[Any]
    rowcount: int

    async def fetchone(self) -> Any:
        return self.rows[0] if self.rows else None

    async def fetchall(self) -> list[Any]:
        return self.rows


class _Statement:
    """`db.execute(...)`: awaited, or used as `async with`, it gives the statement's `Rows`."""

    def __init__(self, database: Database, sql: str, parameters: Sequence[Any]) -> None:
        self._run = database.call(_execute, sql, parameters)

    def __await__(self) -> Generator[Any, None, Rows]:
        return self._run.__await__()

    async def __aenter__(self) -> Rows:
        return await self._run

    async def __aexit__(self, *_: object) -> None:
        return None


class Database:
    """The connection and its thread. Open one with `open_database`."""

    def __init__(self, dialect: Dialect, target: str) -> None:
        self.dialect: Dialect = dialect
        self.target = target  # the path or URL, for messages (a URL's password is hidden)
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="carewatch-db")
        self._connection: SyncConnection | None = None

    async def connect(self, connector: Callable[[], SyncConnection]) -> None:
        """Make the connection on the database thread, where it will always be used."""
        loop = asyncio.get_running_loop()
        self._connection = await loop.run_in_executor(self._thread, connector)

    @property
    def connection(self) -> SyncConnection:
        if self._connection is None:
            raise RuntimeError(f"the database {self.target} is not open")
        return self._connection

    async def call(self, work: Callable[..., Result], *args: Any) -> Result:
        """Run `work(connection, *args)` on the database thread, after everything queued before."""
        connection = self.connection
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, lambda: work(connection, *args))

    def execute(self, sql: str, parameters: Sequence[Any] = ()) -> _Statement:
        return _Statement(self, sql, parameters)

    async def execute_fetchall(self, sql: str, parameters: Sequence[Any] = ()) -> list[Any]:
        return (await self.call(_execute, sql, parameters)).rows

    async def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        await self.call(_executemany, sql, list(rows))

    async def executescript(self, script: str) -> None:
        await self.call(_executescript, script)

    async def has_table(self, name: str) -> bool:
        if self.dialect == "postgresql":
            sql = (
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
                "AND table_name = ? AND table_type = 'BASE TABLE'"
            )
        else:
            sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
        return bool(await self.execute_fetchall(sql, (name,)))

    async def commit(self) -> None:
        await self.call(_commit)

    async def rollback(self) -> None:
        await self.call(_rollback)

    async def close(self) -> None:
        if self._connection is not None:
            await self.call(_close)
            self._connection = None
        self._thread.shutdown(wait=True)


async def open_database(target: str | Path, *, read_only: bool = False) -> Database:
    """Connect to a SQLite file or, for a `postgresql://` URL, a PostgreSQL database;
    `read_only` for a reader such as `carewatch report` (a SQLite file must exist then)."""
    if is_postgres(target):
        from hub.core.postgres import open_postgres

        return await open_postgres(str(target), read_only=read_only)
    database = Database("sqlite", str(target))
    try:
        await database.connect(lambda: _connect_sqlite(Path(target), read_only))
    except BaseException:
        await database.close()
        raise
    return database


async def table_columns(db: Database, table: str) -> set[str] | None:
    """The table's columns, or None if there is no such table."""
    if db.dialect == "postgresql":
        rows = await db.execute_fetchall(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ?",
            (table,),
        )
        return {row[0] for row in rows} or None
    rows = await db.execute_fetchall(f"PRAGMA table_info({table})")
    return {row[1] for row in rows} or None


def _connect_sqlite(path: Path, read_only: bool) -> sqlite3.Connection:
    if read_only:
        uri = f"{path.resolve().as_uri()}?mode=ro"
        connection = sqlite3.connect(uri, uri=True, check_same_thread=False)
    else:
        connection = sqlite3.connect(path, check_same_thread=False)
    connection.row_factory = sqlite3.Row
    return connection


def _execute(connection: SyncConnection, sql: str, parameters: Sequence[Any]) -> Rows:
    cursor = connection.execute(sql, parameters)
    return Rows(cursor.fetchall(), cursor.rowcount)


def _executemany(connection: SyncConnection, sql: str, rows: list[Sequence[Any]]) -> None:
    if rows:
        connection.executemany(sql, rows)


def _executescript(connection: SyncConnection, script: str) -> None:
    connection.executescript(script)


def _commit(connection: SyncConnection) -> None:
    connection.commit()


def _rollback(connection: SyncConnection) -> None:
    connection.rollback()


def _close(connection: SyncConnection) -> None:
    connection.close()
