"""Copies of the hub's database: a SQLite database into an empty PostgreSQL one (to move a
deployment), and SQLite's online backup (a consistent copy while the hub runs).

`copy_to_postgres` (`carewatch db copy`, carewatch/commands/db.py):

1. reads the SQLite database in one read transaction: the copy is one moment of it;
2. refuses a source that is not at this carewatch's schema version (LATEST), and a target that
   holds rows in any of the source's tables;
3. lets the caller make the tables the hub makes its own way on PostgreSQL (`prepare`: the
   command has hub/telemetry make its samples, partitioned by day), then, in one transaction,
   creates the source's other tables from their own CREATE TABLE statements, which the
   PostgreSQL connection translates (hub/core/postgres.py), in the order their foreign keys
   need; copies every table's rows in chunks, in rowid order (key order for a table WITHOUT
   ROWID), with COPY; then creates the indexes;
4. moves each serial column's sequence past the ids copied, and gives the target the source's
   schema version;
5. counts and checksums every table on both sides (`Check`), and commits only if all match.
   Whatever fails, the transaction is rolled back: no row is written (the empty tables that
   `prepare` made stay, and a copy tried again uses them).

Views and triggers are not copied: the hub makes its views as it starts.

The checksum (`digest`) is a SHA-256 over a table's rows in primary-key order (every column's
order for a table without one), each row as Python's `repr` of its values: integers as
integers, floats by their shortest exact form, text quoted, bytes as b'…', NULL as None.
PostgreSQL orders text by bytes (`COLLATE "C"`) and NULLs first, as SQLite does.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import psycopg
from psycopg import sql

from hub.core.migrations import LATEST, POSTGRES_VERSION_TABLE
from hub.core.postgres import PostgresConnection

CHUNK_ROWS: Final = 5_000
BACKUP_STEP_PAGES: Final = 1_024  # 4 MiB a step at SQLite's default 4 KiB page
CREATE_TABLE: Final = re.compile(r"^\s*CREATE\s+TABLE\s+(?!IF\s+NOT\s+EXISTS\b)", re.I)
CREATE_INDEX: Final = re.compile(r"^\s*CREATE\s+(UNIQUE\s+)?INDEX\s+(?!IF\s+NOT\s+EXISTS\b)", re.I)
COPY_LINE: Final = re.compile(r"\bline (\d+)\b")
WITHOUT_ROWID: Final = re.compile(r"\)\s*WITHOUT\s+ROWID\b", re.I)
SOURCE_TABLES: Final = (
    "SELECT name, sql FROM sqlite_master "
    "WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
)
SOURCE_INDEXES: Final = (
    "SELECT name, sql FROM sqlite_master "
    "WHERE type = 'index' AND sql IS NOT NULL AND tbl_name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
    "ORDER BY rowid"
)
TARGET_COLUMNS: Final = (
    "SELECT column_name, data_type FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND table_name = %s"
)
SERIAL_COLUMNS: Final = (
    "SELECT table_name, column_name FROM information_schema.columns "
    "WHERE table_schema = current_schema() AND column_default LIKE 'nextval(%'"
)
TEXT_TYPES: Final = frozenset({"text", "character varying", "character"})

Method = Literal["copy", "executemany"]
# (step, table, done, total): step is "copy", "index" or "check".
Progress = Callable[[str, str, int, int], None]


class CopyError(Exception):
    """The copy was not made; the message says why and what to do. The target is unchanged."""


class CopyRefused(CopyError):
    """The target cannot take the copy (it holds rows, or tables of another shape)."""


class CopyFailed(CopyError):
    """A statement or a value was refused by PostgreSQL while copying."""


@dataclass(frozen=True, slots=True)
class Table:
    """A table of the source database, as the copy needs it."""

    name: str
    create: str  # its CREATE TABLE statement, as SQLite keeps it
    columns: tuple[str, ...]
    key: tuple[str, ...]  # the primary key's columns, or every column
    references: frozenset[str]  # the tables its foreign keys name
    rowid: bool  # False for a table WITHOUT ROWID

    @property
    def label(self) -> tuple[str, ...]:
        """What names a row in a message, and orders the rows copied."""
        return ("rowid",) if self.rowid else self.key


@dataclass(frozen=True, slots=True)
class Check:
    """A table's row count and checksum in the source and in the target."""

    table: str
    source_rows: int
    target_rows: int
    source_sha256: str
    target_sha256: str

    @property
    def matches(self) -> bool:
        return (self.source_rows, self.source_sha256) == (self.target_rows, self.target_sha256)


@dataclass(frozen=True, slots=True)
class Copied:
    """What `copy_to_postgres` did: committed only if every check matches."""

    version: int
    rows: int
    copy_seconds: float  # creating the tables, copying the rows, the indexes and sequences
    checks: list[Check]

    @property
    def matches(self) -> bool:
        return all(check.matches for check in self.checks)


def _quiet(step: str, table: str, done: int, total: int) -> None:
    return None


def copy_to_postgres(
    source: Path,
    url: str,
    progress: Progress = _quiet,
    *,
    prepare: Callable[[], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    method: Method = "copy",
) -> Copied:
    """Copy the SQLite database `source` into the PostgreSQL database at `url` and check it;
    committed only if every table's count and checksum match (see the module's docstring).
    `prepare()` runs once the target is found empty, before the copy's transaction. Raises
    CopyError (refused or failed: no row written), or psycopg/sqlite3 errors for a database
    that cannot be reached or read."""
    with (
        contextlib.closing(_open_source(source)) as src,
        contextlib.closing(PostgresConnection.connect(url)) as dst,
    ):
        src.execute("BEGIN")  # one read transaction: every read below sees the same moment
        tables = source_tables(src)
        version = int(src.execute("PRAGMA user_version").fetchone()[0])
        _refuse_version(source, version)
        _refuse_rows(dst.raw, tables)
        if prepare is not None:
            prepare()
        dst.execute("BEGIN")
        try:
            started = time.monotonic()
            rows = _load(src, dst, tables, version, progress, chunk_rows, method)
            seconds = time.monotonic() - started
            checks = [_check(src, dst.raw, table, progress) for table in tables]
        except BaseException:
            dst.rollback()
            raise
        copied = Copied(version, rows, seconds, checks)
        if copied.matches:
            dst.commit()
        else:
            dst.rollback()
        return copied


def _open_source(path: Path) -> sqlite3.Connection:
    """Read-only, with transactions begun and ended by hand."""
    uri = f"{path.resolve().as_uri()}?mode=ro"
    return sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)


def source_tables(src: sqlite3.Connection) -> list[Table]:
    """The source's tables (SQLite's own left out), each after the tables it references."""
    tables = [_table(src, name, create) for name, create in src.execute(SOURCE_TABLES)]
    return _referenced_first(tables)


def _table(src: sqlite3.Connection, name: str, create: str) -> Table:
    info = src.execute(f"PRAGMA table_info({_quote(name)})").fetchall()
    columns = tuple(str(row[1]) for row in info)
    key = tuple(str(row[1]) for row in sorted(info, key=lambda row: row[5]) if row[5] > 0)
    references = {str(row[2]) for row in src.execute(f"PRAGMA foreign_key_list({_quote(name)})")}
    rowid = WITHOUT_ROWID.search(create) is None
    return Table(name, create, columns, key or columns, frozenset(references - {name}), rowid)


def _referenced_first(tables: list[Table]) -> list[Table]:
    """Tables in an order where each comes after those its foreign keys reference (the source's
    order otherwise; a cycle, which the hub's tables never have, keeps the source's order)."""
    ordered: list[Table] = []
    placed: set[str] = set()
    waiting = list(tables)
    while waiting:
        ready = [t for t in waiting if t.references <= placed] or waiting[:1]
        for table in ready:
            ordered.append(table)
            placed.add(table.name)
            waiting.remove(table)
    return ordered


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _refuse_version(source: Path, version: int) -> None:
    """CopyRefused unless the source has this carewatch's schema: the target is made in it."""
    if version < LATEST:
        raise CopyRefused(
            f"{source} is at schema version {version}; copy takes a database at version "
            f"{LATEST}, the newest this carewatch knows: run carewatch db migrate first"
        )
    if version > LATEST:
        raise CopyRefused(
            f"{source} is at schema version {version}, made by a newer carewatch; this one "
            f"knows versions up to {LATEST}: copy with the newer version"
        )


def _refuse_rows(raw: psycopg.Connection[Any], tables: Sequence[Table]) -> None:
    """CopyRefused if any of the source's tables exists in the target and holds a row."""
    holding = [table.name for table in tables if _holds_rows(raw, table.name)]
    if holding:
        raise CopyRefused(
            f"the target database already holds rows in {', '.join(holding)}; copy goes into "
            "an empty database only (create a new one: createdb, or CREATE DATABASE); "
            "nothing was written"
        )


def _holds_rows(raw: psycopg.Connection[Any], table: str) -> bool:
    found = raw.execute("SELECT to_regclass(%s)", (_quote(table),)).fetchone()
    if found is None or found[0] is None:
        return False
    query = sql.SQL("SELECT EXISTS (SELECT 1 FROM {})").format(sql.Identifier(table))
    row = raw.execute(query).fetchone()
    return bool(row and row[0])


def _load(
    src: sqlite3.Connection,
    dst: PostgresConnection,
    tables: Sequence[Table],
    version: int,
    progress: Progress,
    chunk_rows: int,
    method: Method,
) -> int:
    """Everything written to the target, in its open transaction; the rows copied."""
    for table in tables:
        _create_table(dst, table)
    rows = sum(_copy_rows(src, dst.raw, table, progress, chunk_rows, method) for table in tables)
    indexes = src.execute(SOURCE_INDEXES).fetchall()
    for number, (name, create) in enumerate(indexes, 1):
        progress("index", name, number, len(indexes))
        _ddl(dst, CREATE_INDEX.sub(r"CREATE \1INDEX IF NOT EXISTS ", create), f"index {name}")
    _reset_sequences(dst.raw, {table.name for table in tables})
    dst.executescript(POSTGRES_VERSION_TABLE)
    dst.execute("DELETE FROM schema_version")
    dst.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
    return rows


def _create_table(dst: PostgresConnection, table: Table) -> None:
    """The table as the source has it (kept if the target has it already, empty), with every
    column of the source's."""
    _ddl(dst, CREATE_TABLE.sub("CREATE TABLE IF NOT EXISTS ", table.create), f"table {table.name}")
    present = _target_types(dst.raw, table)
    missing = [column for column in table.columns if column not in present]
    if missing:
        raise CopyRefused(
            f"the target's table {table.name} has no column {', '.join(missing)}: it was made "
            "by another version of carewatch; copy into a new, empty database"
        )


def _ddl(dst: PostgresConnection, statement: str, what: str) -> None:
    try:
        dst.execute(statement)
    except psycopg.Error as exc:
        raise CopyFailed(
            f"PostgreSQL refused the {what} as SQLite defines it: {_reason(exc)}\n{statement}"
        ) from None


def _target_types(raw: psycopg.Connection[Any], table: Table) -> dict[str, str]:
    """The target table's columns and their types."""
    return {str(row[0]): str(row[1]) for row in raw.execute(TARGET_COLUMNS, (table.name,))}


def _copy_rows(
    src: sqlite3.Connection,
    raw: psycopg.Connection[Any],
    table: Table,
    progress: Progress,
    chunk_rows: int,
    method: Method,
) -> int:
    """The table's rows, in chunks in rowid (or key) order; the number copied."""
    total = int(src.execute(f"SELECT count(*) FROM {_quote(table.name)}").fetchone()[0])
    label = ", ".join(_quote(column) for column in table.label)
    columns = ", ".join(_quote(column) for column in table.columns)
    cursor = src.execute(f"SELECT {label}, {columns} FROM {_quote(table.name)} ORDER BY {label}")
    write = _copy_chunk if method == "copy" else _insert_chunk
    done = 0
    progress("copy", table.name, done, total)
    while chunk := cursor.fetchmany(chunk_rows):
        try:
            write(raw, table, chunk)
        except (psycopg.DataError, psycopg.IntegrityError) as exc:
            raise CopyFailed(_refused_row(table, chunk, exc)) from None
        done += len(chunk)
        progress("copy", table.name, done, total)
    return done


def _column_list(table: Table) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(column) for column in table.columns)


def _copy_chunk(raw: psycopg.Connection[Any], table: Table, chunk: Sequence[Any]) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(table.name), _column_list(table)
    )
    start = len(table.label)
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in chunk:
            copy.write_row(row[start:])


def _insert_chunk(raw: psycopg.Connection[Any], table: Table, chunk: Sequence[Any]) -> None:
    statement = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(table.name),
        _column_list(table),
        sql.SQL(", ").join(sql.Placeholder() for _ in table.columns),
    )
    start = len(table.label)
    with raw.cursor() as cursor:
        cursor.executemany(statement, [row[start:] for row in chunk])


def _refused_row(table: Table, chunk: Sequence[Any], exc: psycopg.Error) -> str:
    """Which row PostgreSQL refused (COPY says its line in the chunk), and why."""
    line = COPY_LINE.search(exc.diag.context or "")
    names = ", ".join(table.label)
    start = len(table.label)
    if line and 1 <= int(line[1]) <= len(chunk):
        where = f"the row with {names} {_shown(chunk[int(line[1]) - 1][:start])}"
    else:
        first, last = _shown(chunk[0][:start]), _shown(chunk[-1][:start])
        where = f"a row with {names} from {first} to {last}"
    return (
        f"PostgreSQL refused {where} of table {table.name}: {_reason(exc)}. SQLite keeps a "
        "value of another type than its column's; correct that row in the SQLite database "
        "(with the hub stopped), then copy again: no row was written to the target"
    )


def _shown(values: Sequence[Any]) -> str:
    return repr(values[0]) if len(values) == 1 else repr(tuple(values))


def _reason(exc: psycopg.Error) -> str:
    parts = (exc.diag.message_primary, exc.diag.message_detail, exc.diag.context)
    text = "; ".join(part for part in parts if part)
    return text or str(exc).strip()


def _reset_sequences(raw: psycopg.Connection[Any], tables: set[str]) -> None:
    """Each serial column's sequence on from the largest id copied (1 for an empty table)."""
    for table, column in raw.execute(SERIAL_COLUMNS).fetchall():
        if table not in tables:
            continue
        statement = sql.SQL(
            "SELECT setval(pg_get_serial_sequence(%s, %s), coalesce(max({c}), 1), "
            "max({c}) IS NOT NULL) FROM {t}"
        ).format(c=sql.Identifier(column), t=sql.Identifier(table))
        raw.execute(statement, (_quote(table), column))


def _check(
    src: sqlite3.Connection, raw: psycopg.Connection[Any], table: Table, progress: Progress
) -> Check:
    total = int(src.execute(f"SELECT count(*) FROM {_quote(table.name)}").fetchone()[0])
    columns = ", ".join(_quote(column) for column in table.columns)
    order = ", ".join(_quote(column) for column in table.key)
    rows = src.execute(f"SELECT {columns} FROM {_quote(table.name)} ORDER BY {order}")
    source_rows, source_sum = digest(rows, lambda done: progress("check", table.name, done, total))
    target_rows, target_sum = _target_digest(raw, table)
    progress("check", table.name, total, total)
    return Check(table.name, source_rows, target_rows, source_sum, target_sum)


def _target_digest(raw: psycopg.Connection[Any], table: Table) -> tuple[int, str]:
    text = {name for name, kind in _target_types(raw, table).items() if kind in TEXT_TYPES}
    order = sql.SQL(", ").join(
        sql.SQL('{} COLLATE "C" NULLS FIRST' if column in text else "{} NULLS FIRST").format(
            sql.Identifier(column)
        )
        for column in table.key
    )
    query = sql.SQL("SELECT {} FROM {} ORDER BY {}").format(
        _column_list(table), sql.Identifier(table.name), order
    )
    with raw.cursor(name="carewatch_copy_check") as cursor:
        cursor.itersize = CHUNK_ROWS
        cursor.execute(query)
        return digest(cursor)


def digest(
    rows: Iterable[Sequence[Any]], every_chunk: Callable[[int], None] | None = None
) -> tuple[int, str]:
    """The number of rows and the SHA-256 of their values, in the order given: each row as the
    `repr` of a tuple, the same from SQLite and from PostgreSQL (integers as integers, floats
    by their shortest exact form, text quoted, bytes as b'…', NULL as None)."""
    sha = hashlib.sha256()
    count = 0
    for row in rows:
        sha.update(repr(tuple(row)).encode() + b"\n")
        count += 1
        if every_chunk is not None and count % CHUNK_ROWS == 0:
            every_chunk(count)
    return count, sha.hexdigest()


@dataclass(frozen=True, slots=True)
class Backup:
    bytes: int
    seconds: float
    integrity: str  # "ok", or what PRAGMA integrity_check found


def backup_sqlite(
    source: Path, target: Path, progress: Callable[[int, int], None] | None = None
) -> Backup:
    """A consistent copy of the SQLite database `source` in the new file `target` (never an
    existing one: FileExistsError), made with SQLite's online backup while the hub writes.

    The steps are read in one read transaction on the source, so they copy one moment of it
    and the hub's commits in between neither block nor restart the backup. The copy is then
    a single file (journal mode DELETE, no -wal beside it) that passed PRAGMA integrity_check
    if `integrity` is "ok". `progress(pages_done, pages_total)` after every step."""
    started = time.monotonic()
    os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    try:
        with contextlib.closing(_open_source(source)) as src:
            src.execute("BEGIN")
            src.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the read begins
            with contextlib.closing(sqlite3.connect(target)) as dst:
                src.backup(dst, pages=BACKUP_STEP_PAGES, progress=_pages(progress), sleep=0)
                src.execute("ROLLBACK")
                dst.execute("PRAGMA journal_mode=DELETE")
                found = [str(row[0]) for row in dst.execute("PRAGMA integrity_check")]
    except BaseException:
        target.unlink(missing_ok=True)
        raise
    return Backup(target.stat().st_size, time.monotonic() - started, "; ".join(found))


def _pages(
    progress: Callable[[int, int], None] | None,
) -> Callable[[int, int, int], object] | None:
    if progress is None:
        return None
    return lambda _status, remaining, total: progress(total - remaining, total)
