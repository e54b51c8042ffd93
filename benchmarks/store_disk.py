"""Disk: bytes per stored reading, and a 100-bed home's store over a year at default retention.

No broker and no hub: a simulated clock, and readings written straight through ingest's own
write (`TelemetryRecords.save_batches`, one batch per virtual gateway of 20 beds, all the
gateways' batches of `--batch-s` simulated seconds in one call), with the hub's upkeep
(`Maintenance.run_once()`: roll up, make and drop partitions on PostgreSQL, prune) at the end of
every simulated hour.

The mix is the fleet's (simulators/fleet.py, docs/fleet.md: what a gateway sends after report by
exception), 0.25 readings/s per bed in 6 series: the bed radar's heart_rate and
respiration_rate every 15 s each, occupancy and presence every 30 s each, motion true then false
5 s later every 120 s; the room's fall radar's presence every 30 s. Battery and RSSI readings
come only with a call button's or smoke detector's event (a few a bed a year): left out.

1. `--days` simulated days at that rate for `--beds` beds, with retention `raw_days` =
   `minute_days` = `--raw-days` (1-hour rollups kept 730 days, the default), so that the prune
   reaches its steady state within the run: the size at the end of each simulated day is
   printed, and stops growing once `--raw-days` have passed (SQLite reuses the pages the prune
   frees; the hub never runs VACUUM; PostgreSQL drops whole day partitions).
2. Bytes per raw sample and per rollup row, measured at the end (SQLite: the pages each table
   and its indexes use, from the `dbstat` table, free pages apart; PostgreSQL:
   pg_total_relation_size of every partition of `samples`, and of `series` and `rollups`).
3. A year of `--home-beds` beds (default 100) worked out on paper from those sizes and the rows a
   bed makes a day, at the default retention (raw 14 days, 1-minute rollups 14 days, 1-hour
   rollups 730 days: after one year, 365 days of them), and without retention (every reading
   kept raw: the compact layout, and the first layout's ~117 bytes a reading).

    python benchmarks/store_disk.py                          # SQLite, 100 beds, 5 days
    python benchmarks/store_disk.py --database postgresql    # the same on PostgreSQL
    python benchmarks/store_disk.py --beds 5 --days 3 --raw-days 1    # smoke run, seconds

Prints figures; asserts nothing (docs/architecture.md, Targets: a 100-bed home's store holds
steady under 2 GB over a year at default retention).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.watch_common import store_size
from hub.core.store import Store, StoredItem
from hub.telemetry.maintenance import Maintenance
from hub.telemetry.records import BatchToSave, TelemetryRecords
from hub.telemetry.rollups import HOUR, MINUTE
from hub.telemetry.settings import DAY_S, RetentionSettings
from tests.support.postgres import postgres

# What a hub's PostgreSQL keeps on, and tests/support/postgres.py turns off for speed.
HONEST_POSTGRES: Final = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
FIRST_LAYOUT_BYTES: Final = 117  # a reading in the first layout (docs/database.md)
YEAR_DAYS: Final = 365
START: Final = datetime(2026, 1, 5, tzinfo=UTC).timestamp()  # a Monday, midnight UTC
SITE: Final = "disk"
EPOCH: Final = "disk-epoch"
BEDS_PER_GATEWAY: Final = 20
RECEIVED_AFTER_S: Final = 0.4  # from sensed to received
CYCLE_S: Final = 120
# The fleet's schedule (simulators/fleet.py, `_bed_readings`), by second of a bed's 120 s cycle:
# (device kind, reading name, value: a bool, or None for a rate worked out per reading).
SCHEDULE: Final[list[list[tuple[str, str, bool | None]]]] = [
    [
        *([("bedradar", "heart_rate", None)] if phase % 15 == 0 else []),
        *([("bedradar", "respiration_rate", None)] if phase % 15 == 7 else []),
        *([("bedradar", "occupancy", True)] if phase % 30 == 3 else []),
        *([("bedradar", "presence", True)] if phase % 30 == 18 else []),
        *([("fallradar", "presence", True)] if phase % 30 == 10 else []),
        *([("bedradar", "motion", phase == 40)] if phase in (40, 45) else []),
    ]
    for phase in range(CYCLE_S)
]
READINGS_PER_BED_DAY: Final = sum(len(due) for due in SCHEDULE) * int(DAY_S) // CYCLE_S
SAMPLE_TABLES: Final = ("samples", "series")


# --- shared with the other store benchmarks --------------------------------------------------


class SimClock:
    """A clock that stands still until the simulation moves it (`at`)."""

    def __init__(self, at: float) -> None:
        self.at = at

    def now(self) -> float:
        return self.at

    async def sleep(self, seconds: float) -> None:
        self.at += seconds
        await asyncio.sleep(0)


def sqlite_table_bytes(path: Path) -> dict[str, int]:
    """Bytes of the pages each table uses, its indexes included (SQLite's dbstat), by table;
    `(free)`: the free pages the file holds for reuse."""
    with contextlib.closing(sqlite3.connect(path)) as connection:
        owner = dict(connection.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        found: dict[str, int] = {}
        for name, size in connection.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)
            found[table] = found.get(table, 0) + int(size)
        page_size = int(connection.execute("PRAGMA page_size").fetchone()[0])
        free = int(connection.execute("PRAGMA freelist_count").fetchone()[0])
    found["(free)"] = free * page_size
    return found


def postgres_table_bytes(url: str) -> dict[str, int]:
    """pg_total_relation_size (indexes and TOAST included) of `samples` (every partition),
    `series` and `rollups`; `(database)`: pg_database_size; `(wal)`: the server's pg_wal."""
    with psycopg.connect(url) as connection:
        row = connection.execute(
            "SELECT (SELECT coalesce(sum(pg_total_relation_size(relid)), 0) "
            "FROM pg_partition_tree('samples')), pg_total_relation_size('series'), "
            "pg_total_relation_size('rollups'), pg_database_size(current_database()), "
            "(SELECT coalesce(sum(size), 0) FROM pg_ls_waldir())"
        ).fetchone()
    assert row is not None
    samples, series, rollup_rows, database, wal = (int(value) for value in row)
    return {
        "samples": samples,
        "series": series,
        "rollups": rollup_rows,
        "(database)": database,
        "(wal)": wal,
    }


def mb(size: float) -> str:
    return f"{size / 1e6:,.1f} MB"


# --- the simulation --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Day:
    day: int
    size: int  # SQLite: the database file; PostgreSQL: pg_database_size
    wal: int  # SQLite: the -wal file; PostgreSQL: pg_wal (the whole server's)
    samples: int
    minute_rows: int
    hour_rows: int
    free: int  # SQLite: bytes of free pages
    wall_s: float


@dataclass(frozen=True, slots=True)
class Measured:
    days: list[Day]
    tables: dict[str, int]
    samples_per_day: float  # written in one simulated day, all the simulated beds
    minute_rows_per_day: int  # of the last whole day, all the simulated beds
    hour_rows_per_day: int
    fresh_bytes_per_sample: float  # at the end of day 1, before any prune


class Fleet:
    """The simulated beds' readings, gateway by gateway, from `start` on."""

    def __init__(self, beds: int, start: float = START) -> None:
        self.start = start
        self.gateways = [
            (f"gw-{g:03d}", range(first, min(beds, first + BEDS_PER_GATEWAY)))
            for g, first in enumerate(range(0, beds, BEDS_PER_GATEWAY))
        ]
        self.devices = {
            kind: [f"{kind}-{bed:05d}" for bed in range(beds)] for kind in ("bedradar", "fallradar")
        }
        self.sequence = dict.fromkeys((gateway for gateway, _ in self.gateways), 0)
        self.written = 0

    def batches(self, first_tick: int, seconds: int) -> Iterator[BatchToSave]:
        """Each gateway's readings sensed in [first_tick, first_tick + seconds) of the run."""
        for gateway, beds in self.gateways:
            items = []
            for tick in range(first_tick, first_tick + seconds):
                at = self.start + tick
                for bed in beds:
                    for kind, name, value in SCHEDULE[(tick + bed) % CYCLE_S]:
                        items.append(
                            StoredItem(
                                self.devices[kind][bed],
                                "reading",
                                name,
                                _rate(name, bed, tick) if value is None else value,
                                at,
                                at + RECEIVED_AFTER_S,
                                False,
                            )
                        )
            self.sequence[gateway] += len(items)
            self.written += len(items)
            yield SITE, gateway, EPOCH, self.sequence[gateway], items


def _rate(name: str, bed: int, tick: int) -> int:
    if name == "heart_rate":
        return 58 + (bed * 13 + tick // 15) % 21
    return 12 + (bed * 7 + tick // 15) % 7


async def counts(store: Store) -> tuple[int, int, int]:
    rows = await store.db.execute_fetchall(
        "SELECT (SELECT count(*) FROM samples), "
        "(SELECT count(*) FROM rollups WHERE resolution = ?), "
        "(SELECT count(*) FROM rollups WHERE resolution = ?)",
        (MINUTE, HOUR),
    )
    return int(rows[0][0]), int(rows[0][1]), int(rows[0][2])


async def rows_in_day(store: Store, resolution: int, day: int) -> int:
    since = START + day * DAY_S
    rows = await store.db.execute_fetchall(
        "SELECT count(*) FROM rollups WHERE resolution = ? AND bucket >= ? AND bucket < ?",
        (resolution, since, since + DAY_S),
    )
    return int(rows[0][0])


class Backend:
    """Where the simulation writes, and how its size is read."""

    def __init__(self, target: Path | str) -> None:
        self.target = target

    def size(self) -> tuple[int, int, int]:
        """(database, write-ahead log, free pages), bytes."""
        if isinstance(self.target, Path):
            size = self.target.stat().st_size
            wal = store_size(self.target) - size
            return size, wal, sqlite_table_bytes(self.target)["(free)"]
        tables = postgres_table_bytes(self.target)
        return tables["(database)"], tables["(wal)"], 0

    def tables(self) -> dict[str, int]:
        if isinstance(self.target, Path):
            return sqlite_table_bytes(self.target)
        return postgres_table_bytes(self.target)

    def vacuum(self) -> None:
        """PostgreSQL: a plain VACUUM, as autovacuum would have run in the simulated hour (it
        looks every minute; a simulated hour lasts seconds). SQLite: nothing (the hub never
        vacuums it; its free pages are reused)."""
        if isinstance(self.target, str):
            with psycopg.connect(self.target, autocommit=True) as connection:
                connection.execute("VACUUM")


async def simulate(backend: Backend, args: argparse.Namespace) -> Measured:
    clock = SimClock(START)
    retention = RetentionSettings(raw_days=args.raw_days, minute_days=args.raw_days)
    store = await Store.open(backend.target)
    try:
        telemetry = TelemetryRecords(store)
        await telemetry.create()
        upkeep = Maintenance(store, retention, clock)
        await upkeep.run_once()  # on PostgreSQL: the day partitions of today and the next two
        fleet = Fleet(args.beds)
        days: list[Day] = []
        fresh = 0.0
        for day in range(args.days):
            began = time.perf_counter()
            for hour in range(24):
                first = day * int(DAY_S) + hour * HOUR
                for tick in range(first, first + HOUR, args.batch_s):
                    seconds = min(args.batch_s, first + HOUR - tick)
                    await telemetry.save_batches(list(fleet.batches(tick, seconds)))
                clock.at = START + first + HOUR
                await upkeep.run_once()
                await asyncio.to_thread(backend.vacuum)
            samples, minute_rows, hour_rows = await counts(store)
            size, wal, free = await asyncio.to_thread(backend.size)
            wall_s = time.perf_counter() - began
            days.append(Day(day + 1, size, wal, samples, minute_rows, hour_rows, free, wall_s))
            print_day(days[-1], args)
            if day == 0:
                tables = await asyncio.to_thread(backend.tables)
                fresh = sum(tables.get(t, 0) for t in SAMPLE_TABLES) / max(samples, 1)
        # The last day: rolled up to its end, its minute rollups not pruned yet (raw_days >= 1).
        minute_per_day = await rows_in_day(store, MINUTE, args.days - 1)
        hour_per_day = await rows_in_day(store, HOUR, args.days - 1)
    finally:
        await store.close()
    return Measured(
        days,
        await asyncio.to_thread(backend.tables),
        fleet.written / args.days,
        minute_per_day,
        hour_per_day,
        fresh,
    )


def print_day(day: Day, args: argparse.Namespace) -> None:
    steady = "  (past raw_days: pruned)" if day.day > args.raw_days else ""
    free = f" ({mb(day.free)} free pages)" if day.free else ""
    print(
        f"  day {day.day:3}: {mb(day.size):>11}{free} + WAL {mb(day.wal)}; "
        f"{day.samples:>11,} samples, "
        f"{day.minute_rows:>10,} minute and {day.hour_rows:>8,} hour rollups "
        f"[{day.wall_s:.0f} s]{steady}",
        flush=True,
    )


# --- the report ------------------------------------------------------------------------------


def report(measured: Measured, args: argparse.Namespace) -> None:
    last = measured.days[-1]
    tables = measured.tables
    sample_bytes = sum(tables.get(t, 0) for t in SAMPLE_TABLES)
    per_sample = sample_bytes / max(last.samples, 1)
    rollup_bytes = tables.get("rollups", 0)
    rollup_rows = last.minute_rows + last.hour_rows
    per_rollup = rollup_bytes / max(rollup_rows, 1)
    if "(database)" in tables:  # PostgreSQL: the rest of the database, its catalogs included
        other = tables["(database)"] - sample_bytes - rollup_bytes
    else:
        known = {*SAMPLE_TABLES, "rollups", "(free)"}
        other = sum(size for name, size in tables.items() if name not in known)
    print(f"\n  measured at the end of day {last.day} ({args.beds} beds):")
    print(
        f"    samples + series   {mb(sample_bytes):>11}  for {last.samples:,} samples = "
        f"{per_sample:.1f} bytes/sample (at the end of day 1, before any prune: "
        f"{measured.fresh_bytes_per_sample:.1f})"
    )
    print(
        f"    rollups            {mb(rollup_bytes):>11}  for {rollup_rows:,} rows "
        f"= {per_rollup:.1f} bytes/row"
    )
    print(f"    everything else    {mb(other):>11}  (device_state, the audit log, catalogs ...)")
    if "(free)" in tables:
        print(f"    free pages         {mb(tables['(free)']):>11}  (kept in the file for reuse)")
    print(f"    write-ahead log    {mb(last.wal):>11}")
    if "(wal)" in tables:
        print(
            "      (pg_wal keeps min_wal_size, 80 MB by default, and grows up to max_wal_size, "
            "1 GB, between checkpoints: a day simulated in seconds fills it as a hub never would)"
        )
    beds = args.home_beds
    raw_day = measured.samples_per_day / args.beds * beds
    minute_day = measured.minute_rows_per_day / args.beds * beds
    hour_day = measured.hour_rows_per_day / args.beds * beds
    print(
        f"  rows a day for {beds} beds: {raw_day:,.0f} samples ({READINGS_PER_BED_DAY:,} a bed), "
        f"{minute_day:,.0f} minute rollups, {hour_day:,.0f} hour rollups "
        f"(counted on day {args.days})"
    )
    defaults = RetentionSettings()
    print(
        f"\n  {beds} beds at default retention (raw {defaults.raw_days:g} days, minute rollups "
        f"{defaults.minute_days:g}, hour rollups {defaults.hour_days:g}), on paper:"
    )
    print(
        "    raw_days × samples/day × bytes/sample + minute_days × minute rows/day × bytes/row"
        " + min(hour_days, age) × hour rows/day × bytes/row"
    )
    for label, age in (("after a year", YEAR_DAYS), ("for good", defaults.hour_days)):
        raw_days = min(defaults.raw_days, age)
        minute_days = min(defaults.minute_days, age)
        hour_days = min(defaults.hour_days, age)
        raw = raw_day * raw_days * per_sample
        minutes = minute_day * minute_days * per_rollup
        hours = hour_day * hour_days * per_rollup
        print(
            f"    {label + ' (' + format(age, 'g') + ' days)':24} {raw_days:g} × {raw_day:,.0f} × "
            f"{per_sample:.1f} + {minute_days:g} × {minute_day:,.0f} × {per_rollup:.1f} + "
            f"{hour_days:g} × {hour_day:,.0f} × {per_rollup:.1f}"
        )
        print(
            f"    {'':24} = {mb(raw)} + {mb(minutes)} + {mb(hours)} = "
            f"{mb(raw + minutes + hours)}; with the WAL as measured: "
            f"{mb(raw + minutes + hours + last.wal)}"
        )
    print(
        "    (the records come on top: events, alerts, the audit log; retention never prunes them)"
    )
    year_raw = raw_day * YEAR_DAYS
    fresh = measured.fresh_bytes_per_sample
    print(
        f"  a year without retention, {beds} beds ({year_raw:,.0f} readings): compact layout "
        f"{mb(year_raw * fresh)} ({fresh:.1f} bytes/sample), first layout "
        f"{mb(year_raw * FIRST_LAYOUT_BYTES)} ({FIRST_LAYOUT_BYTES} bytes/reading)"
    )
    print("  target (docs/architecture.md): a 100-bed home's store under 2 GB over a year")


async def run(args: argparse.Namespace) -> None:
    print(
        f"store disk: {args.beds} beds, fleet mix ({READINGS_PER_BED_DAY:,} readings a bed a day),"
        f" {args.days} simulated days, raw_days = minute_days = {args.raw_days:g}, "
        f"upkeep every simulated hour, {args.database}"
        + (" (and a VACUUM, as autovacuum would)" if args.database == "postgresql" else "")
    )
    if args.database == "postgresql":
        with postgres(settings=HONEST_POSTGRES) as server:
            measured = await simulate(Backend(server.create_database("carewatch_disk")), args)
    else:
        workdir = Path(tempfile.mkdtemp(prefix="carewatch-store-disk-"))
        try:
            measured = await simulate(Backend(workdir / "hub.db"), args)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    report(measured, args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--beds", type=int, default=100, help="beds simulated")
    parser.add_argument("--days", type=int, default=5, help="simulated days")
    parser.add_argument(
        "--raw-days", type=float, default=2, help="raw_days and minute_days of the simulated run"
    )
    parser.add_argument(
        "--batch-s", type=int, default=10, help="simulated seconds of readings per write"
    )
    parser.add_argument("--home-beds", type=int, default=100, help="beds of the year's estimate")
    args = parser.parse_args()
    if args.raw_days < 1:
        parser.error("--raw-days must be at least 1 (the last day's rollups are counted)")
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
