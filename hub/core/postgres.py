"""The hub's database on PostgreSQL: a psycopg 3 connection that speaks the records' SQL.

The records modules write their SQL once, in the subset SQLite and PostgreSQL share, with
SQLite's `?` placeholders and column types. This connection translates what differs on the way
(`to_postgres`: placeholders, column types, `json_extract`), keeps SQLite's transaction habit
(a read outside a transaction commits at once; the first write begins one, which `commit` ends),
and gives rows that read by name or by position, like `sqlite3.Row`.

psycopg 3 in its synchronous form runs on the database thread (hub/core/database.py), as
sqlite3 does: one writer, statements in order, a whole transaction handed over in one call.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Final

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import TransactionStatus
from psycopg.types.numeric import FloatLoader

from hub.core.database import Database

log = logging.getLogger("carewatch.hub.database")
WRITES: Final = frozenset(
    {"INSERT", "UPDATE", "DELETE", "CREATE", "ALTER", "DROP", "REPLACE", "TRUNCATE"}
)
DDL_TYPES: Final = (
    (re.compile(r"\bINTEGER PRIMARY KEY(?: AUTOINCREMENT)?\b", re.I), "BIGSERIAL PRIMARY KEY"),
    (re.compile(r"\bINTEGER\b", re.I), "BIGINT"),
    (re.compile(r"\bREAL\b", re.I), "DOUBLE PRECISION"),
    (re.compile(r"\bBLOB\b", re.I), "BYTEA"),
)
DDL: Final = re.compile(r"\b(CREATE|ALTER)\s+TABLE\b", re.I)
CAST_REAL: Final = re.compile(r"\bAS\s+REAL\b", re.I)
JSON_FIELD: Final = re.compile(r"json_extract\((\w+), '\$\.(\w+)'\)")
BEGIN_IMMEDIATE: Final = re.compile(r"^\s*BEGIN\s+IMMEDIATE\b", re.I)
WITHOUT_ROWID: Final = re.compile(r"\)\s*WITHOUT\s+ROWID", re.I)
# SQLite takes `x IN ()` (false) and `x NOT IN ()` (true); PostgreSQL's words for them.
NOT_IN_NOTHING: Final = re.compile(r"\bNOT\s+IN\s*\(\s*\)", re.I)
IN_NOTHING: Final = re.compile(r"\bIN\s*\(\s*\)", re.I)
# A plain insert of many rows goes by COPY: about twice as fast as a statement per row, with the
# same defaults, constraints and partition routing.
INSERT: Final = re.compile(
    r"^\s*INSERT\s+INTO\s+(\w+)\s*\(([\w\s,\"]+)\)\s*VALUES\s*(\(\s*\?(?:\s*,\s*\?)*\s*\))\s*(.*)$",
    re.I | re.S,
)
# An upsert of rows that touch each key once is sent as one statement of many rows (PostgreSQL
# refuses a statement that updates a row twice, which a statement per row allows).
CONFLICT_TARGET: Final = re.compile(r"^ON\s+CONFLICT\s*\(([\w\s,\"]+)\)", re.I)
ROWS_PER_STATEMENT: Final = 1_000


class Row(tuple[Any, ...]):
    """A row read by position (`row[0]`, unpacking) or by column name (`row["name"]`)."""

    _index: dict[str, int]

    def __new__(cls, index: dict[str, int], values: Sequence[Any]) -> Row:
        row = super().__new__(cls, values)
        row._index = index
        return row

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return tuple.__getitem__(self, self._index[key])
        return tuple.__getitem__(self, key)

    def keys(self) -> list[str]:
        return list(self._index)


def _rows(cursor: psycopg.Cursor[Any]) -> Callable[[Sequence[Any]], Row]:
    index = {column.name: i for i, column in enumerate(cursor.description or ())}
    return lambda values: Row(index, values)


class _BoolAsInteger(Dumper):
    """SQLite keeps flags as 0/1 in INTEGER columns, and so do the tables here."""

    oid = psycopg.adapters.types["int8"].oid

    def dump(self, obj: Any) -> bytes:
        return b"1" if obj else b"0"


@functools.lru_cache(maxsize=4096)
def to_postgres(sql: str) -> str:
    """The statement in PostgreSQL's words: `%s` placeholders (and `%` doubled), PostgreSQL's
    column types in a CREATE or ALTER TABLE (and no WITHOUT ROWID), `json_extract(column,
    '$.key')` as `->>`, and an empty `IN ()`."""
    text = _placeholders(sql)
    if DDL.search(text):
        for pattern, replacement in DDL_TYPES:
            text = pattern.sub(replacement, text)
        text = WITHOUT_ROWID.sub(")", text)
    text = CAST_REAL.sub("AS DOUBLE PRECISION", text)
    text = JSON_FIELD.sub(r"(\1::jsonb ->> '\2')", text)
    text = NOT_IN_NOTHING.sub("<> ALL('{}')", text)
    text = IN_NOTHING.sub("= ANY('{}')", text)
    return BEGIN_IMMEDIATE.sub("BEGIN", text)


def _placeholders(sql: str) -> str:
    """`?` outside quoted literals and `--` comments becomes `%s`; every `%` is doubled for
    psycopg."""
    out: list[str] = []
    quote: str | None = None
    for i, char in enumerate(sql):
        if quote == "--":
            if char == "\n":
                quote = None
        elif quote is not None:
            if char == quote:
                quote = None
        elif char == "-" and sql.startswith("--", i):
            quote = "--"
        elif char in "'\"":
            quote = char
        elif char == "?":
            out.append("%s")
            continue
        out.append("%%" if char == "%" else char)
    return "".join(out)


def _first_word(sql: str) -> str:
    stripped = sql.lstrip()
    while stripped.startswith("--"):
        stripped = stripped.partition("\n")[2].lstrip()
    return stripped[:8].split(None, 1)[0].upper() if stripped else ""


class PostgresCursor:
    def __init__(self, cursor: psycopg.Cursor[Any]) -> None:
        self._cursor = cursor

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor.description else []


class PostgresConnection:
    """A psycopg connection that takes the records' SQL (see the module's docstring).

    A connection the server dropped (a restart, a network cut) is made again at the next
    statement outside a transaction; the statement that found it broken fails, and so does the
    rest of a transaction it broke (its caller sees the error, as with any failed write)."""

    def __init__(self, url: str, read_only: bool = False) -> None:
        self._url = url
        self._read_only = read_only
        self._connection = _connect(url, read_only)
        self._in_transaction = False

    @classmethod
    def connect(cls, url: str, read_only: bool = False) -> PostgresConnection:
        return cls(url, read_only)

    @property
    def raw(self) -> psycopg.Connection[Any]:
        """The psycopg connection itself, for PostgreSQL-only work (partitions, COPY)."""
        return self._connection

    def execute(self, sql: str, parameters: Sequence[Any] = (), /) -> PostgresCursor:
        self._begin_if_writing(sql)
        cursor = self._connection.cursor()
        cursor.execute(to_postgres(sql), tuple(parameters))
        return PostgresCursor(cursor)

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]], /) -> PostgresCursor:
        self._begin_if_writing(sql)
        cursor = self._connection.cursor()
        listed = [tuple(row) for row in rows]
        insert = INSERT.match(sql)
        if insert and not insert.group(4):
            self._copy(cursor, insert.group(1), insert.group(2), listed)
        elif insert and _touch_each_key_once(insert.group(2), insert.group(4), listed):
            _insert_many(cursor, sql, insert.group(3), listed)
        else:
            cursor.executemany(to_postgres(sql), listed)
        return PostgresCursor(cursor)

    @staticmethod
    def _copy(
        cursor: psycopg.Cursor[Any], table: str, columns: str, rows: list[tuple[Any, ...]]
    ) -> None:
        with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)

    def executescript(self, script: str, /) -> None:
        """Statements without parameters, in the transaction open now or in one of their own."""
        opened = not self._in_transaction
        self._begin_if_writing("CREATE")
        self._connection.execute(to_postgres(script).replace("%%", "%"))
        if opened:
            self.commit()

    def commit(self) -> None:
        if self._in_transaction:
            self._in_transaction = False
            self._connection.execute("COMMIT")

    def rollback(self) -> None:
        self._in_transaction = False
        if self._connection.broken or self._connection.closed:
            return
        if self._connection.info.transaction_status != TransactionStatus.IDLE:
            self._connection.execute("ROLLBACK")

    def close(self) -> None:
        self._connection.close()

    def _begin_if_writing(self, sql: str) -> None:
        if self._connection.broken or self._connection.closed:
            self._reconnect()
        word = _first_word(sql)
        if word == "BEGIN":
            self._in_transaction = True
        elif word in WRITES and not self._in_transaction:
            self._connection.execute("BEGIN")
            self._in_transaction = True

    def _reconnect(self) -> None:
        if self._in_transaction:
            return  # the transaction is lost: it fails until its caller rolls it back
        log.warning("the connection to PostgreSQL was lost; connecting again")
        self._connection = _connect(self._url, self._read_only)


def _names(columns: str) -> list[str]:
    return [name.strip().strip('"') for name in columns.split(",")]


def _touch_each_key_once(columns: str, rest: str, rows: list[tuple[Any, ...]]) -> bool:
    """Whether these rows of an `INSERT ... ON CONFLICT (key)` differ in their key."""
    target = CONFLICT_TARGET.match(rest)
    if not target or len(rows) < 2:
        return False
    names = _names(columns)
    positions = [names.index(key) for key in _names(target.group(1)) if key in names]
    keys = {tuple(row[position] for position in positions) for row in rows}
    return len(positions) == len(_names(target.group(1))) and len(keys) == len(rows)


def _insert_many(
    cursor: psycopg.Cursor[Any], sql: str, values: str, rows: list[tuple[Any, ...]]
) -> None:
    """Rows sent in statements of ROWS_PER_STATEMENT rows: `VALUES (...), (...), ...`."""
    statement, one_row = to_postgres(sql), to_postgres(values)  # translated once, not per row
    for first in range(0, len(rows), ROWS_PER_STATEMENT):
        chunk = rows[first : first + ROWS_PER_STATEMENT]
        many = statement.replace(one_row, ", ".join([one_row] * len(chunk)), 1)
        cursor.execute(many, [value for row in chunk for value in row])


def _connect(url: str, read_only: bool) -> psycopg.Connection[Any]:
    options = "-c default_transaction_read_only=on" if read_only else None
    connection: psycopg.Connection[Any] = psycopg.connect(
        url, autocommit=True, row_factory=_rows, options=options, connect_timeout=10
    )
    connection.adapters.register_dumper(bool, _BoolAsInteger)
    # sum() and avg() of integers are numeric in PostgreSQL; SQLite gives numbers.
    connection.adapters.register_loader("numeric", FloatLoader)
    return connection


async def open_postgres(url: str, read_only: bool = False) -> Database:
    database = Database("postgresql", _without_password(url))
    try:
        await database.connect(lambda: PostgresConnection.connect(url, read_only))
    except BaseException:
        await database.close()
        raise
    return database


def _without_password(url: str) -> str:
    return re.sub(r"://([^:@/]+):[^@/]*@", r"://\1:***@", url)
