"""The hub's database: one connection (SQLite in WAL mode, or PostgreSQL), its migrations, its
transactions.

Each folder owns its tables and keeps all their SQL in its `records.py` (the audit log in
`core/audit.py`, the timers' table in `core/timers.py`); this module holds no table's SQL. It
opens the database and carries it forward (`hub/core/migrations.py`), runs whole transactions,
and commits the batch companions' writes (the timers) with every batch that ingest stores.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from hub.core.audit import AuditLog
from hub.core.database import Database, SyncConnection, open_database
from hub.core.migrations import migrate

CACHE_KIB = 64 * 1024
CHECKPOINT_PAGES = 10_000  # about 40 MB of WAL at the default 4 KiB page

# One statement and the parameter rows it is run with (executemany).
Statement = tuple[str, Sequence[tuple[Any, ...]]]
Result = TypeVar("Result")


class BatchCompanion(Protocol):
    """Another module's changes, written in the same transaction as the next stored batch."""

    def take_writes(self) -> list[Statement]:
        """The statements to commit with the batch; they count as written from now on."""
        ...

    def writes_lost(self) -> None:
        """The batch was rolled back: what `take_writes` handed over must be written again."""
        ...


@dataclass(slots=True)
class _Joining:
    store: Store
    open: bool = True


# Set by `Store.joining_batch()` for the code that runs before a batch is saved.
_JOINING: contextvars.ContextVar[_Joining | None] = contextvars.ContextVar(
    "carewatch_store_joining", default=None
)


@dataclass(frozen=True, slots=True)
class StoredItem:
    """A reading or an event as ingest stores it and hands it on (the watch, the bed states)."""

    device: str
    kind: str
    name: str
    value: object
    sensed_at: float
    received_at: float
    historical: bool


class Store:
    """One connection, one writer: every statement runs on the database's own thread.

    The hot write paths (`save_batch`, `write_now`, `run`) hand a whole transaction to that
    thread in one call, not one round trip per statement.
    """

    def __init__(self, db: Database) -> None:
        self._db = db
        # Coroutines share the connection; the lock keeps each write transaction whole.
        self._write = asyncio.Lock()
        self._companions: list[BatchCompanion] = []
        self._schemas: set[str] = set()
        self.audit = AuditLog(db)

    @classmethod
    async def open(cls, target: Path | str) -> Store:
        """Open the database (a SQLite file, or a `postgresql://` URL), with the audit log,
        migrated to this version's schema."""
        db = await open_database(target)
        try:
            if db.dialect == "sqlite":
                await db.call(_tune_sqlite)
            store = cls(db)
            # Every folder writes the audit log, from the first start-up step on.
            await store.audit.create()
            await db.commit()
            await migrate(db)
        except BaseException:
            await db.close()
            raise
        return store

    async def close(self) -> None:
        await self._db.close()

    @property
    def db(self) -> Database:
        """The shared connection, for the records modules' reads."""
        return self._db

    async def add_schema(self, schema: str) -> None:
        """Create a folder's own tables (idempotent `CREATE ... IF NOT EXISTS` statements); a
        schema already created on this store is not run again."""
        if schema in self._schemas:
            return
        async with self._write:
            await self._db.executescript(schema)
            await self._db.commit()
        self._schemas.add(schema)

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[Database]:
        """One whole write transaction: committed at the end, rolled back on an error."""
        async with self._write:
            try:
                yield self._db
            except BaseException:
                await self._db.rollback()
                raise
            await self._db.commit()

    async def run(self, work: Callable[[SyncConnection], Result]) -> Result:
        """Run `work` as one transaction in one call to the database thread: committed when it
        returns, rolled back if it raises. For a write that must not wait behind a queue of the
        hub's other queries (an alarm's alert), only for the transaction being written."""
        async with self._write:
            return await self._db.call(_transaction, work)

    async def write_now(self, companion: BatchCompanion) -> None:
        """Commit `companion`'s pending changes in a transaction of their own, in one call to
        the database thread (taken under the write lock, so no batch can slip in between)."""
        async with self._write:
            await self._commit_with(companion.take_writes(), [companion])

    def join_batches(self, companion: BatchCompanion) -> None:
        """Have `companion`'s pending changes committed with every batch `save_batch` stores."""
        self._companions.append(companion)

    @contextlib.contextmanager
    def joining_batch(self) -> Iterator[None]:
        """Mark the code run inside as preparing the next batch: a companion that would write
        at once (see `joins_batch`) may leave its change to the batch's own transaction."""
        joining = _Joining(self)
        token = _JOINING.set(joining)
        try:
            yield
        finally:
            joining.open = False  # also for tasks started inside, which hold a copy
            _JOINING.reset(token)

    def joins_batch(self) -> bool:
        """True inside `joining_batch()`: a change made now is committed with that batch."""
        joining = _JOINING.get()
        return joining is not None and joining.open and joining.store is self

    async def save_batch(self, statements: list[Statement]) -> None:
        """Commit a batch's statements and the companions' pending changes in one transaction,
        in one call to the database thread."""
        async with self._write:
            for companion in self._companions:
                statements.extend(companion.take_writes())
            await self._commit_with(statements, self._companions)

    async def _commit_with(
        self, statements: list[Statement], companions: list[BatchCompanion]
    ) -> None:
        """One transaction in one call to the database thread; the write lock must be held."""
        try:
            await _commit_on_db_thread(self._db, statements)
        except BaseException:
            for companion in companions:
                companion.writes_lost()
            raise


def _tune_sqlite(connection: SyncConnection) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    # NORMAL in WAL mode keeps the database consistent across a crash; the last
    # transactions may be lost only on a power cut, and QoS 1 redelivery covers those.
    connection.execute("PRAGMA synchronous=NORMAL")
    # Readings arrive in device order, not time order, so each insert lands on another leaf
    # of the (device, name, time) index: a commit dirties hundreds of pages. More cache
    # (default 2 MiB) keeps those leaves in memory between commits, and a checkpoint every
    # CHECKPOINT_PAGES (default 1,000) copies a page rewritten by many commits only once.
    connection.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
    connection.execute(f"PRAGMA wal_autocheckpoint={CHECKPOINT_PAGES}")


def _transaction(connection: SyncConnection, work: Callable[[SyncConnection], Result]) -> Result:
    """On the database thread: `work`, then commit; nothing of it on an error."""
    try:
        result = work(connection)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise
    return result


def _write_transaction(connection: SyncConnection, statements: Sequence[Statement]) -> None:
    """On the database thread: all the statements, then commit; nothing of them on an error."""
    try:
        for sql, rows in statements:
            if rows:
                connection.executemany(sql, rows)
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


async def _commit_on_db_thread(db: Database, statements: Sequence[Statement]) -> None:
    """Run `_write_transaction` on the connection's own thread and wait for it."""
    await db.call(_write_transaction, statements)
