"""`carewatch db ACTION --config hub.yaml`: the hub's database (docs/database.md).

  status   what and where it is, its schema version, every table's rows and bytes on disk,
           and the retention settings; `--json` for scripts. Safe while the hub runs.
  migrate  run the numbered migrations it has not had yet (the hub runs them too when it
           starts); a database of a newer carewatch is refused.
  copy     copy every record of the SQLite database, at the newest schema version, into an
           empty PostgreSQL database (`--to postgresql://…`) and check the copy table by
           table. Stop the hub first: what it writes after the copy began is not in the copy.
  backup   a consistent copy in a new FILE while the hub runs: SQLite's online backup, checked
           with integrity_check; for PostgreSQL, pg_dump.

Exit status: 0 done; 1 refused or failed (the database could not be reached or read, the copy's
target is not empty, a check did not match, a database of a newer carewatch); 2 the command or
the configuration was wrong (no configuration, no database file, FILE exists).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final, TextIO

import psycopg
from psycopg.conninfo import conninfo_to_dict

from hub.config import HubConfig, HubConfigError, load_hub_config
from hub.core.copy import Copied, CopyError, backup_sqlite, copy_to_postgres
from hub.core.database import DATABASE_ERRORS, Database, is_postgres, open_database
from hub.core.migrations import LATEST, MIGRATIONS, MigrationError, schema_version
from hub.core.store import Store
from hub.telemetry.records import TelemetryRecords

OK: Final = 0
FAILED: Final = 1
USAGE: Final = 2
PROGRESS_EVERY_S: Final = 2.0
SQLITE_TABLES: Final = (
    "SELECT name FROM sqlite_master WHERE type = 'table' "
    "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
)
# Pages of a table and of its indexes, by table (SQLite's dbstat virtual table).
SQLITE_SIZES: Final = (
    "SELECT m.tbl_name, sum(s.pgsize) FROM dbstat AS s "
    "JOIN sqlite_master AS m ON m.name = s.name GROUP BY m.tbl_name"
)
# Every table of the schema with its indexes and TOAST; a partitioned table with its partitions.
POSTGRES_SIZES: Final = """
SELECT c.relname,
       CASE WHEN c.relkind = 'p' THEN
            (SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0)
               FROM pg_partition_tree(c.oid) AS p)
       ELSE pg_total_relation_size(c.oid) END AS bytes
  FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
 WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND NOT c.relispartition
 ORDER BY c.relname
"""


COPY_DESCRIPTION: Final = (
    "Copy every record of the hub's SQLite database into an empty PostgreSQL database, then "
    "compare every table's row count and checksum on both sides; the copy is committed only if "
    "all match. Stop the hub first: the source is read in one transaction, a consistent moment "
    "of it, but what the hub writes after that moment is not in the copy. The source must be at "
    "the newest schema version (carewatch db migrate), the target must hold no rows. Then set "
    "database: in the hub configuration to the target's URL and start the hub (docs/database.md)."
)


class UsageError(Exception):
    """The command or its configuration was wrong (exit status 2)."""


def add_db_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "db",
        help="the hub's database: status, migrate, copy, backup",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    status = _action(actions, "status", "kind, schema version, tables' rows and bytes, retention")
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(func=status_main)
    _action(actions, "migrate", "run the pending schema migrations").set_defaults(func=migrate_main)
    copy = _action(
        actions,
        "copy",
        "copy every record of the SQLite database into an empty PostgreSQL database and check "
        "it; stop the hub first",
        COPY_DESCRIPTION,
    )
    copy.add_argument("--to", required=True, metavar="postgresql://…", help="the target's URL")
    copy.set_defaults(func=copy_main)
    backup = _action(actions, "backup", "a consistent backup into a new FILE while the hub runs")
    backup.add_argument("file", type=Path, metavar="FILE", help="the backup, a new file")
    backup.set_defaults(func=backup_main)


def _action(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str | None = None,
) -> argparse.ArgumentParser:
    parser = actions.add_parser(name, help=summary, description=description or summary)
    parser.add_argument("--config", required=True, type=Path, help="hub YAML configuration")
    return parser


# -- shared ---------------------------------------------------------------------------------


def _config(path: Path) -> HubConfig:
    try:
        return load_hub_config(path)
    except HubConfigError as exc:
        raise UsageError(str(exc)) from None


def _existing(config: HubConfig) -> Path | str:
    """The configured database; a SQLite file must exist (a command never makes a new one)."""
    if is_postgres(config.database):
        return str(config.database)
    path = Path(config.database)
    if not path.is_file():
        raise UsageError(
            f"no database at {path} (relative paths are read from the current directory; run "
            "this where the hub runs, or has the hub not started yet?)"
        )
    return path


def shown(target: Path | str) -> str:
    """The path, or the URL without its password (which is never printed)."""
    if not is_postgres(target):
        return str(target)
    parts = urllib.parse.urlsplit(str(target))
    userinfo, at, host = parts.netloc.rpartition("@")
    netloc = f"{userinfo.partition(':')[0]}@{host}" if at else host
    query = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    kept = urllib.parse.urlencode([(key, value) for key, value in query if key != "password"])
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc, query=kept))


def _size(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if count < 1024 or unit == "GiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    raise AssertionError("unreachable")


class Progress:
    """Long work on stderr: the end of each table copied, each index, and every few seconds
    the rows (or pages) done of the total."""

    def __init__(self, err: TextIO, every_s: float = PROGRESS_EVERY_S) -> None:
        self._err = err
        self._every_s = every_s
        self._last = time.monotonic()

    def __call__(self, step: str, name: str, done: int, total: int) -> None:
        now = time.monotonic()
        at_end = done == total and step != "check"
        if step == "index" or at_end or now - self._last >= self._every_s:
            print(f"  {step} {name}: {done:,} of {total:,}", file=self._err, flush=True)
            self._last = now

    def pages(self, done: int, total: int) -> None:
        self("backup", "pages", done, total)
        if done == total:
            print("  checking the backup: PRAGMA integrity_check", file=self._err, flush=True)


Action = Callable[[argparse.Namespace, TextIO, TextIO], int]


def _run(args: argparse.Namespace, work: Action) -> int:
    """Run an action's `work(args, out, err)`, turning a usage error into exit status 2."""
    try:
        return int(work(args, sys.stdout, sys.stderr))
    except UsageError as exc:
        print(f"carewatch db {args.action}: {exc}", file=sys.stderr)
        return USAGE


# -- status ---------------------------------------------------------------------------------


def status_main(args: argparse.Namespace) -> int:
    return _run(args, _status)


def _status(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _config(args.config)
    target = _existing(config)
    try:
        document = asyncio.run(_read_status(target))
    except DATABASE_ERRORS as exc:
        print(f"carewatch db status: cannot read {shown(target)}: {exc}", file=err)
        return FAILED
    if isinstance(target, Path):
        wal = Path(f"{target}-wal")
        document["database"]["bytes"] = target.stat().st_size
        document["database"]["wal_bytes"] = wal.stat().st_size if wal.exists() else 0
    document["retention"] = _retention(config)
    if args.json:
        json.dump(document, out, indent=2)
        out.write("\n")
    else:
        _print_status(document, out)
    return OK


async def _read_status(target: Path | str) -> dict[str, Any]:
    db = await open_database(target, read_only=True)
    try:
        database: dict[str, Any] = {"kind": db.dialect, "target": db.target}
        if db.dialect == "postgresql":
            size = await db.execute_fetchall("SELECT pg_database_size(current_database())")
            database["bytes"] = int(size[0][0])
        return {
            "database": database,
            "schema_version": await _version(db),
            "latest_version": LATEST,
            "tables": await _tables(db),
        }
    finally:
        await db.close()


async def _version(db: Database) -> int:
    """The schema version, read without writing (migrations.schema_version makes PostgreSQL's
    table if it is missing)."""
    if db.dialect == "sqlite":
        rows = await db.execute_fetchall("PRAGMA user_version")
    elif await db.has_table("schema_version"):
        rows = await db.execute_fetchall("SELECT version FROM schema_version")
    else:
        rows = []
    return int(rows[0][0]) if rows else 0


async def _tables(db: Database) -> list[dict[str, Any]]:
    if db.dialect == "sqlite":
        names = [str(row[0]) for row in await db.execute_fetchall(SQLITE_TABLES)]
        try:
            sizes = {str(r[0]): int(r[1]) for r in await db.execute_fetchall(SQLITE_SIZES)}
        except sqlite3.OperationalError:  # a SQLite built without dbstat
            sizes = {}
    else:
        found = await db.execute_fetchall(POSTGRES_SIZES)
        names = [str(row[0]) for row in found]
        sizes = {str(row[0]): int(row[1]) for row in found}
    tables = []
    for name in names:
        count = await db.execute_fetchall(f'SELECT count(*) FROM "{name}"')
        tables.append({"name": name, "rows": int(count[0][0]), "bytes": sizes.get(name)})
    return tables


def _retention(config: HubConfig) -> dict[str, float | None]:
    """The `retention:` settings (hub/telemetry/settings.py); records (events, alerts, the audit
    log) are kept for ever (None) unless a `records_days` setting says otherwise."""
    retention = config.retention
    return {
        "raw_days": retention.raw_days,
        "minute_days": retention.minute_days,
        "hour_days": retention.hour_days,
        "records_days": getattr(retention, "records_days", None),
    }


def _days(days: float | None) -> str:
    if days is None:
        return "kept for ever"
    return f"{days:g} day" + ("" if days == 1 else "s")


def _schema_state(version: int) -> str:
    if version == LATEST:
        return "up to date"
    if version < LATEST:
        return f"{LATEST - version} migration(s) pending: carewatch db migrate, or start the hub"
    return "made by a newer carewatch: run that version, or restore a backup"


def _print_status(document: dict[str, Any], out: TextIO) -> None:
    database = document["database"]
    out.write(f"database   {database['kind']} {database['target']}\n")
    size = f"size       {_size(database['bytes'])}"
    if database["kind"] == "sqlite":
        size += f" (write-ahead log {_size(database['wal_bytes'])})"
    out.write(size + "\n")
    version = document["schema_version"]
    out.write(
        f"schema     version {version}, the newest this carewatch knows is "
        f"{document['latest_version']}: {_schema_state(version)}\n\n"
    )
    tables = document["tables"]
    width = max([len("table"), *(len(table["name"]) for table in tables)])
    out.write(f"{'table':<{width}}  {'rows':>12}  {'on disk':>10}\n")
    for table in tables:
        on_disk = "-" if table["bytes"] is None else _size(table["bytes"])
        out.write(f"{table['name']:<{width}}  {table['rows']:>12,}  {on_disk:>10}\n")
    retention = document["retention"]
    out.write(
        f"\nretention  raw readings {_days(retention['raw_days'])}, 1-minute rollups "
        f"{_days(retention['minute_days'])}, 1-hour rollups {_days(retention['hour_days'])}; "
        f"records (events, alerts, audit log) {_days(retention['records_days'])}\n"
    )


# -- migrate --------------------------------------------------------------------------------


def migrate_main(args: argparse.Namespace) -> int:
    return _run(args, _migrate)


def _migrate(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    target = _existing(_config(args.config))
    try:
        before, after = asyncio.run(_run_migrations(target))
    except MigrationError as exc:
        print(f"carewatch db migrate: {exc}", file=err)
        return FAILED
    except DATABASE_ERRORS as exc:
        print(f"carewatch db migrate: cannot migrate {shown(target)}: {exc}", file=err)
        return FAILED
    ran = [step for step in MIGRATIONS if before < step.number <= after]
    if not ran:
        print(
            f"{shown(target)} is already at version {after}, the newest this carewatch knows",
            file=out,
        )
        return OK
    for step in ran:
        print(f"migrated to version {step.number}: {step.title}", file=out)
    print(f"{shown(target)} is now at version {after}", file=out)
    return OK


async def _run_migrations(target: Path | str) -> tuple[int, int]:
    """The schema version before and after opening the store, which migrates."""
    db = await open_database(target, read_only=True)
    try:
        before = await _version(db)
    finally:
        await db.close()
    store = await Store.open(target)
    try:
        return before, await schema_version(store.db)
    finally:
        await store.close()


# -- copy -----------------------------------------------------------------------------------


def copy_main(args: argparse.Namespace) -> int:
    return _run(args, _copy)


def _copy(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _config(args.config)
    if is_postgres(config.database):
        raise UsageError(
            "copy goes from SQLite to PostgreSQL, and this hub's database is PostgreSQL "
            "already; between PostgreSQL servers use pg_dump and pg_restore (docs/database.md)"
        )
    if not is_postgres(args.to):
        raise UsageError(f"--to takes a postgresql:// URL, not {args.to!r}")
    source = Path(_existing(config))
    _warn_if_hub_runs(source, err)
    print(f"carewatch db copy: {source} into {shown(args.to)}", file=err)
    try:
        copied = copy_to_postgres(source, args.to, Progress(err), prepare=_hub_tables(args.to))
    except CopyError as exc:
        print(f"carewatch db copy: {exc}", file=err)
        return FAILED
    except DATABASE_ERRORS as exc:
        print(f"carewatch db copy: cannot copy {source} into {shown(args.to)}: {exc}", file=err)
        return FAILED
    _print_checks(copied, out)
    if not copied.matches:
        print(
            "carewatch db copy: the copy does not match the source (see the tables marked "
            "MISMATCH); no row was committed to the target",
            file=err,
        )
        return FAILED
    rate = copied.rows / copied.copy_seconds if copied.copy_seconds else 0.0
    print(
        f"copied {copied.rows:,} rows in {copied.copy_seconds:.1f} s ({rate:,.0f} rows/s), "
        f"schema version {copied.version}; every table matches. Next: set `database:` in the "
        "hub configuration to the target's URL and start the hub.",
        file=out,
    )
    return OK


def _hub_tables(url: str) -> Callable[[], None]:
    return lambda: asyncio.run(_make_hub_tables(url))


async def _make_hub_tables(url: str) -> None:
    """The tables the hub makes its own way on PostgreSQL (the time series, partitioned by day:
    hub/telemetry/records.py), made by the hub's own code; the copy fills them. Opening the
    empty target runs every migration on it: not worth a line each here."""
    migrations = logging.getLogger("carewatch.hub.migrations")
    level = migrations.level
    migrations.setLevel(logging.WARNING)
    try:
        store = await Store.open(url)
        try:
            await TelemetryRecords(store).create()
        finally:
            await store.close()
    finally:
        migrations.setLevel(level)


def _warn_if_hub_runs(source: Path, err: TextIO) -> None:
    wal = Path(f"{source}-wal")
    if wal.exists() and wal.stat().st_size > 0:
        print(
            f"carewatch db copy: warning: {wal} is not empty: is the hub still running? What it "
            "writes from now on will not be in the copy; stop it first",
            file=err,
        )


def _print_checks(copied: Copied, out: TextIO) -> None:
    width = max([len("table"), *(len(check.table) for check in copied.checks)])
    out.write(f"{'table':<{width}}  {'source rows':>12}  {'target rows':>12}  sha256\n")
    for check in copied.checks:
        if check.matches:
            digest = check.source_sha256
        else:
            digest = f"MISMATCH {check.source_sha256} != {check.target_sha256}"
        out.write(
            f"{check.table:<{width}}  {check.source_rows:>12,}  {check.target_rows:>12,}  "
            f"{digest}\n"
        )


# -- backup ---------------------------------------------------------------------------------


def backup_main(args: argparse.Namespace) -> int:
    return _run(args, _backup)


def _backup(args: argparse.Namespace, out: TextIO, err: TextIO) -> int:
    config = _config(args.config)
    file: Path = args.file
    if file.exists():
        raise UsageError(f"{file} exists; a backup never overwrites a file: give a new name")
    target = _existing(config)
    if isinstance(target, str):
        return _pg_dump(target, file, out, err)
    try:
        backup = backup_sqlite(target, file, Progress(err).pages)
    except FileExistsError:
        raise UsageError(f"{file} exists; a backup never overwrites a file") from None
    except (*DATABASE_ERRORS, OSError) as exc:
        print(f"carewatch db backup: cannot back up {target} into {file}: {exc}", file=err)
        return FAILED
    if backup.integrity != "ok":
        print(f"carewatch db backup: {file} failed integrity_check: {backup.integrity}", file=err)
        return FAILED
    print(
        f"backup {file}: {_size(backup.bytes)} in {backup.seconds:.2f} s, integrity_check ok",
        file=out,
    )
    return OK


def _pg_dump(url: str, file: Path, out: TextIO, err: TextIO) -> int:
    """Show the pg_dump command for the database, and run it if pg_dump is installed."""
    try:
        password = conninfo_to_dict(url).get("password")
    except psycopg.Error as exc:
        raise UsageError(f"cannot read the database URL {shown(url)}: {exc}") from None
    command = ["pg_dump", "--format=custom", "--file", str(file), shown(url)]
    note = " (the password from the configuration in PGPASSWORD)" if password else ""
    print(f"carewatch db backup: {shlex.join(command)}{note}", file=err)
    program = shutil.which("pg_dump")
    if program is None:
        print(
            "carewatch db backup: pg_dump is not installed here (Debian: apt-get install "
            "postgresql-client); run the command above where it is",
            file=err,
        )
        return FAILED
    environment = {**os.environ, **({"PGPASSWORD": str(password)} if password else {})}
    started = time.monotonic()
    done = subprocess.run(
        [program, *command[1:]], env=environment, capture_output=True, text=True, check=False
    )
    err.write(done.stderr)
    if done.returncode != 0:
        file.unlink(missing_ok=True)
        print(f"carewatch db backup: pg_dump failed (exit status {done.returncode})", file=err)
        return FAILED
    seconds = time.monotonic() - started
    print(f"backup {file}: {_size(file.stat().st_size)} in {seconds:.2f} s (pg_dump)", file=out)
    return OK
